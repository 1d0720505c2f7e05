"""Trace a model: run it through every segment/step with hooks and record each step.

``trace(model, inputs, labels)`` runs an HRM, TRM, UniTF, Transformer or HRM-LM
with one recording hook on every per-step state hook point (registered after
any user ``fwd_hooks``, so it records what the model actually carries on,
interventions included) and returns a ``Trace`` (``interp.tracing.trace``).

Puzzle models are driven segment by segment with ``model.segment`` (exactly
what ``forward`` does, but starting states can be replaced to probe fixed
points); HRM-LM runs ``forward_passes``. Per step the recorder decodes the
answer state (and, with ``decode_latents``, the other states) with
``model.decode`` and scores it against the labels, reads the halting head,
and records norms, relative changes and cosines of the states.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from common.io import file_sha256
from common.labels import IGNORE_LABEL
from interp.tracing import metrics as M
from interp.tracing.schema import StepSchema, build_schema, is_lm_model
from interp.tracing.trace import FORMAT, MemoryStates, Trace, TraceError
from models.device import model_device

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]
InitSpec = Union[None, Callable[[int, torch.device], dict], dict]
STATE_DTYPES = {"float32": np.float32, "float16": np.float16}


# ----------------------------------------------------------------------------- inputs
def as_token_tensor(x: ArrayLike, what: str) -> torch.Tensor:
    """A 2-D int64 tensor from numpy/torch/lists; one-line error otherwise."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2:
        raise TraceError(f"{what} must be a [N, L] array of token ids, got shape {list(t.shape)}")
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
        raise TraceError(f"{what} must hold integer token ids, got dtype {t.dtype}")
    return t.long()


def prepare_labels(model: nn.Module, inputs: torch.Tensor, labels: ArrayLike | None) -> torch.Tensor | None:
    """Validate labels (-100 = not scored). Language models default to next-token labels."""
    lm = is_lm_model(model)
    if labels is None:
        if not lm:
            return None
        y = torch.full_like(inputs, IGNORE_LABEL)
        y[:, :-1] = inputs[:, 1:]
        return y
    y = as_token_tensor(labels, "labels")
    if y.shape != inputs.shape:
        raise TraceError(f"labels must have the inputs' shape {list(inputs.shape)}, got {list(y.shape)}")
    V = model.cfg.vocab_size
    valid = y[y != IGNORE_LABEL]
    if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= V):
        raise TraceError(f"label ids must lie in [0, {V}) or be -100, got [{int(valid.min())}, {int(valid.max())}]")
    return y


HASH_PIECE = 64 << 20  # bytes per piece hashed on its own thread


def model_sha256(model: nn.Module) -> str:
    """Digest of the model's persistent tensors: sha256 over, in key order, ``name|dtype|shape|`` and the
    sha256 of each 64 MiB piece of the tensor's bytes.

    The pieces are hashed on a thread pool (hashlib releases the GIL), so the once-per-trace cost of
    tying a trace to its weights scales with the cores: 6 GB of HRM-Text-1B weights is seconds on
    one core. Weights are read in place (no copy) and never cached, so any edit changes the digest.
    """
    from concurrent.futures import ThreadPoolExecutor

    heads: list[bytes] = []
    pieces: list[tuple[int, memoryview]] = []
    for i, (k, v) in enumerate(sorted(model.state_dict().items())):
        t = v.detach().cpu().contiguous()
        heads.append(f"{k}|{t.dtype}|{list(t.shape)}|".encode())
        raw = memoryview(t.reshape(-1).view(torch.uint8).numpy())
        pieces += [(i, raw[a:a + HASH_PIECE]) for a in range(0, max(len(raw), 1), HASH_PIECE)]
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        digests = list(pool.map(lambda piece: hashlib.sha256(piece[1]).digest(), pieces))
    h = hashlib.sha256()
    j = 0
    for i, head in enumerate(heads):
        h.update(head)
        while j < len(pieces) and pieces[j][0] == i:
            h.update(digests[j])
            j += 1
    return h.hexdigest()


def checkpoint_info(path: str | os.PathLike | None) -> dict[str, Any] | None:
    """``{"path", "sha256"}`` of a checkpoint directory's weights (None without a path)."""
    if path is None:
        return None
    p = Path(path)
    weights = p / "model.safetensors" if p.is_dir() else p
    return {"path": str(p), "sha256": file_sha256(weights) if weights.exists() else None}


# ----------------------------------------------------------------------------- recorder
class _Recorder:
    """Hook function collecting one batch; computes a step's record when the step's hooks have all fired."""

    def __init__(self, model: nn.Module, schema: StepSchema, inputs: torch.Tensor, labels: torch.Tensor | None,
                 init: dict[str, torch.Tensor], keep_rows: np.ndarray, keep_states: Sequence[str],
                 decode_states: Sequence[str], state_dtype: np.dtype, confidence: bool = True,
                 reuse_logits: bool = False):
        self.model, self.schema = model, schema
        # ``reuse_logits``: the model's logits hook is ``decode`` of the answer state (``logits_decode_answer``) and
        # nothing intervenes, so the last step of a segment takes its answer lens from the model instead of
        # decoding the same state a second time.
        self.reuse_logits = reuse_logits
        self.final_logits: torch.Tensor | None = None
        self.confidence = confidence
        self.labels = labels
        self.mask = M.eval_mask(inputs, labels, schema.kind == "lm") if labels is not None else None
        self.cur: dict[str, torch.Tensor] = dict(init)
        self.keep_rows = torch.as_tensor(keep_rows, dtype=torch.long, device=inputs.device)
        self.keep_states = list(keep_states)
        self.decode_states = list(decode_states)
        self.state_dtype = state_dtype
        B, T, S = inputs.shape[0], schema.n_steps, schema.n_segments
        self.B, self.T, self.S, self.L = B, T, S, inputs.shape[1]
        self.pending: int | None = None
        self.staged: dict[str, torch.Tensor] = {}
        self.cache: dict[str, dict[str, torch.Tensor]] = {}  # per state: its decoded lens, until it changes
        self.norms: dict[str, torch.Tensor] = {}  # per state: its position norms, until it changes
        self.cosines: dict[tuple[str, str], torch.Tensor] = {}  # per pair of states, until either changes
        # Everything is gathered in tensors on the model's device and copied to the host once per batch
        # (``result``): a copy per quantity and step would synchronise a GPU dozens of times per step.
        self.out: dict[str, tuple[torch.Tensor, Any]] = {}
        self.states_out: dict[str, torch.Tensor] = {}
        self.done = np.zeros(T, dtype=bool)
        self.init_kept = {f"init/{s}": v[self.keep_rows].float() for s, v in init.items() if s in self.keep_states}

    def _buffer(self, key: str, shape: tuple[int, ...], dtype: Any, device: torch.device) -> torch.Tensor:
        """The [B, T|S, ...] device buffer of ``key`` (host dtype ``dtype``), made on first use."""
        if key not in self.out:
            fill = False if dtype is bool else (0 if np.issubdtype(dtype, np.integer) else float("nan"))
            tdtype = torch.bool if dtype is bool else (torch.int64 if np.issubdtype(dtype, np.integer) else torch.float32)
            self.out[key] = (torch.full(shape, fill, dtype=tdtype, device=device), dtype)
        return self.out[key][0]

    def _put(self, key: str, k: int, value: torch.Tensor, width: int | None = None, dtype=np.float32) -> None:
        shape = (self.B, self.T) if width is None else (self.B, self.T, width)
        self._buffer(key, shape, dtype, value.device)[:, k] = value.detach()

    def __call__(self, t: torch.Tensor, hook: Any) -> None:
        name = hook.name
        where = self.schema.hook_to_step.get(name)
        if where is not None:
            k, s = where
            if self.pending is not None and k != self.pending:
                self.flush()
            self.pending = k
            self.staged[s] = t.detach()
            return None
        seg, kind = self.schema.segment_hooks[name]
        if kind in ("logits", "answer_logits") and self.reuse_logits:
            self.final_logits = t.detach()  # the model's own decode of the answer state the pending step ends with
        self.flush()
        self.final_logits = None
        if kind == "q":
            self._seg("seg/q_halt", seg, t[..., 0].float())
            self._seg("seg/q_continue", seg, t[..., 1].float())
        elif kind == "fusion":
            self._seg("seg/fusion", seg, t.float().mean(dim=1), width=t.shape[-1])
        elif kind == "logits":
            lens = self.cache.get(self.schema.answer_state) if self.reuse_logits else None
            m = lens if lens is not None else M.decoded_metrics(t, self.labels, self.mask)  # same logits: same values
            if self.labels is not None:
                self._seg("seg/ce", seg, m["ce"])
                self._seg("seg/token_acc", seg, m["token_acc"])
            self._seg("seg/pred", seg, m["pred"], width=t.shape[1], dtype=self._pred_dtype())
        return None

    def _seg(self, key: str, seg: int, value: torch.Tensor, width: int | None = None, dtype=np.float32) -> None:
        shape = (self.B, self.S) if width is None else (self.B, self.S, width)
        self._buffer(key, shape, dtype, value.device)[:, seg] = value.detach()

    def flush(self) -> None:
        """Turn the staged hook values of the pending step into its record."""
        if self.pending is None:
            return
        k, staged = self.pending, self.staged
        self.pending, self.staged = None, {}
        primary = self.schema.state_names
        for s in primary:
            if s in staged:
                old = self.cur.get(s)
                new = staged[s]
                delta = M.relative_change(new, old) if old is not None else float("nan")
                self.cur[s] = new
                self.cache.pop(s, None)
                self.norms.pop(s, None)
                self.cosines = {pair: c for pair, c in self.cosines.items() if s not in pair}
            else:
                delta = 0.0 if s in self.cur else float("nan")
            if not isinstance(delta, torch.Tensor):
                delta = torch.full((self.B,), delta, device=self.keep_rows.device)
            self._put(f"step/delta.{s}", k, delta)
            if s in self.cur:
                self._put(f"step/norm.{s}", k, M.state_norm(self.cur[s], self._norms(s)))
        for a, b in combinations(primary, 2):
            if a in self.cur and b in self.cur and self.cur[a].shape == self.cur[b].shape:
                if (a, b) not in self.cosines:  # unchanged states keep last step's value
                    self.cosines[(a, b)] = M.mean_cosine(self.cur[a], self.cur[b], norms=(self._norms(a), self._norms(b)))
                self._put(f"step/cos.{a}.{b}", k, self.cosines[(a, b)])
        for g in self.schema.gate_states:
            if g in staged:
                v = staged[g].float().flatten(1)
                mean = v.mean(1, keepdim=True)
                self._put(f"step/mean.{g}", k, mean[:, 0])
                # two-pass population std, written out: torch's CPU ``std`` is ~20x slower on these rows
                self._put(f"step/std.{g}", k, (v - mean).square_().mean(1).sqrt_())
        for d in self.decode_states:
            if d not in self.cur:
                continue
            if d not in self.cache:
                self.cache[d] = self._decode(d)
            c = self.cache[d]
            self._put(f"pred/{d}", k, c["pred"], width=self.L, dtype=self._pred_dtype())
            if "conf" in c:
                self._put(f"conf/{d}", k, c["conf"], width=self.L, dtype=np.float16)
            for m in ("ce", "token_acc", "n_wrong"):
                if m in c:
                    self._put(f"step/{m}.{d}", k, c[m])
            if "exact" in c:
                self._put(f"step/exact.{d}", k, c["exact"], dtype=bool)
            if "q_halt" in c:
                self._put("step/q_halt", k, c["q_halt"])
                self._put("step/q_continue", k, c["q_continue"])
        for s in self.keep_states:
            per_step = s in self.schema.gate_states or s in self.schema.pattern_states
            v = staged.get(s) if per_step else self.cur.get(s)
            if v is None:
                if s not in self.states_out:
                    continue
                self.states_out[s][:, k] = float("nan")
                continue
            if s not in self.states_out:
                shape = (len(self.keep_rows), self.T, *v.shape[1:])
                self.states_out[s] = torch.full(shape, float("nan"), dtype=torch.float32, device=v.device)
            if len(self.keep_rows):
                self.states_out[s][:, k] = v[self.keep_rows].float()
        self.done[k] = True

    def _norms(self, s: str) -> torch.Tensor:
        """Per-position norms of the current state ``s``, computed once per new value of it."""
        if s not in self.norms:
            self.norms[s] = M.position_norms(self.cur[s])
        return self.norms[s]

    def _pred_dtype(self):
        return np.uint8 if self.model.cfg.vocab_size <= 256 else np.int32

    def _decode(self, d: str) -> dict[str, torch.Tensor]:
        reuse = self.final_logits is not None and d == self.schema.answer_state
        logits = self.final_logits if reuse else self.model.decode(self.cur[d])
        out = M.decoded_metrics(logits, self.labels, self.mask, self.confidence)
        if self.schema.kind == "puzzle" and d == self.schema.answer_state:
            q_halt, q_cont = self.model.halt_logits(self.cur[d])
            out["q_halt"], out["q_continue"] = q_halt, q_cont
        return out

    def result(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        self.flush()
        if not self.done.all():
            missing = np.flatnonzero(~self.done)[:5].tolist()
            raise TraceError(f"the model did not fire the hooks of step(s) {missing}; its step grid does not match "
                             f"the schema (was it run with non-default cycles?)")
        out = {k: t.cpu().numpy().astype(dtype, copy=False) for k, (t, dtype) in self.out.items()}
        states = {f"state/{s}": v for s, v in self.states_out.items()}
        states.update(self.init_kept)
        return out, {k: v.cpu().numpy().astype(self.state_dtype, copy=False) for k, v in states.items()}


# ----------------------------------------------------------------------------- running one batch
@dataclass
class BatchContext:
    """What a per-batch hook factory (``fwd_hooks=callable``) gets: the batch's rows and starting states."""

    rows: slice  # puzzle rows of this batch within the traced inputs
    init: dict[str, torch.Tensor]  # starting states of the batch (copies)
    schema: StepSchema


def initial_states(model: nn.Module, schema: StepSchema, batch: int, length: int, device: torch.device,
                   init: InitSpec = None, rows: slice | None = None) -> dict[str, torch.Tensor]:
    """Starting states for a batch: the model's own, or ``init`` (a callable or a dict of [N, P, D] tensors)."""
    if init is None:
        if schema.kind == "lm" and schema.family == "hrm_lm":
            return model.init_states(batch, length, device)
        if is_lm_model(model):
            return model.init_states(batch, device, length=model.prefix_len + length)
        return model.init_states(batch, device)
    if callable(init):
        st = init(batch, device)
    else:
        st = {k: torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v)[rows] for k, v in init.items()}
    missing = set(schema.state_names) - set(st)
    if missing:
        raise TraceError(f"init_states lacks state(s) {sorted(missing)}")
    return {k: v.to(device=device, dtype=torch.float32).clone() for k, v in st.items() if k in schema.state_names}


def _run_model(model: nn.Module, schema: StepSchema, x: torch.Tensor, pid: torch.Tensor | None,
               init: dict[str, torch.Tensor]) -> None:
    if schema.kind == "lm" and schema.family == "hrm_lm":
        model.forward_passes(x, n_passes=schema.n_segments, states=init)
        return
    for _ in model.iter_segments(x, pid, schema.n_segments, {k: v.clone() for k, v in init.items()}):
        pass


def trace_batch(model: nn.Module, schema: StepSchema, x: torch.Tensor, y: torch.Tensor | None,
                pid: torch.Tensor | None, keep_rows: np.ndarray, keep_states: Sequence[str],
                decode_states: Sequence[str], state_dtype=np.float32, init: InitSpec = None,
                rows: slice | None = None, fwd_hooks: Sequence = (), confidence: bool = True) -> tuple[dict, dict]:
    """Run one batch (already on the model's device) and return (per-puzzle arrays, kept states)."""
    if init is None and hasattr(model, "start_states"):  # a start computed from the tokens (HRM-Text)
        start = model.start_states(x)
    else:
        start = initial_states(model, schema, x.shape[0], x.shape[1], x.device, init, rows)
    reuse = bool(getattr(model, "logits_decode_answer", False)) and not fwd_hooks
    rec = _Recorder(model, schema, x, y, start, keep_rows, keep_states, decode_states, state_dtype, confidence, reuse)
    watched = set(schema.hook_to_step) | set(schema.segment_hooks)
    if callable(fwd_hooks):
        fwd_hooks = fwd_hooks(BatchContext(rows if rows is not None else slice(0, x.shape[0]),
                                           {k: v.clone() for k, v in start.items()}, schema))
    with torch.no_grad(), model.hooks([*fwd_hooks, (lambda n: n in watched, rec)]):
        _run_model(model, schema, x, pid, start)
    return rec.result()


# ----------------------------------------------------------------------------- settings
def resolve_states(schema: StepSchema, states: str | Sequence[str] | None) -> list[str]:
    """``"all"`` -> every carried state, gate and recorded attention pattern; ``"summary"``/None -> none;
    a list -> checked names (aliases ok; ``pattern`` = every ``pattern.layer{k}``)."""
    every = [*schema.state_names, *schema.gate_states, *schema.pattern_states]
    if states is None or states == "summary":
        return []
    if states == "all":
        return every
    if isinstance(states, str):
        states = [states]
    alias = {"slow": schema.slow_state, "fast": schema.fast_state, "answer": schema.answer_state}
    out = []
    for s in states:
        if s == "pattern" and schema.pattern_states:
            out += [p for p in schema.pattern_states if p not in out]
            continue
        name = s if s in every else alias.get(s)
        if name is None or name not in every:
            hint = " (attention patterns need attention=True / --attention)" if s.startswith("pattern") else ""
            raise TraceError(f"unknown state {s!r} for a {schema.family} model (states: {', '.join(every)}){hint}")
        if name not in out:
            out.append(name)
    return out


def decode_state_list(schema: StepSchema, decode_latents: bool, model: nn.Module) -> list[str]:
    out = [schema.answer_state]
    if decode_latents:
        out += [s for s in schema.state_names if s != schema.answer_state]
    return out


def trace_meta(model: nn.Module, schema: StepSchema, *, seq_len: int, labelled: bool, decode_states: list[str],
               stored: list[str], state_dtype: str, task: Any = None, checkpoint: str | os.PathLike | None = None,
               intervened: bool = False, extra: dict | None = None, model_hash: str | None = None) -> dict[str, Any]:
    """Metadata stored with every trace (JSON-serialisable); ``model_hash``: ``model_sha256(model)`` if known."""
    import importlib.metadata as im

    if isinstance(task, str):
        task = {"name": task}
    try:
        version = im.version("recurse-interp")
    except im.PackageNotFoundError:
        version = "dev"
    return {
        "format": FORMAT,
        "family": schema.family,
        "model_config": model.cfg.to_dict(),
        "state_names": list(schema.state_names),
        "answer_state": schema.answer_state,
        "slow_state": schema.slow_state,
        "fast_state": schema.fast_state,
        "gate_states": list(schema.gate_states),
        "decoded_states": decode_states,
        "stored_states": stored,
        "fusion_sources": list(getattr(model, "fusion_sources", ())),
        "prefix_len": int(getattr(model, "prefix_len", 0)),
        "seq_len": int(seq_len),
        "hidden_size": int(model.cfg.hidden_size),
        "vocab_size": int(model.cfg.vocab_size),
        "n_segments": schema.n_segments,
        "segment_unit": "pass" if schema.family in ("hrm_lm", "hrm_text") else "segment",
        "n_steps": schema.n_steps,
        "labelled": labelled,
        "state_dtype": state_dtype,
        "task": task,
        "checkpoint": checkpoint_info(checkpoint),
        "model_sha256": model_hash or model_sha256(model),
        "intervened": intervened,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"recurse-interp": version, "torch": torch.__version__, "numpy": np.__version__},
        **({"pattern_states": list(schema.pattern_states)} if schema.pattern_states else {}),
        **(extra or {}),
    }


@contextlib.contextmanager
def attention_recording(model: nn.Module, on: bool):
    """With ``on``, the model records its attention patterns (``model.record_attention``) inside the block only."""
    if not on:
        yield
        return
    if not hasattr(model, "record_attention"):
        raise TraceError(f"a {getattr(model.cfg, 'family', type(model).__name__)} model cannot record attention patterns")
    was = bool(getattr(model, "recording_attention", False))
    try:
        model.record_attention(True)
    except ValueError as e:
        raise TraceError(str(e)) from None
    try:
        yield
    finally:
        if not was:
            model.record_attention(False)


def compute_arrays(model: nn.Module, schema: StepSchema, inputs: torch.Tensor, labels: torch.Tensor | None,
                   puzzle_ids: torch.Tensor | None, keep: np.ndarray, keep_states: Sequence[str],
                   decode_states: Sequence[str], batch_size: int, state_dtype=np.float32, init: InitSpec = None,
                   init_offset: int = 0, fwd_hooks: Sequence = (), progress: Any = None,
                   confidence: bool = True) -> tuple[dict, dict]:
    """Trace ``inputs`` in batches; returns (arrays [N, ...], kept states for rows where ``keep``)."""
    device = model_device(model)
    N = inputs.shape[0]
    parts: list[dict] = []
    sparts: list[dict] = []
    for b0 in range(0, N, batch_size):
        b1 = min(N, b0 + batch_size)
        x = inputs[b0:b1].to(device)
        y = labels[b0:b1].to(device) if labels is not None else None
        pid = puzzle_ids[b0:b1].to(device) if puzzle_ids is not None else None
        rows = np.flatnonzero(keep[b0:b1])
        arr, st = trace_batch(model, schema, x, y, pid, rows, keep_states, decode_states, state_dtype, init,
                              slice(init_offset + b0, init_offset + b1), fwd_hooks, confidence)
        parts.append(arr)
        sparts.append(st)
        if progress is not None:
            progress.update(b1 - b0)
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    states = {k: np.concatenate([p[k] for p in sparts]) for k in sparts[0]} if sparts and sparts[0] else {}
    return arrays, states


def check_trace_memory(model: nn.Module, schema: StepSchema, keep_states: Sequence[str], kept: int, rows: int,
                       length: int, n_decoded: int, where: str) -> int:
    """Refuse with one line, before any work, a trace that would hold more than ``RECURSE_MAX_MEMORY_GB`` at once.

    ``kept`` puzzles' full states and ``rows`` puzzles' summaries are in memory together (the whole trace
    for ``trace``, one chunk for ``trace_to_disk``). Full states count three times (device buffer,
    host parts, the concatenated chunk); summaries as their int64/float32 device buffers. Returns the bytes.
    """
    from models.config import MEMORY_ENV, max_memory_bytes

    P = int(getattr(model, "prefix_len", 0) or 0) + int(length)
    D, H = int(model.cfg.hidden_size), int(getattr(model.cfg, "num_heads", 1) or 1)
    per_step = 4 * sum(H * P * P if s in schema.pattern_states else P * D for s in keep_states)
    states = 3 * kept * (schema.n_steps + 1) * per_step
    summaries = rows * schema.n_steps * (16 + length * 12 * max(1, n_decoded))
    total = states + summaries
    limit = max_memory_bytes()
    if total > limit:
        raise TraceError(
            f"the trace would hold about {total / 1e9:.1f} GB in memory at once ({where}: full states of {kept} "
            f"puzzle(s) x {schema.n_steps} steps at {per_step / 1e6:.2f} MB per step, summaries of {rows}), above the "
            f"limit of {limit / 1e9:.1f} GB; keep states for fewer puzzles (--state-puzzles), use smaller chunks "
            f"(--chunk-size) or set {MEMORY_ENV}")
    return total


def prepare_inputs(model: nn.Module, inputs: ArrayLike, labels: ArrayLike | None,
                   puzzle_ids: ArrayLike | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    x = as_token_tensor(inputs, "inputs")
    if x.shape[0] == 0:
        raise TraceError("inputs hold no puzzles")
    V = model.cfg.vocab_size
    if int(x.min()) < 0 or int(x.max()) >= V:
        raise TraceError(f"input token ids must lie in [0, {V}), got [{int(x.min())}, {int(x.max())}]")
    if is_lm_model(model):
        if x.shape[1] > model.cfg.seq_len:
            raise TraceError(f"sequence length {x.shape[1]} exceeds the model's seq_len {model.cfg.seq_len}")
    elif x.shape[1] != model.cfg.seq_len:
        raise TraceError(f"inputs must have {model.cfg.seq_len} tokens per puzzle for this model, got {x.shape[1]}")
    y = prepare_labels(model, x, labels)
    pid = None
    if puzzle_ids is not None:
        pid = torch.as_tensor(np.asarray(puzzle_ids)).long().reshape(-1)
        if pid.shape[0] != x.shape[0]:
            raise TraceError(f"puzzle_ids must have one id per puzzle ({x.shape[0]}), got {pid.shape[0]}")
        n_ids = getattr(model.cfg, "num_puzzle_identifiers", 1)
        if pid.numel() and (int(pid.min()) < 0 or int(pid.max()) >= n_ids):
            raise TraceError(f"puzzle_ids must lie in [0, {n_ids}), got [{int(pid.min())}, {int(pid.max())}]")
    return x, y, pid


def keep_mask(n: int, states: list[str], state_puzzles: ArrayLike | None, offset: int = 0) -> np.ndarray:
    """Which of puzzles offset..offset+n-1 keep full states."""
    if not states:
        return np.zeros(n, dtype=bool)
    if state_puzzles is None:
        return np.ones(n, dtype=bool)
    idx = np.asarray(state_puzzles, dtype=np.int64).reshape(-1)
    m = np.zeros(n, dtype=bool)
    local = idx[(idx >= offset) & (idx < offset + n)] - offset
    m[local] = True
    return m


def base_arrays(x: torch.Tensor, y: torch.Tensor | None, pid: torch.Tensor | None, offset: int = 0) -> dict[str, np.ndarray]:
    n = x.shape[0]
    return {
        "inputs": x.numpy().astype(np.int32),
        "labels": (y if y is not None else torch.full_like(x, IGNORE_LABEL)).numpy().astype(np.int32),
        "puzzle_ids": (pid.numpy() if pid is not None else np.zeros(n)).astype(np.int32),
        "puzzle_index": np.arange(offset, offset + n, dtype=np.int64),
    }


# ----------------------------------------------------------------------------- public entry point
def trace(
    model: nn.Module,
    inputs: ArrayLike,
    labels: ArrayLike | None = None,
    puzzle_ids: ArrayLike | None = None,
    n_segments: int | None = None,
    states: str | Sequence[str] | None = "all",
    state_puzzles: ArrayLike | None = None,
    batch_size: int = 64,
    decode_latents: bool = True,
    init_states: InitSpec = None,
    fwd_hooks: Sequence = (),
    state_dtype: str = "float32",
    task: Any = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = False,
    confidence: bool = True,
    extra_meta: dict | None = None,
    attention: bool = False,
) -> Trace:
    """Run ``model`` on ``inputs`` [N, L] through every segment and step and record a ``Trace``.

    ``labels`` [N, L] (-100 = not scored) enable accuracy/loss (language
    models default to next-token labels). ``n_segments`` defaults to the
    evaluation depth (``halt_max_steps``; HRM-LM: ``passes``). ``states``:
    ``"all"`` keeps full states, ``"summary"`` only summaries, or a list of
    state names (``slow``/``fast`` aliases accepted); ``state_puzzles`` limits
    full states to some puzzles. ``init_states`` replaces the starting states
    (callable ``(batch, device) -> dict`` or a dict of [N, P, D] arrays).
    ``confidence`` records ``conf/<state>`` [N, T, L] (float16), the top
    softmax probability of every decoded cell. ``fwd_hooks`` (``[(name_or_filter, fn)]``, or a callable
    ``BatchContext -> list`` called once per batch) are applied during the run;
    the trace records their effect and is marked ``intervened``. ``attention=True`` also records the
    attention pattern of every layer at every step (``pattern.layer{k}`` [N, T, heads, query, key], kept
    like states, selected by ``states``; models with attention only); off, nothing changes.
    """
    with attention_recording(model, attention):
        return _trace(model, inputs, labels, puzzle_ids, n_segments, states, state_puzzles, batch_size,
                      decode_latents, init_states, fwd_hooks, state_dtype, task, checkpoint, progress, confidence,
                      extra_meta)


def _trace(model, inputs, labels, puzzle_ids, n_segments, states, state_puzzles, batch_size, decode_latents,
           init_states, fwd_hooks, state_dtype, task, checkpoint, progress, confidence, extra_meta) -> Trace:
    if batch_size < 1:
        raise TraceError(f"batch_size must be >= 1, got {batch_size}")
    if state_dtype not in STATE_DTYPES:
        raise TraceError(f"state_dtype must be one of {sorted(STATE_DTYPES)}, got {state_dtype!r}")
    schema = build_schema(model, n_segments)
    x, y, pid = prepare_inputs(model, inputs, labels, puzzle_ids)
    keep_states = resolve_states(schema, states)
    decode_states = decode_state_list(schema, decode_latents, model)
    keep = keep_mask(x.shape[0], keep_states, state_puzzles)
    check_trace_memory(model, schema, keep_states, int(keep.sum()), x.shape[0], x.shape[1], len(decode_states),
                       "the whole trace")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=x.shape[0], unit="puzzle", desc="trace")
    try:
        arrays, st = compute_arrays(model, schema, x, y, pid, keep, keep_states, decode_states, batch_size,
                                    STATE_DTYPES[state_dtype], init_states, 0, fwd_hooks, bar, confidence)
    finally:
        if bar is not None:
            bar.close()
    arrays = {**base_arrays(x, y, pid), **arrays}
    meta = trace_meta(model, schema, seq_len=x.shape[1], labelled=y is not None, decode_states=decode_states,
                      stored=keep_states, state_dtype=state_dtype, task=task, checkpoint=checkpoint,
                      intervened=bool(fwd_hooks) or init_states is not None, extra=extra_meta)
    return Trace(schema.table(), arrays, meta, MemoryStates(st, np.flatnonzero(keep)))


__all__ = ["trace", "trace_batch", "attention_recording", "compute_arrays", "model_sha256", "checkpoint_info",
           "check_trace_memory",
           "resolve_states", "initial_states", "prepare_inputs"]
