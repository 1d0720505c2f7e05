"""H/L (slow/fast) alignment: how similar are the two states at each step?

``cosine`` is the per-position cosine similarity of the slow and fast state,
averaged over positions (recorded by the tracer, so summary-only traces
work); the table flags steps that write the slow state and steps right after
one. ``linear_cka`` (optional, needs full states) compares the two
representations across puzzles and positions and is invariant to rotations
and isotropic scaling of either state.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from interp.tracing.trace import Trace, TraceError


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear CKA between row-aligned samples X [n, p] and Y [n, q] (features centred)."""
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    if X.shape[0] != Y.shape[0]:
        raise TraceError(f"CKA needs the same number of samples, got {X.shape[0]} and {Y.shape[0]}")
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    hsic = np.linalg.norm(Y.T @ X) ** 2
    den = np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)
    return float(hsic / den) if den > 0 else float("nan")


def _pair(trace: Trace, a: str | None, b: str | None) -> tuple[str, str]:
    a = trace.resolve_state(a or "slow")
    b = trace.resolve_state(b or "fast")
    if a == b:
        raise TraceError("alignment needs two different states")
    return a, b


def cosine_key(trace: Trace, a: str, b: str) -> str:
    for k in (f"cos.{a}.{b}", f"cos.{b}.{a}"):
        if k in trace.metric_names:
            return k
    raise TraceError(f"trace has no cosine between {a!r} and {b!r} (states of different shapes?)")


def hl_alignment(trace: Trace, a: str | None = None, b: str | None = None, cka: bool = False,
                 max_samples: int = 4096, seed: int = 0) -> pd.DataFrame:
    """Per step: mean/std over puzzles of cos(a, b) (default slow vs fast) with the step flags.

    With ``cka=True`` (full states of both needed) adds linear CKA computed on up
    to ``max_samples`` (puzzle, position) rows per step.
    """
    a, b = _pair(trace, a, b)
    cos = trace.metric(cosine_key(trace, a, b)).astype(np.float64)
    df = trace.steps[["step", "segment", "step_in_segment", "updated", "is_slow", "after_slow"]].copy()
    df["cos_mean"] = cos.mean(0)
    df["cos_std"] = cos.std(0)
    if cka:
        xa, xb = trace.states(a), trace.states(b)
        n, T, P, _ = xa.shape
        rng = np.random.default_rng(seed)
        rows = rng.choice(n * P, size=min(max_samples, n * P), replace=False)
        vals = []
        for t in range(T):
            A = xa[:, t].reshape(n * P, -1)[rows]
            B = xb[:, t].reshape(n * P, -1)[rows]
            vals.append(linear_cka(A, B))
        df["cka"] = vals
    return df


def alignment_by_phase(table: pd.DataFrame) -> pd.DataFrame:
    """Mean cosine (and CKA) for steps right after a slow update vs all other steps."""
    cols = [c for c in ("cos_mean", "cka") if c in table]
    g = table.groupby("after_slow")[cols].mean().reset_index()
    return g.rename(columns={"after_slow": "after_slow_update"})


__all__ = ["hl_alignment", "linear_cka", "alignment_by_phase", "cosine_key"]
