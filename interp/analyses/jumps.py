"""Grokking-style jumps: does the answer improve gradually or flip at one critical step?

Per puzzle an error curve ``e_t`` over the step axis (wrong cells, Sudoku
conflicts, or cross-entropy of the decoded answer). Two numbers describe it:

* ``critical_step``: the first step from which the answer is exactly right
  and stays right to the end (-1 if the final answer is wrong);
* ``jump``: the largest single-step drop of ``e`` divided by the sum of all
  drops along the trajectory. 1.0 is a pure jump (all improvement in one
  step); a steady decline over ``k`` steps gives ``1/k``. NaN when the error
  never drops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from interp.tracing.trace import Trace, TraceError, stays_true_from
from .sudoku_conflicts import sudoku_conflicts

ERRORS = ("token_error", "conflicts", "ce", "token_acc")


def error_curves(trace: Trace, error: str = "token_error") -> np.ndarray:
    """[N, T] error per step: ``token_error`` (wrong non-given cells), ``conflicts`` (Sudoku clashes of
    the prediction), ``ce`` (cross-entropy) or ``token_acc`` (1 - accuracy)."""
    if error == "token_error":
        return trace.metric("n_wrong").astype(np.float64)
    if error == "ce":
        return trace.metric("ce").astype(np.float64)
    if error == "token_acc":
        return 1.0 - trace.metric("token_acc").astype(np.float64)
    if error == "conflicts":
        return sudoku_conflicts(trace.predictions).astype(np.float64)
    raise TraceError(f"error must be one of {', '.join(ERRORS)}, not {error!r}")


def jump_statistic(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of [N, T]: (jump = largest drop / total drops, largest drop, step after the largest drop)."""
    e = np.asarray(curves, dtype=np.float64)
    if e.shape[1] < 2:
        n = e.shape[0]
        return np.full(n, np.nan), np.zeros(n), np.full(n, -1)
    drops = np.maximum(e[:, :-1] - e[:, 1:], 0.0)
    drops = np.nan_to_num(drops, nan=0.0)
    total = drops.sum(1)
    largest = drops.max(1)
    where = drops.argmax(1) + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        jump = np.where(total > 0, largest / total, np.nan)
    return jump, largest, np.where(total > 0, where, -1)


def critical_steps(trace: Trace, error: str = "token_error") -> pd.DataFrame:
    """Per puzzle: critical step (and its segment), jump statistic, largest drop and where, error at start and end."""
    e = error_curves(trace, error)
    jump, largest, where = jump_statistic(e)
    df = pd.DataFrame({"puzzle": np.arange(trace.n_puzzles), "puzzle_index": trace.puzzle_index})
    if trace.labelled and "exact" in trace.metric_names:
        crit = stays_true_from(trace.metric("exact").astype(bool), trace.steps_ran)
        seg = trace.steps["segment"].to_numpy()
        df["critical_step"] = crit
        df["critical_segment"] = np.where(crit >= 0, seg[np.maximum(crit, 0)], -1)
        df["final_exact"] = trace.at_last_step(trace.metric("exact")).astype(bool)
    df["jump"] = jump
    df["largest_drop"] = largest
    df["largest_drop_step"] = where
    df["total_drop"] = np.nan_to_num(np.maximum(e[:, :-1] - e[:, 1:], 0.0)).sum(1) if e.shape[1] > 1 else 0.0
    df["initial_error"] = e[:, 0]
    df["final_error"] = trace.at_last_step(e)  # the last step that ran (early exit)
    df.attrs["error"] = error
    return df


def jump_distribution(table: pd.DataFrame, n_steps: int | None = None, pure: float = 0.9) -> dict[str, float]:
    """Dataset-level summary of ``critical_steps``: share solved, quartiles of the critical step, share of pure jumps.

    The critical step's quartiles are observed steps (see :func:`critical_step_quartiles`): with 8 puzzles
    solved at step 3 and 8 at step 7, the lower median is 3, not the 5 no puzzle has.
    """
    out: dict[str, float] = {"n_puzzles": float(len(table))}
    j = table["jump"].dropna()
    out["mean_jump"] = float(j.mean()) if len(j) else float("nan")
    out["median_jump"] = float(j.median()) if len(j) else float("nan")
    out["frac_pure_jump"] = float((j >= pure).mean()) if len(j) else float("nan")
    if "critical_step" in table:
        solved = table["critical_step"] >= 0
        out["frac_solved"] = float(solved.mean()) if len(table) else float("nan")
        out.update(critical_step_quartiles(table.loc[solved, "critical_step"].to_numpy()))
        out["frac_solved_with_pure_jump"] = float((solved & (table["jump"] >= pure)).sum() / max(int(solved.sum()), 1))
    return out


def critical_step_quartiles(steps: np.ndarray) -> dict[str, float]:
    """``critical_step_q1``, ``critical_step_lower_median``, ``critical_step_q3`` of the solved puzzles' steps.

    Each is an observed step (the smallest step with at least 25% / 50% / 75% of the puzzles at or
    before it: numpy's ``inverted_cdf``), never the mean of two middle steps; NaN when none is solved.
    """
    steps = np.asarray(steps, dtype=np.float64)
    names = ("critical_step_q1", "critical_step_lower_median", "critical_step_q3")
    if not steps.size:
        return dict.fromkeys(names, float("nan"))
    q = np.percentile(steps, [25, 50, 75], method="inverted_cdf")
    return {n: float(v) for n, v in zip(names, q)}


def critical_step_histogram(table: pd.DataFrame, n_steps: int) -> pd.DataFrame:
    """Count of puzzles per critical step (0..n_steps-1), plus the unsolved count at step -1."""
    if "critical_step" not in table:
        raise TraceError("the table has no critical_step column (trace without labels)")
    counts = table["critical_step"].value_counts()
    idx = np.arange(-1, n_steps)
    return pd.DataFrame({"critical_step": idx, "n_puzzles": [int(counts.get(i, 0)) for i in idx]})


__all__ = ["error_curves", "jump_statistic", "critical_steps", "jump_distribution", "critical_step_quartiles",
           "critical_step_histogram", "ERRORS"]
