"""Low-dimensional views of state trajectories: PCA (default) and UMAP (optional extra).

Each (puzzle, step) state [L positions, D] becomes one point. Two poolings:

* ``"mean"`` (default): average over positions -> D features. Cheap, and
  comparable across puzzles whatever their givens.
* ``"flatten"``: concatenate positions -> L*D features, the Augmented-HRM
  choice (PCA of the flattened z_H); keeps *where* things change, costs L
  times more memory.

One projection is fitted on all points of all puzzles and steps, so the
trajectories share axes. The result is a tidy DataFrame
(puzzle, step, pc1, pc2, ..., correct); ``df.attrs["explained_variance_ratio"]``
holds PCA's ratios. :func:`trajectory_figure` draws it with Plotly (lines =
trajectories; markers coloured by step, with a button to colour by correctness).

UMAP needs ``umap-learn`` (``pip install recurse-interp[umap]``); it is
imported only when :func:`umap_trajectories` runs (the import alone takes seconds).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
import pandas as pd


POOLS = ("mean", "flatten")


class ProjectionError(ValueError):
    """Bad inputs to a projection; the message names the problem."""


def pool_states(states: np.ndarray, pool: str = "mean") -> np.ndarray:
    """[N, T, L, D] -> [N, T, F]: mean over positions (F = D) or flattened (F = L*D)."""
    arr = np.asarray(states)
    if arr.ndim != 4:
        raise ProjectionError(f"states must be [N puzzles, T steps, L positions, D], got shape {arr.shape}")
    if pool == "mean":
        out = arr.mean(axis=2, dtype=np.float64)
    elif pool == "flatten":
        out = arr.reshape(arr.shape[0], arr.shape[1], -1).astype(np.float64)
    else:
        raise ProjectionError(f"pool must be one of {POOLS}, got {pool!r}")
    if not np.isfinite(out).all():
        raise ProjectionError("states contain NaN or inf")
    return out


def _frame(coords: np.ndarray, N: int, T: int, prefix: str, correct: Any, puzzles: Any, steps: Any) -> pd.DataFrame:
    puzzle_ids = np.arange(N) if puzzles is None else np.asarray(puzzles)
    step_ids = np.arange(T) if steps is None else np.asarray(steps)
    if puzzle_ids.shape != (N,):
        raise ProjectionError(f"puzzles must have {N} entries, got {puzzle_ids.shape}")
    if step_ids.shape != (T,):
        raise ProjectionError(f"steps must have {T} entries, got {step_ids.shape}")
    df = pd.DataFrame({"puzzle": np.repeat(puzzle_ids, T), "step": np.tile(step_ids, N)})
    for i in range(coords.shape[1]):
        df[f"{prefix}{i + 1}"] = coords[:, i]
    if correct is None:
        df["correct"] = pd.array([pd.NA] * len(df), dtype="boolean")
    else:
        c = np.asarray(correct, dtype=bool)
        if c.shape == (N,):
            c = np.repeat(c, T)
        elif c.shape == (N, T):
            c = c.reshape(-1)
        else:
            raise ProjectionError(f"correct must be [N={N}] (per puzzle) or [N, T={T}] (per step), got {c.shape}")
        df["correct"] = pd.array(c, dtype="boolean")
    return df


def pca_trajectories(
    states: np.ndarray,
    pool: str = "mean",
    n_components: int = 2,
    correct: np.ndarray | None = None,
    puzzles: Sequence[int] | None = None,
    steps: Sequence[int] | None = None,
    svd_solver: str = "auto",
    seed: int = 0,
) -> pd.DataFrame:
    """PCA of every (puzzle, step) point of ``states`` [N, T, L, D]; see the module docstring.

    ``correct``: [N] or [N, T] booleans for the ``correct`` column (NA when
    absent); ``puzzles``/``steps``: labels for those columns (default 0..).
    """
    from sklearn.decomposition import PCA

    X = pool_states(states, pool)
    N, T, F = X.shape
    k = int(n_components)
    if not 1 <= k <= min(N * T, F):
        raise ProjectionError(f"n_components must be in 1..{min(N * T, F)}, got {n_components}")
    pca = PCA(n_components=k, svd_solver=svd_solver, random_state=seed)
    coords = pca.fit_transform(X.reshape(N * T, F))
    df = _frame(coords, N, T, "pc", correct, puzzles, steps)
    df.attrs["explained_variance_ratio"] = [float(v) for v in pca.explained_variance_ratio_]
    df.attrs["pool"] = pool
    return df


def _import_umap():
    try:
        import umap  # noqa: F401  (numba JIT: several seconds)
    except ImportError:
        raise ImportError("UMAP needs the optional package umap-learn: pip install recurse-interp[umap]") from None
    return umap


def umap_trajectories(
    states: np.ndarray,
    pool: str = "mean",
    n_components: int = 2,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    pca_dims: int | None = 50,
    correct: np.ndarray | None = None,
    puzzles: Sequence[int] | None = None,
    steps: Sequence[int] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """UMAP of every (puzzle, step) point (columns umap1, umap2, ...); PCA to ``pca_dims`` first when wider.

    Needs ``umap-learn``; imported lazily. Deterministic for a fixed ``seed``
    (UMAP then runs single-threaded).
    """
    umap = _import_umap()
    X = pool_states(states, pool)
    N, T, F = X.shape
    flat = X.reshape(N * T, F)
    if N * T <= n_components + 1:
        raise ProjectionError(f"UMAP needs more than {n_components + 1} points, got {N * T}")
    if pca_dims is not None and F > pca_dims and N * T > pca_dims:
        from sklearn.decomposition import PCA

        flat = PCA(n_components=pca_dims, random_state=seed).fit_transform(flat)
    reducer = umap.UMAP(n_components=n_components, n_neighbors=min(n_neighbors, N * T - 1), min_dist=min_dist,
                        random_state=seed, n_jobs=1)
    coords = reducer.fit_transform(flat)
    df = _frame(np.asarray(coords), N, T, "umap", correct, puzzles, steps)
    df.attrs["pool"] = pool
    return df


def _trace_inputs(trace: Any, state: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    rows = np.asarray(trace.state_index)
    X = trace.states(state, drop_prefix=True)
    correct = None
    if trace.labelled:
        try:
            correct = np.asarray(trace.metric("exact"))[rows].astype(bool)
        except ValueError:
            correct = None
    return X, correct, rows


def pca_from_trace(trace: Any, state: str = "z_H", pool: str = "mean", n_components: int = 2, **kwargs: Any) -> pd.DataFrame:
    """:func:`pca_trajectories` on an ``interp`` Trace with full states (``correct`` = per-step exact answer)."""
    X, correct, rows = _trace_inputs(trace, state)
    return pca_trajectories(X, pool, n_components, correct=correct, puzzles=rows, **kwargs)


def umap_from_trace(trace: Any, state: str = "z_H", pool: str = "mean", **kwargs: Any) -> pd.DataFrame:
    """:func:`umap_trajectories` on an ``interp`` Trace with full states."""
    X, correct, rows = _trace_inputs(trace, state)
    return umap_trajectories(X, pool, correct=correct, puzzles=rows, **kwargs)


# --------------------------------------------------------------------------- figure


def trajectory_figure(df: pd.DataFrame, x: str | None = None, y: str | None = None, color_by: str = "step",
                      title: str | None = None):
    """Plotly ``go.Figure``: one grey line per puzzle through its steps, markers coloured by step
    (continuous scale) or by correctness; buttons switch between the two colourings."""
    import plotly.graph_objects as go

    if not {"puzzle", "step"} <= set(df.columns):
        raise ProjectionError("trajectory table needs columns puzzle and step (use pca_trajectories' output)")
    coords = [c for c in df.columns if re.fullmatch(r"(pc|umap)\d+", str(c))]
    x = x or (coords[0] if coords else None)
    y = y or (coords[1] if len(coords) > 1 else None)
    if x not in df.columns or y not in df.columns:
        raise ProjectionError(f"need two coordinate columns, got x={x!r}, y={y!r} (columns: {list(df.columns)})")
    if color_by not in ("step", "correct"):
        raise ProjectionError(f"color_by must be 'step' or 'correct', got {color_by!r}")
    d = df.sort_values(["puzzle", "step"])
    lx, ly = [], []
    for _, g in d.groupby("puzzle", sort=False):
        lx += g[x].tolist() + [None]
        ly += g[y].tolist() + [None]
    hover = "puzzle %{customdata[0]}<br>step %{customdata[1]}<extra></extra>"
    custom = d[["puzzle", "step"]].to_numpy()
    traces = [go.Scatter(x=lx, y=ly, mode="lines", line={"color": "rgba(120,120,120,0.35)", "width": 1},
                         name="trajectory", hoverinfo="skip")]
    traces.append(go.Scatter(
        x=d[x], y=d[y], mode="markers", name="step", customdata=custom, hovertemplate=hover,
        marker={"color": d["step"], "colorscale": "Viridis", "size": 6, "showscale": True,
                "colorbar": {"title": "step"}},
    ))
    corr = d["correct"] if "correct" in d else pd.Series(pd.NA, index=d.index, dtype="boolean")
    groups = [("correct", corr.eq(True).fillna(False), "#2ca02c"), ("wrong", corr.eq(False).fillna(False), "#d62728"),
              ("unknown", corr.isna(), "#9e9e9e")]
    for name, sel, colour in groups:
        sel = sel.to_numpy(dtype=bool)
        traces.append(go.Scatter(x=d[x][sel], y=d[y][sel], mode="markers", name=name, customdata=custom[sel],
                                 hovertemplate=hover, marker={"color": colour, "size": 6}))
    by_step = [True, True, False, False, False]
    by_corr = [True, False, True, True, True]
    fig = go.Figure(traces)
    for tr, v in zip(fig.data, by_step if color_by == "step" else by_corr):
        tr.visible = v
    fig.update_layout(
        title=title or f"state trajectories ({x}, {y})", template="plotly_white", xaxis_title=x, yaxis_title=y,
        updatemenus=[{"type": "buttons", "direction": "right", "x": 0, "y": 1.12, "xanchor": "left", "buttons": [
            {"label": "colour by step", "method": "update", "args": [{"visible": by_step}]},
            {"label": "colour by correctness", "method": "update", "args": [{"visible": by_corr}]},
        ]}],
    )
    ratios = df.attrs.get("explained_variance_ratio")
    if ratios and x.startswith("pc") and y.startswith("pc"):
        i, j = int(x[2:]) - 1, int(y[2:]) - 1
        if i < len(ratios) and j < len(ratios):
            fig.update_layout(xaxis_title=f"{x} ({ratios[i]:.1%})", yaxis_title=f"{y} ({ratios[j]:.1%})")
    return fig


__all__ = [
    "POOLS", "ProjectionError", "pool_states", "pca_trajectories", "umap_trajectories", "pca_from_trace",
    "umap_from_trace", "trajectory_figure",
]
