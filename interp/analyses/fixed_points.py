"""Fixed points from a trace: per-step relative change and the convergence step.

A recurrent update ``s_{t+1} = f(s_t, x)`` that converges settles at a fixed
point ``s* = f(s*, x)``; the relative change ``||s_{t+1} - s_t|| / ||s_t||``
then falls towards 0. These functions read the ``delta.<state>`` summaries the
tracer records, so they work on summary-only traces. (The residual of one
*extra* segment needs the model: ``interp.interventions.fixed_point.fixed_point_residual``.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from interp.tracing.trace import Trace, TraceError


def _state(trace: Trace, state: str | None) -> str:
    s = trace.resolve_state(state) if state else (trace.slow_state or trace.answer_state)
    if s not in trace.state_names:
        raise TraceError(f"{s!r} is not a carried state of this trace ({', '.join(trace.state_names)})")
    return s


def update_steps(trace: Trace, state: str) -> np.ndarray:
    """Global step numbers at which ``state`` is written."""
    upd = trace.steps["updated"].astype(str).str.split("+")
    return np.array([i for i, u in enumerate(upd) if state in u], dtype=np.int64)


def updates_ran(trace: Trace, steps: np.ndarray) -> np.ndarray:
    """[N] how many of the update ``steps`` each puzzle ran (all of them unless a looped model exited early)."""
    return (steps[None, :] < trace.steps_ran[:, None]).sum(1)


def relative_changes(trace: Trace, state: str | None = None) -> pd.DataFrame:
    """Tidy table of ``||s_t - s_prev|| / ||s_prev||`` at every update of ``state`` (default: slow/answer state).

    Columns: puzzle, step, segment, update (0-based count of this state's updates), delta. Updates that
    did not run (early exit) have no row.
    """
    s = _state(trace, state)
    steps = update_steps(trace, s)
    d = trace.metric(f"delta.{s}")[:, steps]
    N, U = d.shape
    ran = (np.arange(U)[None, :] < updates_ran(trace, steps)[:, None]).reshape(-1)
    return pd.DataFrame({
        "puzzle": np.repeat(np.arange(N), U),
        "step": np.tile(steps, N),
        "segment": np.tile(trace.steps["segment"].to_numpy()[steps], N),
        "update": np.tile(np.arange(U), N),
        "delta": d.reshape(-1),
    })[ran].reset_index(drop=True)


def convergence_index(deltas: np.ndarray, tol: float, stay: bool = True, ran: np.ndarray | None = None) -> np.ndarray:
    """Per row of [N, U] relative changes: first index below ``tol`` (and staying below if ``stay``); -1 if none.

    ``ran`` [N]: how many of a row's updates ran (early exit); the rest are ignored."""
    d = np.asarray(deltas)
    U = d.shape[1]
    ran = np.full(d.shape[0], U) if ran is None else np.asarray(ran)
    below = (d < tol) & (np.arange(U)[None, :] < ran[:, None])
    if not stay:
        return np.where(below.any(1), below.argmax(1), -1)
    from interp.tracing.trace import stays_true_from

    out = stays_true_from(below, np.maximum(ran, 1)) if U else np.full(d.shape[0], -1)
    return np.where(ran > 0, out, -1)


def convergence(trace: Trace, state: str | None = None, tol: float = 1e-3, stay: bool = True) -> pd.DataFrame:
    """Per puzzle: the step where ``state`` converges (relative change < ``tol``), and the final change.

    Columns: puzzle, convergence_step (global step, -1 if it never converges),
    convergence_update (index among the state's updates), converged, final_delta,
    min_delta. With ``stay=True`` the change must remain below ``tol`` to the end.
    """
    s = _state(trace, state)
    steps = update_steps(trace, s)
    d = trace.metric(f"delta.{s}")[:, steps].astype(np.float64)
    ran = updates_ran(trace, steps)
    idx = convergence_index(d, tol, stay, ran)
    d = np.where(np.arange(d.shape[1])[None, :] < ran[:, None], d, np.nan)
    rows = np.arange(trace.n_puzzles)
    with np.errstate(invalid="ignore"):
        return pd.DataFrame({
            "puzzle": rows,
            "convergence_step": np.where(idx >= 0, steps[np.maximum(idx, 0)], -1),
            "convergence_update": idx,
            "converged": idx >= 0,
            "final_delta": np.where(ran > 0, d[rows, np.maximum(ran, 1) - 1], np.nan),
            "min_delta": np.array([np.nanmin(r) if np.isfinite(r).any() else np.nan for r in d]),
        })


def distance_to_final(trace: Trace, state: str | None = None) -> pd.DataFrame:
    """Per (puzzle, update): ``||s_t - s_T|| / ||s_T||`` (needs full states); how fast the trajectory approaches its end point."""
    s = _state(trace, state)
    steps = update_steps(trace, s)
    x = trace.states(s)[:, steps].astype(np.float64)
    n, U = x.shape[:2]
    flat = x.reshape(n, U, -1)
    last = np.maximum(updates_ran(trace, steps)[trace.state_index], 1) - 1  # the last update that ran
    final = flat[np.arange(n), last][:, None]
    dist = np.linalg.norm(flat - final, axis=-1) / np.maximum(np.linalg.norm(final, axis=-1), 1e-12)
    return pd.DataFrame({
        "puzzle": np.repeat(trace.state_index, U),
        "step": np.tile(steps, n),
        "update": np.tile(np.arange(U), n),
        "distance": dist.reshape(-1),
    })


__all__ = ["relative_changes", "convergence", "convergence_index", "distance_to_final", "update_steps", "updates_ran"]
