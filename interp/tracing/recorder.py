"""The recording hook of a trace: collects one batch's hook values and turns each step into its record.

Per step it decodes the answer state (and, with ``decode_states``, the others) with ``model.decode`` and
scores it against the labels, reads the halting head, and records norms, relative changes and cosines
of the states; ``result`` copies everything to the host once per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import torch
from torch import nn

from interp.tracing import metrics as M
from interp.tracing.schema import StepSchema
from interp.tracing.trace import TraceError


class StepRecorder:
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
        ran = int(np.argmin(self.done)) if not self.done.all() else self.T
        if not self.done.all() and not (self.schema.variable_steps and ran > 0 and not self.done[ran:].any()):
            missing = np.flatnonzero(~self.done)[:5].tolist()
            raise TraceError(f"the model did not fire the hooks of step(s) {missing}; its step grid does not match "
                             f"the schema (was it run with non-default cycles?)")
        out = {k: t.cpu().numpy().astype(dtype, copy=False) for k, (t, dtype) in self.out.items()}
        counts = np.full(self.B, ran)
        if self.schema.variable_steps:  # early exit: steps >= a row's count did not run (NaN; answers repeat)
            row_steps = getattr(self.model, "row_steps", None)  # a looped model's per-row counts (models.looped)
            if row_steps is not None:
                counts = np.minimum(np.asarray(row_steps), ran)
            for k, v in out.items():
                if v.ndim < 2 or v.shape[1] != self.T or k.startswith("seg/"):
                    continue
                for i, c in enumerate(counts):
                    if c < self.T:
                        v[i, c:] = v[i, c - 1] if k.startswith("pred/") else (False if v.dtype == bool else np.nan)
            out["steps_ran"] = counts.astype(np.int32)
        states = {f"state/{s}": v for s, v in self.states_out.items()}
        for v in states.values():  # rows that exited before the batch's last step
            for j, r in enumerate(self.keep_rows.tolist()):
                if counts[r] < self.T:
                    v[j, int(counts[r]):] = float("nan")
        states.update(self.init_kept)
        return out, {k: v.cpu().numpy().astype(self.state_dtype, copy=False) for k, v in states.items()}


__all__ = ["StepRecorder"]
