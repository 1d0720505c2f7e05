"""Static report figures with matplotlib (PNG + SVG; no kaleido, no browser).

Each ``*_plot`` function takes the same analysis table as its interactive
twin in ``interp.views.dataset_figures`` and returns a ``matplotlib.figure.Figure``
(built without pyplot, so nothing global changes); ``save_figure`` writes it
as ``<base>.png`` and ``<base>.svg`` atomically. ``step_strip_plot`` is the
static stand-in for the step viewer: the answer grid at a few steps plus the
per-step error curve.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.mpl_figures import COLOURS, new_figure, save_figure  # the one copy; re-exported here
from interp.guess_scaling.plots import guess_scaling_plot  # the one copy; re-exported here
from interp.tracing.trace import Trace, TraceError
from interp.views.grid import COLORSCALE, ZMAX, ZMIN, cell_classes, cell_text, cell_z, grid_spec, step_confidence, to_grid, with_crop

def _viewer_cmap():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("viewer_cells", [(float(p), c) for p, c in COLORSCALE], N=1024)


def _slow_lines(ax: Any, steps: pd.DataFrame) -> None:
    for k in steps.index[steps["is_slow"].astype(bool)]:
        ax.axvline(k, color="0.6", lw=0.5, alpha=0.5, zorder=0)
    for k in steps.index[steps["segment_end"].astype(bool)][:-1]:
        ax.axvline(k + 0.5, color="0.3", lw=0.7, ls="--", alpha=0.7, zorder=0)


# ----------------------------------------------------------------------------- step strip (static viewer)
def strip_steps(trace: Trace, n_frames: int) -> list[int]:
    """Up to ``n_frames`` steps to show: spread over the steps that write the answer state, first and last included."""
    ans = trace.answer_state
    upd = [k for k, u in enumerate(trace.steps["updated"]) if ans in str(u).split("+")] or list(range(trace.n_steps))
    if len(upd) <= n_frames:
        return upd
    idx = np.unique(np.linspace(0, len(upd) - 1, n_frames).round().astype(int))
    return [upd[i] for i in idx]


def step_strip_plot(trace: Trace, puzzle: int = 0, n_frames: int = 6, model: Any = None, title: str | None = None):
    """The answer grid after a few steps (colours as in the HTML viewer) above the per-step error curve."""
    if not 0 <= int(puzzle) < trace.n_puzzles:
        raise TraceError(f"puzzle must be in [0, {trace.n_puzzles}), got {puzzle}")
    spec = grid_spec(trace)
    if spec.task == "text":
        raise TraceError("step_strip_plot draws puzzle grids; use gate_stats_plot for HRM-LM traces")
    steps = strip_steps(trace, n_frames)
    pred = trace.predictions[puzzle]
    x, y = trace.inputs[puzzle], trace.labels[puzzle]
    spec = with_crop(spec, x, y, pred[steps])
    conf = step_confidence(trace, puzzle, None, model)
    labels = y if trace.labelled else None
    F = len(steps)
    fig = new_figure(max(8.0, 1.9 * F), 5.0)
    gs = fig.add_gridspec(2, F, height_ratios=[1.25, 1.0])
    cmap = _viewer_cmap()
    fs = 9 if max(spec.shown_shape) <= 9 else 6 if max(spec.shown_shape) <= 16 else 3
    for j, k in enumerate(steps):
        ax = fig.add_subplot(gs[0, j])
        cls = cell_classes(pred[k], x, labels, spec)
        z = to_grid(cell_z(cls, None if conf is None else conf[k]), spec)
        txt = to_grid(cell_text(pred[k], spec), spec)
        ax.imshow(z, cmap=cmap, vmin=ZMIN, vmax=ZMAX, interpolation="nearest")
        R, C = z.shape
        for r in range(R):
            for c in range(C):
                if txt[r, c]:
                    ax.text(c, r, txt[r, c], ha="center", va="center", fontsize=fs)
        if spec.box:
            for b in range(1, spec.rows // spec.box):
                ax.axhline(b * spec.box - 0.5, color="k", lw=1.2)
                ax.axvline(b * spec.box - 0.5, color="k", lw=1.2)
        ax.set_xticks([])
        ax.set_yticks([])
        row = trace.steps.iloc[k]
        lab = f"step {k} (seg {int(row['segment'])})"
        if trace.labelled and "n_wrong" in trace.metric_names:
            lab += f"\n{int(trace.metric('n_wrong')[puzzle, k])} wrong"
        ax.set_title(lab, fontsize=9)
    ax = fig.add_subplot(gs[1, :])
    xs = trace.steps["step"].to_numpy()
    if trace.labelled and "n_wrong" in trace.metric_names:
        ax.plot(xs, trace.metric("n_wrong")[puzzle], color=COLOURS[3], lw=1.3, label="wrong cells")
        ax.set_ylabel("wrong cells")
    elif "ce" in trace.metric_names:
        ax.plot(xs, trace.metric("ce")[puzzle], color=COLOURS[3], lw=1.3, label="cross-entropy")
    for k in steps:
        ax.axvline(k, color=COLOURS[0], lw=1.0, alpha=0.8)
    _slow_lines(ax, trace.steps)
    ax.set_xlabel("step (grey: slow-state updates, dashed: segment ends, blue: steps shown above)")
    ax.set_xlim(-0.5, trace.n_steps - 0.5)
    ax.grid(alpha=0.25)
    fig.suptitle(title or f"{trace.family} · puzzle {int(trace.puzzle_index[puzzle])}: answer ({trace.answer_state}) per step"
                 "  [green right, red wrong, grey given; darker = more confident]", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- dataset-level
def jump_histogram_plot(table: pd.DataFrame, n_steps: int | None = None, title: str | None = None):
    """Puzzles per critical step and the jump-statistic distribution (``critical_steps`` table)."""
    if "jump" not in table:
        raise TraceError("jump_histogram_plot needs interp.analyses.critical_steps(trace)")
    fig = new_figure(9.0, 3.4)
    a1, a2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1.0]})
    if "critical_step" in table:
        crit = table["critical_step"].to_numpy()
        solved = crit[crit >= 0]
        T = int(n_steps if n_steps is not None else (crit.max() + 1 if len(solved) else 1))
        counts = np.bincount(solved, minlength=T)[:T] if len(solved) else np.zeros(T, int)
        a1.bar(np.arange(T), counts, color=COLOURS[2], width=0.9)
        a1.set_ylim(0, max(1, int(counts.max(initial=0))) * 1.05)
        a1.set_title(f"critical step: solved {len(solved)}/{len(crit)}", fontsize=10)
        from matplotlib.ticker import MaxNLocator

        a1.xaxis.set_major_locator(MaxNLocator(integer=True))
        a1.yaxis.set_major_locator(MaxNLocator(integer=True))
        a1.set_xlabel("step")
        a1.set_ylabel("puzzles")
    else:
        a1.text(0.5, 0.5, "no labels: no critical steps", ha="center", va="center", transform=a1.transAxes)
    j = table["jump"].dropna().to_numpy()
    a2.hist(j, bins=np.linspace(0, 1, 21), color=COLOURS[0])
    a2.set_title("jump = largest drop / total drop", fontsize=10)
    a2.set_xlabel("jump")
    for a in (a1, a2):
        a.grid(alpha=0.25)
    fig.suptitle(title or f"Critical steps and jumps ({len(table)} puzzles)", fontsize=11)
    return fig


def residual_plot(df: pd.DataFrame, title: str | None = None, split_by: str | None = "exact"):
    """Histogram of log10 fixed-point residuals per state (``fixed_point_residual`` table)."""
    cols = [c for c in df.columns if str(c).startswith("residual.")]
    if not cols:
        raise TraceError("residual_plot needs residual.<state> columns (interp.fixed_point_residual)")
    fig = new_figure(4.0 * len(cols), 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(cols)))
    groups = [("all", np.ones(len(df), bool), COLOURS[0])]
    if split_by and split_by in df:
        v = df[split_by].astype(bool).to_numpy()
        groups = [("solved", v, COLOURS[2]), ("unsolved", ~v, COLOURS[3])]
    for ax, c in zip(axes, cols):
        r = df[c].to_numpy(dtype=np.float64)
        for name, sel, colour in groups:
            vals = r[sel & np.isfinite(r) & (r > 0)]
            if len(vals):
                ax.hist(np.log10(vals), bins=30, alpha=0.6, color=colour, label=f"{name} ({len(vals)})")
        ax.set_title(c.split(".", 1)[1], fontsize=10)
        ax.set_xlabel("log10 residual")
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7)
    fig.suptitle(title or "Fixed-point residual over one extra segment", fontsize=11)
    return fig


def hl_cosine_plot(tables: pd.DataFrame | Mapping[str, pd.DataFrame], title: str | None = None):
    """cos(slow, fast) per step, ±1 std band, slow updates marked (``hl_alignment`` tables)."""
    runs = {"": tables} if isinstance(tables, pd.DataFrame) else dict(tables)
    fig = new_figure(7.5, 3.4)
    ax = fig.subplots()
    for i, (name, df) in enumerate(runs.items()):
        if not {"step", "cos_mean"} <= set(df.columns):
            raise TraceError("hl_cosine_plot needs interp.analyses.hl_alignment(trace) tables")
        c = COLOURS[i % len(COLOURS)]
        x, m = df["step"].to_numpy(), df["cos_mean"].to_numpy(dtype=np.float64)
        ax.plot(x, m, color=c, lw=1.3, label=name or "cos(slow, fast)")
        if "cos_std" in df:
            s = df["cos_std"].to_numpy(dtype=np.float64)
            ax.fill_between(x, m - s, m + s, color=c, alpha=0.15, lw=0)
        if "is_slow" in df:
            sl = df["is_slow"].astype(bool).to_numpy()
            ax.plot(x[sl], m[sl], "^", color=c, ms=4, label=f"{name} slow update".strip())
    ax.set_xlabel("step")
    ax.set_ylabel("cosine (mean over positions)")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7)
    ax.set_title(title or "Slow/fast (H/L) alignment per step", fontsize=11)
    return fig


def gate_stats_plot(stats: Any, title: str | None = None):
    """HRM-LM gate means per step (slow firings marked) and fusion weights per pass (``gate_statistics``)."""
    per = getattr(stats, "per_step", None)
    if per is None:
        raise TraceError("gate_stats_plot needs interp.analyses.gate_statistics(trace)")
    gates = [c[:-5] for c in per.columns if c.startswith("gate_") and c.endswith("_mean")]
    has_fusion = isinstance(stats.fusion, pd.DataFrame) and not stats.fusion.empty
    fig = new_figure(10.0 if has_fusion else 7.0, 3.4)
    axes = np.atleast_1d(fig.subplots(1, 2 if has_fusion else 1, gridspec_kw={"width_ratios": [2, 1]} if has_fusion else None))
    ax = axes[0]
    x = per["step"].to_numpy()
    for i, g in enumerate(gates):
        m = per[f"{g}_mean"].to_numpy(dtype=np.float64)
        ok = np.isfinite(m)
        ax.plot(x[ok], m[ok], "o-", ms=3, color=COLOURS[i], label=g)
        if f"{g}_std" in per:
            s = per[f"{g}_std"].to_numpy(dtype=np.float64)
            ax.fill_between(x[ok], (m - s)[ok], (m + s)[ok], color=COLOURS[i], alpha=0.12, lw=0)
    for k in x[per["is_slow"].astype(bool).to_numpy()] if "is_slow" in per else []:
        ax.axvline(k, color="0.6", lw=0.6, alpha=0.6, zorder=0)
    ax.set_xlabel("step (grey: Slow firings)")
    ax.set_ylabel("gate value")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7)
    if has_fusion:
        fu = stats.fusion
        srcs = [c for c in fu.columns if c != "pass"]
        bottom = np.zeros(len(fu))
        for i, s in enumerate(srcs):
            axes[1].bar(fu["pass"], fu[s], bottom=bottom, color=COLOURS[(i + 4) % 8], label=str(s))
            bottom += fu[s].to_numpy(dtype=np.float64)
        axes[1].set_xlabel("pass")
        axes[1].set_ylabel("fusion weight")
        axes[1].set_xticks(fu["pass"])
        axes[1].legend(fontsize=7)
    fig.suptitle(title or "Gate statistics", fontsize=11)
    return fig


def probe_curve_plot(df: pd.DataFrame, title: str | None = None):
    """Probe accuracy per step and target, with shuffled-label control (dotted) and chance (dashed)."""
    if not {"step", "target", "accuracy"} <= set(df.columns):
        raise TraceError("probe_curve_plot needs probes.probe_curves / probes_from_trace output")
    fig = new_figure(7.5, 3.6)
    ax = fig.subplots()
    for i, (t, g) in enumerate(df.groupby("target", sort=False)):
        g = g.sort_values("step")
        c = COLOURS[i % len(COLOURS)]
        ax.plot(g["step"], g["accuracy"], "o-", ms=3, color=c, label=str(t))
        if "control_accuracy" in g:
            ax.plot(g["step"], g["control_accuracy"], ":", color=c, label=f"{t} control")
        if "chance" in g:
            ax.plot(g["step"], g["chance"], "--", color=c, lw=0.8, alpha=0.6)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("held-out accuracy")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title or "Linear probes per step (split by puzzle)", fontsize=11)
    return fig


def trajectory_plot(df: pd.DataFrame, x: str | None = None, y: str | None = None, title: str | None = None):
    """PCA/UMAP trajectories: a grey line per puzzle, points coloured by step (``pca_trajectories`` table)."""
    coords = [c for c in df.columns if str(c)[:2] == "pc" or str(c)[:4] == "umap"]
    x = x or (coords[0] if coords else None)
    y = y or (coords[1] if len(coords) > 1 else None)
    if x is None or y is None or not {"puzzle", "step"} <= set(df.columns):
        raise TraceError("trajectory_plot needs puzzle, step and two coordinate columns (probes.pca_trajectories)")
    fig = new_figure(5.5, 4.5)
    ax = fig.subplots()
    d = df.sort_values(["puzzle", "step"])
    for _, g in d.groupby("puzzle", sort=False):
        ax.plot(g[x], g[y], color="0.6", lw=0.6, alpha=0.6)
    sc = ax.scatter(d[x], d[y], c=d["step"], cmap="viridis", s=10)
    fig.colorbar(sc, ax=ax, label="step")
    if "correct" in d:
        last = d.groupby("puzzle").tail(1)
        ok = last["correct"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        ax.scatter(last[x][ok], last[y][ok], marker="o", facecolors="none", edgecolors=COLOURS[2], s=60,
                   label="final answer correct")
        ax.legend(fontsize=7)
    ratios = df.attrs.get("explained_variance_ratio")
    xl, yl = x, y
    if ratios and x.startswith("pc") and y.startswith("pc"):
        xl, yl = f"{x} ({ratios[int(x[2:]) - 1]:.1%})", f"{y} ({ratios[int(y[2:]) - 1]:.1%})"
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title(title or "State trajectories", fontsize=11)
    return fig


def plot_head_masses(df: pd.DataFrame, path: str | os.PathLike, title: str | None = None) -> Path:
    """A PNG with one panel per (layer, head): row / column / box mass (and self) over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if df.empty:
        raise TraceError("no attention masses to plot")
    layers = sorted(df["layer"].unique())
    heads = sorted(df["head"].unique())
    fig, axes = plt.subplots(len(layers), len(heads), figsize=(2.6 * len(heads), 2.0 * len(layers) + 0.6),
                             squeeze=False, sharex=True, sharey=True)
    for a, k in enumerate(layers):
        for b, h in enumerate(heads):
            ax = axes[a][b]
            d = df[(df["layer"] == k) & (df["head"] == h)].sort_values("step")
            for col, style in (("row", "-"), ("col", "-"), ("box", "-"), ("self", ":")):
                ax.plot(d["step"], d[col], style, marker=".", ms=3, label=col)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"layer {k} head {h}", fontsize=8)
            if a == len(layers) - 1:
                ax.set_xlabel("step", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(title or "attention mass on the same row / column / box (self excluded)", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


__all__ = ["new_figure", "save_figure", "step_strip_plot", "strip_steps", "jump_histogram_plot", "residual_plot",
           "hl_cosine_plot", "gate_stats_plot", "probe_curve_plot", "trajectory_plot", "guess_scaling_plot",
           "plot_head_masses"]
