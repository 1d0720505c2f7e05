"""Build a ``Trace`` from given arrays, without a model.

For tests with known answers (a contraction map with a known fixed point, a
planted jump in the error curve) and for users who want to run the analyses
on trajectories produced elsewhere. Summaries (norms, relative changes,
cosines, decoded-metric scores) are computed with the same functions as the
tracer (``interp.tracing.metrics``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import torch

from common.labels import IGNORE_LABEL
from interp.tracing import metrics as M
from interp.tracing.schema import StepInfo, finish_steps, steps_to_frame
from interp.tracing.trace import FORMAT, MemoryStates, Trace, TraceError


def synthetic_trace(
    states: dict[str, np.ndarray],
    updated: Sequence[str] | None = None,
    segments: Sequence[int] | None = None,
    init: dict[str, np.ndarray] | None = None,
    predictions: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    inputs: np.ndarray | None = None,
    logits: np.ndarray | None = None,
    answer_state: str | None = None,
    slow_state: str | None = None,
    gates: dict[str, np.ndarray] | None = None,
    family: str = "synthetic",
) -> Trace:
    """A trace from full states ``{name: [N, T, P, D]}`` (values after each step).

    ``updated[t]`` names the state step t writes (default: the first state
    every step); ``segments[t]`` its segment (default all 0). ``init`` gives
    the states before step 0 (default: the step-0 values, so step 0 has
    delta 0). Answers come from ``logits`` [N, T, L, V] (scored like the
    tracer does) or ``predictions`` [N, T, L]; with neither, predictions are
    zeros. ``gates``: HRM-LM-style gate arrays [N, T, P, D] (NaN where the gate
    did not fire).
    """
    names, arrs = _check_states(states)
    N, T = next(iter(arrs.values())).shape[:2]
    updated = list(updated) if updated is not None else [names[0]] * T
    segments = list(segments) if segments is not None else [0] * T
    if len(updated) != T or len(segments) != T:
        raise TraceError(f"updated and segments need {T} entries")
    answer = answer_state or (slow_state if slow_state else names[0])
    steps = _step_infos(updated, segments, slow_state)
    L = _answer_length(arrs[names[0]], logits, predictions, labels)
    x = np.zeros((N, L), np.int32) if inputs is None else np.asarray(inputs, np.int32)
    y = np.full((N, L), IGNORE_LABEL, np.int32) if labels is None else np.asarray(labels, np.int32)
    arrays: dict[str, np.ndarray] = {"inputs": x, "labels": y, "puzzle_ids": np.zeros(N, np.int32),
                                     "puzzle_index": np.arange(N, dtype=np.int64)}
    init = {k: np.asarray(v, np.float32) for k, v in (init or {}).items()}
    arrays.update(_state_summaries(arrs, init))
    arrays.update(_gate_summaries(gates, N, T))
    if logits is not None:
        arrays.update(_logit_scores(logits, x, y, answer, T))
    else:
        arrays.update(_prediction_scores(predictions, x, y, answer, labels is not None, (N, T, L)))
    st = _stored_states(arrs, init, gates, names)
    fast = next((n for n in names if n != slow_state), None) if slow_state else None
    meta = {"format": FORMAT, "family": family, "state_names": names, "answer_state": answer,
            "slow_state": slow_state, "fast_state": fast, "gate_states": list(gates or {}),
            "decoded_states": [answer], "stored_states": list(arrs), "prefix_len": 0, "seq_len": L,
            "n_segments": len(set(segments)), "n_steps": T, "labelled": labels is not None,
            "model_config": {}, "task": None, "synthetic": True}
    return Trace(steps_to_frame(steps), arrays, meta, MemoryStates(st, np.arange(N)))


def _check_states(states: dict[str, np.ndarray]) -> tuple[list[str], dict[str, np.ndarray]]:
    """The state names and their float32 arrays, all [N, T, P, D] with one N and T."""
    if not states:
        raise TraceError("give at least one state")
    names = list(states)
    arrs = {k: np.asarray(v, dtype=np.float32) for k, v in states.items()}
    N, T = next(iter(arrs.values())).shape[:2]
    for k, v in arrs.items():
        if v.ndim != 4 or v.shape[:2] != (N, T):
            raise TraceError(f"state {k!r} must be [N={N}, T={T}, P, D], got {v.shape}")
    return names, arrs


def _step_infos(updated: list[str], segments: list[int], slow_state: str | None) -> list[StepInfo]:
    """One ``StepInfo`` per step: the state it writes, its segment and its index within the segment."""
    steps, k = [], 0
    for t in range(len(updated)):
        if t and segments[t] != segments[t - 1]:
            k = 0
        steps.append(StepInfo(t, int(segments[t]), k, k, -1, (updated[t],), (f"synthetic.step{t}",)))
        k += 1
    finish_steps(steps, slow_state)
    return steps


def _answer_length(first_state: np.ndarray, logits: np.ndarray | None, predictions: np.ndarray | None,
                   labels: np.ndarray | None) -> int:
    """Answer positions: from the logits, else the predictions, else the labels, else the first state."""
    if logits is not None:
        return np.shape(logits)[2]
    if predictions is not None:
        return np.shape(predictions)[2]
    if labels is not None:
        return np.shape(labels)[1]
    return first_state.shape[2]


def _state_summaries(arrs: dict[str, np.ndarray], init: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``step/delta.*`` and ``step/norm.*`` of every state and ``step/cos.*.*`` of every same-shaped pair."""
    out: dict[str, np.ndarray] = {}
    for s, a in arrs.items():
        N, T = a.shape[:2]
        cur = torch.from_numpy(init[s]) if s in init else torch.from_numpy(a[:, 0])
        deltas, norms = np.zeros((N, T), np.float32), np.zeros((N, T), np.float32)
        for t in range(T):
            new = torch.from_numpy(a[:, t])
            deltas[:, t] = M.relative_change(new, cur).numpy()
            norms[:, t] = M.state_norm(new).numpy()
            cur = new
        out[f"step/delta.{s}"], out[f"step/norm.{s}"] = deltas, norms
    for a, b in combinations(list(arrs), 2):
        if arrs[a].shape == arrs[b].shape:
            T = arrs[a].shape[1]
            out[f"step/cos.{a}.{b}"] = np.stack(
                [M.mean_cosine(torch.from_numpy(arrs[a][:, t]), torch.from_numpy(arrs[b][:, t])).numpy()
                 for t in range(T)], axis=1)
    return out


def _gate_summaries(gates: dict[str, np.ndarray] | None, N: int, T: int) -> dict[str, np.ndarray]:
    """``step/mean.*`` and ``step/std.*`` of every gate over its positions and features."""
    out: dict[str, np.ndarray] = {}
    for g, v in (gates or {}).items():
        v = np.asarray(v, np.float32).reshape(N, T, -1)
        out[f"step/mean.{g}"] = v.mean(-1)
        out[f"step/std.{g}"] = v.std(-1)
    return out


def _logit_scores(logits: np.ndarray, x: np.ndarray, y: np.ndarray, answer: str, T: int) -> dict[str, np.ndarray]:
    """Predictions and scores of the answer state at its T steps from its logits [N, T, L, V], as the tracer does."""
    lg = torch.as_tensor(np.asarray(logits, np.float32))
    yt, xt = torch.from_numpy(y).long(), torch.from_numpy(x).long()
    mask = M.eval_mask(xt, yt, lm=False)
    cols: dict[str, list] = {}
    for t in range(T):
        for kk, v in M.decoded_metrics(lg[:, t], yt, mask).items():
            cols.setdefault(kk, []).append(v.numpy())
    out = {f"pred/{answer}": np.stack(cols.pop("pred"), 1).astype(np.int32)}
    for kk, v in cols.items():
        out[f"step/{kk}.{answer}"] = np.stack(v, 1)
    return out


def _prediction_scores(predictions: np.ndarray | None, x: np.ndarray, y: np.ndarray, answer: str, labelled: bool,
                       shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Given predictions [N, T, L] (zeros without them) and, with labels, their errors, accuracy and exactness."""
    pred = np.zeros(shape, np.int32) if predictions is None else np.asarray(predictions, np.int32)
    out = {f"pred/{answer}": pred}
    if labelled:
        valid = y != IGNORE_LABEL
        right = pred == y[:, None]
        mask = valid & (x != y)
        out[f"step/n_wrong.{answer}"] = (mask[:, None] & ~right).sum(-1).astype(np.float32)
        out[f"step/token_acc.{answer}"] = ((mask[:, None] & right).sum(-1) / np.maximum(mask.sum(-1), 1)[:, None]).astype(np.float32)
        out[f"step/exact.{answer}"] = (right | ~valid[:, None]).all(-1)
    return out


def _stored_states(arrs: dict[str, np.ndarray], init: dict[str, np.ndarray], gates: dict[str, np.ndarray] | None,
                   names: list[str]) -> dict[str, np.ndarray]:
    """Full states, gates and (only when given for every state) the initial states."""
    st = {f"state/{k}": v for k, v in arrs.items()}
    st.update({f"init/{k}": v for k, v in init.items()})
    for g, v in (gates or {}).items():
        st[f"state/{g}"] = np.asarray(v, np.float32)
    if init and set(init) != set(names):
        st = {k: v for k, v in st.items() if not k.startswith("init/")}
    return st


__all__ = ["synthetic_trace"]
