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

The input checks (``inputs``), weight digests (``model_hash``), the recording hook (``recorder``),
settings (``settings``), metadata (``meta``) and the memory check (``memory``) live in their own
modules; their public names stay importable from here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from interp.tracing.inputs import (
    ArrayLike,
    as_token_tensor,
    base_arrays,
    keep_mask,
    prepare_inputs,
    prepare_labels,
)
from interp.tracing.memory import check_trace_memory
from interp.tracing.meta import trace_meta
from interp.tracing.model_hash import HASH_PIECE, checkpoint_info, model_sha256
from interp.tracing.recorder import StepRecorder
from interp.tracing.schema import StepSchema, build_schema
from interp.tracing.settings import (
    STATE_DTYPES,
    attention_recording,
    decode_state_list,
    resolve_states,
)
from interp.tracing.trace import MemoryStates, Trace, TraceError
from models.device import model_device

InitSpec = Union[None, Callable[[int, torch.device], dict], dict]


# ----------------------------------------------------------------------------- running one batch
@dataclass
class BatchContext:
    """What a per-batch hook factory (``fwd_hooks=callable``) gets: the batch's rows and starting states."""

    rows: slice  # puzzle rows of this batch within the traced inputs
    init: dict[str, torch.Tensor]  # starting states of the batch (copies)
    schema: StepSchema


def initial_states(model: nn.Module, schema: StepSchema, x: torch.Tensor, init: InitSpec = None,
                   rows: slice | None = None) -> dict[str, torch.Tensor]:
    """Starting states for a batch of tokens ``x`` (on the model's device): the model's own (``fresh_states``),
    or ``init`` (a callable ``(batch, device) -> states`` or a dict of [N, P, D] tensors indexed by ``rows``)."""
    if init is None:
        return model.fresh_states(x)
    device = x.device
    if callable(init):
        st = init(x.shape[0], device)
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
    start = initial_states(model, schema, x, init, rows)
    reuse = bool(getattr(model, "logits_decode_answer", False)) and not fwd_hooks
    rec = StepRecorder(model, schema, x, y, start, keep_rows, keep_states, decode_states, state_dtype, confidence, reuse)
    watched = set(schema.hook_to_step) | set(schema.segment_hooks)
    if callable(fwd_hooks):
        fwd_hooks = fwd_hooks(BatchContext(rows if rows is not None else slice(0, x.shape[0]),
                                           {k: v.clone() for k, v in start.items()}, schema))
    with torch.no_grad(), model.hooks([*fwd_hooks, (lambda n: n in watched, rec)]):
        _run_model(model, schema, x, pid, start)
    return rec.result()


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
    from common.progress import Progress

    with Progress(x.shape[0], "trace", enabled=bool(progress)) as bar:
        arrays, st = compute_arrays(model, schema, x, y, pid, keep, keep_states, decode_states, batch_size,
                                    STATE_DTYPES[state_dtype], init_states, 0, fwd_hooks, bar, confidence)
    arrays = {**base_arrays(x, y, pid), **arrays}
    meta = trace_meta(model, schema, seq_len=x.shape[1], labelled=y is not None, decode_states=decode_states,
                      stored=keep_states, state_dtype=state_dtype, task=task, checkpoint=checkpoint,
                      intervened=bool(fwd_hooks) or init_states is not None, extra=extra_meta)
    return Trace(schema.table(), arrays, meta, MemoryStates(st, np.flatnonzero(keep)))


__all__ = ["trace", "trace_batch", "attention_recording", "compute_arrays", "model_sha256", "checkpoint_info",
           "check_trace_memory", "resolve_states", "initial_states", "prepare_inputs", "model_device", "BatchContext",
           # re-exported from the modules split out of this one, for callers that import them from here
           "ArrayLike", "InitSpec", "STATE_DTYPES", "HASH_PIECE", "StepRecorder", "as_token_tensor", "prepare_labels",
           "keep_mask", "base_arrays", "decode_state_list", "trace_meta"]
