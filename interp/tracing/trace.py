"""The ``Trace`` object: per-puzzle, per-step records of one run of a recursive model.

Everything is numpy (a trace never needs torch or the model to be read).
Arrays, first axis = puzzle (N), second = step (T, the rows of ``steps``)::

    inputs  [N, L] int32     labels [N, L] int32 (-100 = not scored)
    puzzle_ids [N] int32     puzzle_index [N] int64 (row in the source data)
    pred/<s>   [N, T, L]     argmax of decode(state s) after every step (logit lens)
    conf/<s>   [N, T, L]     its top softmax probability (float16; optional)
    step/<m>   [N, T]        per-step scalars, see below
    seg/<m>    [N, S] (or [N, S, K])   per-segment values (halting logits, pass loss, fusion)
    steps_ran  [N] int32     only for a looped model that exits early: the steps each input ran
                             (later steps: NaN, answers repeated; see ``steps_ran``, ``ran_mask``)

Per-step scalars ``step/<m>``: for each decoded state ``s`` ``ce.s``,
``token_acc.s``, ``n_wrong.s``, ``exact.s``; for each carried state ``norm.s``
(mean over positions of the L2 norm) and ``delta.s`` (relative change
``||s_t - s_{t-1}|| / ||s_{t-1}||``, 0 at steps that do not write ``s``); for
each pair ``cos.a.b`` (cosine, mean over positions); HRM-LM gates ``mean.g``,
``std.g``; puzzle models ``q_halt``/``q_continue`` (the halting head read on
the answer state after every step; the segment's real values are ``seg/``).

Full states (optional, for all or a subset of puzzles) ``state/<s>``
[n, T, P, D] (P = prefix + L positions) with ``init/<s>`` [n, P, D] and
``state_index`` [n] (which puzzles). They may be loaded lazily from disk.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

FORMAT = "recurse-interp-trace/1"
ANSWER_METRICS = ("ce", "token_acc", "n_wrong", "exact")
STEP_TABLE_COLUMNS = ("step", "segment", "step_in_segment", "outer", "inner", "updated", "is_slow", "after_slow",
                      "segment_end")


class TraceError(ValueError):
    """A trace that cannot be built, read or queried; the message names the problem."""


class StateStore(Protocol):
    """Where full states live (in memory or in chunk files)."""

    index: np.ndarray  # puzzle indices that have full states

    def keys(self) -> list[str]: ...

    def get(self, key: str) -> np.ndarray: ...


class MemoryStates:
    """Full states held in memory."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None, index: np.ndarray | None = None):
        self.arrays = dict(arrays or {})
        self.index = np.asarray(index if index is not None else np.zeros(0, np.int64), dtype=np.int64)

    def keys(self) -> list[str]:
        return list(self.arrays)

    def get(self, key: str) -> np.ndarray:
        return self.arrays[key]


class Trace:
    """Per-step record of a model run; see the module docstring for the arrays.

    ``steps`` is the step table (``interp.tracing.schema``); ``meta`` holds the model
    config, state names, checkpoint hash, task and settings.
    """

    def __init__(self, steps: pd.DataFrame, arrays: dict[str, np.ndarray], meta: dict[str, Any],
                 states: StateStore | None = None):
        self.steps = steps.reset_index(drop=True)
        self.arrays = arrays
        self.meta = meta
        self._states: StateStore = states if states is not None else MemoryStates()
        self.validate()

    # ----- basic facts ----------------------------------------------------
    @property
    def n_puzzles(self) -> int:
        return int(self.arrays["inputs"].shape[0])

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def family(self) -> str:
        return self.meta.get("family", "")

    @property
    def state_names(self) -> list[str]:
        return list(self.meta.get("state_names", []))

    @property
    def answer_state(self) -> str:
        return self.meta.get("answer_state", "")

    @property
    def slow_state(self) -> str | None:
        return self.meta.get("slow_state")

    @property
    def fast_state(self) -> str | None:
        return self.meta.get("fast_state")

    @property
    def prefix_len(self) -> int:
        return int(self.meta.get("prefix_len", 0))

    @property
    def labelled(self) -> bool:
        return bool(self.meta.get("labelled", False))

    @property
    def inputs(self) -> np.ndarray:
        return self.arrays["inputs"]

    @property
    def labels(self) -> np.ndarray:
        return self.arrays["labels"]

    @property
    def puzzle_ids(self) -> np.ndarray:
        return self.arrays["puzzle_ids"]

    @property
    def puzzle_index(self) -> np.ndarray:
        return self.arrays["puzzle_index"]

    @property
    def predictions(self) -> np.ndarray:
        """[N, T, L] argmax answer after every step (decode of the answer state)."""
        return self.arrays[f"pred/{self.answer_state}"]

    def latent_predictions(self, state: str) -> np.ndarray:
        """[N, T, L] logit-lens argmax of another state (e.g. ``z_L``), when it was decoded."""
        key = f"pred/{self.resolve_state(state)}"
        if key not in self.arrays:
            raise TraceError(f"state {state!r} was not decoded in this trace (decoded: {self.decoded_states})")
        return self.arrays[key]

    def confidences(self, state: str | None = None) -> np.ndarray:
        """[N, T, L] top softmax probability of every decoded cell (``conf/<state>``, default the answer state)."""
        key = f"conf/{self.resolve_state(state or self.answer_state)}"
        if key not in self.arrays:
            raise TraceError(f"trace has no {key} (traced with confidence=False?)")
        return self.arrays[key].astype(np.float32)

    @property
    def decoded_states(self) -> list[str]:
        return [k[5:] for k in self.arrays if k.startswith("pred/")]

    @property
    def final_predictions(self) -> np.ndarray:
        """[N, L] the answer after each puzzle's last step (the last step that ran, for an early exit)."""
        return self.at_last_step(self.predictions)

    # ----- steps that ran (early exit) ------------------------------------
    @property
    def steps_ran(self) -> np.ndarray:
        """[N] how many steps each puzzle ran: ``n_steps`` unless a looped model exited early (``steps_ran``).

        Steps past a puzzle's count did not run: their values are NaN (answers repeat the last one)."""
        v = self.arrays.get("steps_ran")
        return np.full(self.n_puzzles, self.n_steps, np.int64) if v is None else np.asarray(v, np.int64)

    def ran_mask(self) -> np.ndarray:
        """[N, T] True where the step ran for the puzzle."""
        return np.arange(self.n_steps)[None, :] < self.steps_ran[:, None]

    def at_last_step(self, values: np.ndarray) -> np.ndarray:
        """``values`` [N, T, ...] at each puzzle's last step that ran."""
        return np.asarray(values)[np.arange(self.n_puzzles), np.maximum(self.steps_ran, 1) - 1]

    def resolve_state(self, name: str) -> str:
        """Accept a state name or the aliases ``slow``/``fast``/``answer``."""
        alias = {"slow": self.slow_state, "fast": self.fast_state, "answer": self.answer_state}
        if name in alias and name not in self.state_names and name not in self.meta.get("gate_states", []):
            if not alias[name]:
                raise TraceError(f"a {self.family} trace has no {name} state (states: {self.state_names})")
            return alias[name]
        return name

    # ----- per-step metrics -----------------------------------------------
    @property
    def metric_names(self) -> list[str]:
        """Names accepted by ``metric``: answer metrics unsuffixed, everything else as stored."""
        answer = {f"{m}.{self.answer_state}" for m in ANSWER_METRICS}
        out = [m for m in ANSWER_METRICS if f"step/{m}.{self.answer_state}" in self.arrays]
        return out + [k[5:] for k in self.arrays if k.startswith("step/") and k[5:] not in answer]

    def metric(self, name: str) -> np.ndarray:
        """Per-step values [N, T]; ``ce``/``token_acc``/``n_wrong``/``exact`` mean the answer state."""
        key = f"step/{name}.{self.answer_state}" if name in ANSWER_METRICS else f"step/{name}"
        if key not in self.arrays:
            raise TraceError(f"trace has no per-step metric {name!r} (have: {', '.join(self.metric_names)})")
        return self.arrays[key]

    def segment_metric(self, name: str) -> np.ndarray:
        key = f"seg/{name}"
        if key not in self.arrays:
            have = [k[4:] for k in self.arrays if k.startswith("seg/")]
            raise TraceError(f"trace has no per-segment value {name!r} (have: {', '.join(have)})")
        return self.arrays[key]

    # ----- full states ----------------------------------------------------
    @property
    def stored_states(self) -> list[str]:
        return [k[6:] for k in self._states.keys() if k.startswith("state/")]

    @property
    def state_index(self) -> np.ndarray:
        """Puzzle indices (0..N-1) whose full states are stored."""
        return self._states.index

    def has_states(self, name: str) -> bool:
        return self.resolve_state(name) in self.stored_states

    def _rows(self, puzzles: Sequence[int] | np.ndarray | None) -> np.ndarray | slice:
        if puzzles is None:
            return slice(None)
        where = {int(p): i for i, p in enumerate(self.state_index)}
        puzzles = np.atleast_1d(np.asarray(puzzles, dtype=np.int64))
        missing = [int(p) for p in puzzles if int(p) not in where]
        if missing:
            raise TraceError(f"no full states stored for puzzle(s) {missing[:5]} (stored for {len(where)} puzzles)")
        return np.array([where[int(p)] for p in puzzles], dtype=np.int64)

    def states(self, name: str, puzzles: Sequence[int] | np.ndarray | None = None, drop_prefix: bool = False) -> np.ndarray:
        """Full state ``name`` after every step: [n, T, P, D] for the stored (or given) puzzles
        (an attention pattern ``pattern.layer{k}``: [n, T, heads, query, key], NaN at steps without that layer)."""
        name = self.resolve_state(name)
        if name not in self.stored_states:
            raise TraceError(
                f"state {name!r} is not stored in this trace (stored: {self.stored_states or 'none'}); "
                "trace with states='all' or states=[...] to keep it"
            )
        arr = self._states.get(f"state/{name}")[self._rows(puzzles)]
        return arr[:, :, self.prefix_len:] if drop_prefix and name in self.state_names else arr

    def initial_states(self, name: str, puzzles: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The state before step 0: [n, P, D]."""
        name = self.resolve_state(name)
        key = f"init/{name}"
        if key not in self._states.keys():
            raise TraceError(f"no initial value of {name!r} is stored in this trace")
        return self._states.get(key)[self._rows(puzzles)]

    # ----- tables ---------------------------------------------------------
    def _step_frame(self) -> pd.DataFrame:
        return self.steps[[c for c in STEP_TABLE_COLUMNS if c in self.steps.columns]]

    def summary(self, level: str = "step") -> pd.DataFrame:
        """Tidy tables of the per-step metrics.

        ``level="puzzle_step"``: one row per (puzzle, step) with the step table;
        ``"step"``: the mean over puzzles per step (``exact`` becomes a fraction);
        ``"puzzle"``: one row per puzzle with final scores and the step where the
        answer first becomes, and stays, exactly correct (-1 if it never does).
        """
        N, T = self.n_puzzles, self.n_steps
        names = self.metric_names
        cols = {n: self.metric(n) for n in names}
        if "steps_ran" in self.arrays:  # steps that did not run count as missing, not as wrong
            ran = self.ran_mask()
            cols = {n: np.where(ran, v.astype(np.float64), np.nan) for n, v in cols.items()}
        if level == "puzzle_step":
            df = pd.DataFrame({"puzzle": np.repeat(np.arange(N), T), "step": np.tile(np.arange(T), N)})
            for n, v in cols.items():
                df[n] = v.reshape(-1)
            return df.merge(self._step_frame(), on="step", how="left")[
                ["puzzle", *self._step_frame().columns, *names]]
        if level == "step":
            df = self._step_frame().copy()
            with warnings.catch_warnings():  # all-NaN columns (e.g. a gate that did not fire) stay NaN quietly
                warnings.simplefilter("ignore", RuntimeWarning)
                for n, v in cols.items():
                    df[n] = np.nanmean(v.astype(np.float64), axis=0) if N else np.nan
            return df
        if level == "puzzle":
            df = pd.DataFrame({"puzzle": np.arange(N), "puzzle_index": self.puzzle_index})
            for n in ANSWER_METRICS:
                if n in cols:
                    df[f"final_{n}"] = self.at_last_step(cols[n])
            if "exact" in cols and self.labelled:
                ex = np.nan_to_num(cols["exact"]).astype(bool)
                df["first_correct_step"] = np.where(ex.any(1), ex.argmax(1), -1)
                df["critical_step"] = stays_true_from(ex, self.steps_ran)
            if "seg/q_halt" in self.arrays:
                df["final_q_halt"] = self.arrays["seg/q_halt"][:, -1]
            return df
        raise TraceError(f"level must be 'puzzle_step', 'step' or 'puzzle', not {level!r}")

    # ----- subsets, checks ------------------------------------------------
    def select(self, puzzles: Sequence[int] | np.ndarray) -> "Trace":
        """A new in-memory trace with only the given puzzles (full states kept where stored)."""
        idx = np.asarray(puzzles, dtype=np.int64)
        arrays = {k: v[idx] for k, v in self.arrays.items()}
        stored = set(self.state_index.tolist())
        keep = [i for i, p in enumerate(idx) if int(p) in stored]
        st = {}
        if keep and self.stored_states:
            rows = self._rows(idx[keep])
            st = {k: self._states.get(k)[rows] for k in self._states.keys()}
        return Trace(self.steps.copy(), arrays, json.loads(json.dumps(self.meta)),
                     MemoryStates(st, np.array(keep, dtype=np.int64)))

    def load_all_states(self) -> "Trace":
        """Read lazily stored states into memory (returns self)."""
        if not isinstance(self._states, MemoryStates):
            self._states = MemoryStates({k: np.asarray(self._states.get(k)) for k in self._states.keys()},
                                        self._states.index)
        return self

    def validate(self) -> None:
        """Check that every array has the shape the step table and the metadata imply."""
        for k in ("inputs", "labels", "puzzle_ids", "puzzle_index"):
            if k not in self.arrays:
                raise TraceError(f"trace is missing the array {k!r}")
        N, L = self.arrays["inputs"].shape if self.arrays["inputs"].ndim == 2 else (-1, -1)
        if N < 0:
            raise TraceError(f"inputs must be [N, L], got shape {self.arrays['inputs'].shape}")
        T = self.n_steps
        if list(self.steps.get("step", pd.Series(dtype=int))) != list(range(T)):
            raise TraceError("step table must number its steps 0..T-1 in order")
        S = int(self.meta.get("n_segments", 0))
        for k, v in self.arrays.items():
            if v.shape[:1] != (N,):
                raise TraceError(f"array {k!r} has {v.shape[0] if v.ndim else 'no'} rows, expected {N} puzzles")
            if k == "labels" and v.shape != (N, L):
                raise TraceError(f"labels have shape {v.shape}, expected {(N, L)}")
            if k.startswith(("pred/", "conf/")) and v.shape != (N, T, L):
                raise TraceError(f"{k} has shape {v.shape}, expected {(N, T, L)}")
            if k.startswith("step/") and v.shape != (N, T):
                raise TraceError(f"{k} has shape {v.shape}, expected {(N, T)}")
            if k.startswith("seg/") and (v.ndim < 2 or v.shape[1] != S):
                raise TraceError(f"{k} has shape {v.shape}, expected [{N}, {S}, ...]")
        if "steps_ran" in self.arrays:
            r = self.arrays["steps_ran"]
            if r.shape != (N,) or (N and (r.min() < 1 or r.max() > T)):
                raise TraceError(f"steps_ran must be [{N}] counts in 1..{T}")
        n_sp = len(self.state_index)
        for k in self._states.keys():
            shape = _shape_of(self._states, k)
            if shape[0] != n_sp:
                raise TraceError(f"{k} holds {shape[0]} puzzles but state_index lists {n_sp}")
            if k.startswith("state/pattern."):  # an attention pattern: [n, T, heads, query, key]
                if len(shape) != 5 or shape[1] != T:
                    raise TraceError(f"{k} has shape {shape}, expected [{n_sp}, {T}, heads, query, key]")
            elif k.startswith("state/") and (len(shape) != 4 or shape[1] != T):
                raise TraceError(f"{k} has shape {shape}, expected [{n_sp}, {T}, P, D]")
        if n_sp and (self.state_index.min() < 0 or self.state_index.max() >= N):
            raise TraceError("state_index points outside the traced puzzles")

    def __repr__(self) -> str:
        return (f"Trace(family={self.family!r}, puzzles={self.n_puzzles}, steps={self.n_steps}, "
                f"segments={self.meta.get('n_segments')}, states={self.state_names}, "
                f"full_states={self.stored_states or 'none'} for {len(self.state_index)} puzzles)")


def _shape_of(store: StateStore, key: str) -> tuple[int, ...]:
    shape_fn = getattr(store, "shape", None)
    return tuple(shape_fn(key)) if shape_fn else tuple(store.get(key).shape)


def stays_true_from(flags: np.ndarray, ran: np.ndarray | None = None) -> np.ndarray:
    """Per row of a boolean [N, T] array: the first t with flags[t:] all true, -1 if the last is false.

    ``ran`` [N]: a row's entries from ``ran[i]`` on did not happen (early exit): its last entry is ``ran[i] - 1``."""
    flags = np.asarray(flags, dtype=bool)
    N, T = flags.shape
    if ran is not None and T:
        ran = np.clip(np.asarray(ran, dtype=np.int64), 1, T)
        out = stays_true_from(flags | (np.arange(T)[None, :] >= ran[:, None]))
        return np.where(flags[np.arange(N), ran - 1], out, -1).astype(np.int64)
    if T == 0:
        return np.full(N, -1, dtype=np.int64)
    # index of the last False (-1 if none); the run of Trues after it reaches the end
    rev_false = (~flags)[:, ::-1]
    has_false = rev_false.any(1)
    last_false = T - 1 - rev_false.argmax(1)
    start = np.where(has_false, last_false + 1, 0)
    return np.where(flags[:, -1], start, -1).astype(np.int64)


__all__ = ["FORMAT", "Trace", "TraceError", "MemoryStates", "StateStore", "stays_true_from", "ANSWER_METRICS"]
