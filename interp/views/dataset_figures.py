"""Dataset-level interactive views (Plotly): each function takes an analysis DataFrame and returns a figure.

    from interp.analyses import critical_steps, hl_alignment
    from interp.views.dataset_figures import jump_histogram_figure, hl_cosine_figure
    from common.plotly_html import write_html
    write_html(jump_histogram_figure(critical_steps(tr), tr.n_steps), "jumps.html")

Inputs are the tidy tables the analyses already produce, so a figure never
needs a model:

* ``jump_histogram_figure``  ``interp.analyses.jumps.critical_steps``
* ``residual_figure``        ``interp.interventions.fixed_point.fixed_point_residual`` (``residual.<state>`` columns)
* ``hl_cosine_figure``       ``interp.analyses.alignment.hl_alignment`` (one table or ``{run: table}``)
* ``gate_stats_figure``      ``interp.analyses.gates.gate_statistics`` (a ``GateStats``)
* ``probe_accuracy_figure``  ``probes.linear.probe_curves`` / ``probes_from_trace``
* ``guess_scaling_figure``   ``interp.guess_scaling.curves.guess_scaling_curve`` (``interp.guess_scaling.plots`` draws it)
* ``trajectory_figure``      ``probes.projection.pca_trajectories`` (that module draws it)

Write any of them with ``common.plotly_html.write_html`` (one plotly.min.js beside the HTML files, offline).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from interp.tracing.trace import TraceError

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def _need(df: pd.DataFrame, cols: set[str], what: str, source: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TraceError(f"{what} needs a pandas DataFrame, got {type(df).__name__}")
    missing = cols - set(df.columns)
    if missing:
        raise TraceError(f"{what}: the table lacks columns {sorted(missing)} (use {source})")
    if df.empty:
        raise TraceError(f"{what}: the table is empty")


def _layout(fig: Any, title: str, **kw: Any) -> Any:
    fig.update_layout(title={"text": title, "x": 0.01}, template="plotly_white", **kw)
    return fig


def jump_histogram_figure(table: pd.DataFrame, n_steps: int | None = None, title: str | None = None):
    """Left: puzzles per critical step (the step from which the answer is right and stays right), with the
    unsolved count apart. Right: distribution of the jump statistic (1 = all improvement in one step)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    _need(table, {"jump"}, "jump_histogram_figure", "interp.analyses.critical_steps(trace)")
    has_crit = "critical_step" in table
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], subplot_titles=[
        "critical step (solved puzzles)" if has_crit else "critical step (trace has no labels)",
        "jump statistic (largest drop / total drop)"])
    if has_crit:
        crit = table["critical_step"].to_numpy()
        solved = crit[crit >= 0]
        T = int(n_steps if n_steps is not None else (crit.max() + 1 if len(solved) else 1))
        counts = np.bincount(solved, minlength=T)[:T] if len(solved) else np.zeros(T, int)
        fig.add_trace(go.Bar(x=np.arange(T), y=counts, name="solved", marker_color=PALETTE[2],
                             hovertemplate="critical step %{x}: %{y} puzzles<extra></extra>"), row=1, col=1)
        n_uns = int((crit < 0).sum())
        fig.add_annotation(text=f"solved {len(solved)} / {len(crit)} · unsolved {n_uns}", xref="x domain",
                           yref="y domain", x=0.98, y=0.98, showarrow=False, xanchor="right", row=1, col=1)
        fig.update_xaxes(title_text="step", row=1, col=1)
        fig.update_yaxes(title_text="puzzles", row=1, col=1)
    j = table["jump"].dropna().to_numpy()
    fig.add_trace(go.Histogram(x=j, xbins={"start": 0, "end": 1.0001, "size": 0.05}, marker_color=PALETTE[0],
                               name="jump", hovertemplate="jump %{x}: %{y} puzzles<extra></extra>"), row=1, col=2)
    fig.update_xaxes(title_text="jump", range=[0, 1.02], row=1, col=2)
    return _layout(fig, title or f"Critical steps and jumps ({len(table)} puzzles)", showlegend=False, height=420)


def residual_figure(df: pd.DataFrame, title: str | None = None, split_by: str | None = "exact"):
    """Distribution of the fixed-point residual (relative change over one extra segment), log10 scale, per state;
    split by ``split_by`` (default: whether the puzzle was solved) when that column exists."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    _need(df, {"puzzle"}, "residual_figure", "interp.fixed_point_residual(model, inputs, labels)")
    cols = [c for c in df.columns if str(c).startswith("residual.")]
    if not cols:
        raise TraceError("residual_figure: the table has no residual.<state> columns (use fixed_point_residual)")
    fig = make_subplots(rows=1, cols=len(cols), subplot_titles=[c.split(".", 1)[1] for c in cols])
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(len(df), bool))]
    if split_by and split_by in df:
        v = df[split_by].astype(bool).to_numpy()
        groups = [("solved", v), ("unsolved", ~v)]
    for i, c in enumerate(cols, start=1):
        r = df[c].to_numpy(dtype=np.float64)
        for gi, (name, sel) in enumerate(groups):
            vals = r[sel & np.isfinite(r) & (r > 0)]
            if not len(vals):
                continue
            fig.add_trace(go.Histogram(x=np.log10(vals), name=name, legendgroup=name, showlegend=i == 1,
                                       marker_color=PALETTE[2] if name == "solved" else PALETTE[3] if name == "unsolved"
                                       else PALETTE[0], opacity=0.7, nbinsx=40,
                                       hovertemplate="log10 residual %{x}: %{y} puzzles<extra>" + name + "</extra>"),
                          row=1, col=i)
        n0 = int((r == 0).sum())
        if n0:
            fig.add_annotation(text=f"{n0} exact zeros", xref="x domain" if i == 1 else f"x{i} domain",
                               yref="y domain" if i == 1 else f"y{i} domain", x=0.98, y=0.98, showarrow=False,
                               xanchor="right")
        fig.update_xaxes(title_text="log10 residual", row=1, col=i)
    fig.update_layout(barmode="overlay")
    return _layout(fig, title or f"Fixed-point residual over one extra segment ({len(df)} puzzles)", height=400)


def hl_cosine_figure(tables: pd.DataFrame | Mapping[str, pd.DataFrame], title: str | None = None):
    """cos(slow, fast) per step (mean over puzzles, band = ±1 std); triangles mark slow updates.
    ``tables``: one ``hl_alignment`` table or ``{run name: table}`` to overlay runs."""
    import plotly.graph_objects as go

    runs = {"": tables} if isinstance(tables, pd.DataFrame) else dict(tables)
    if not runs:
        raise TraceError("hl_cosine_figure: no tables given")
    fig = go.Figure()
    for i, (name, df) in enumerate(runs.items()):
        _need(df, {"step", "cos_mean"}, "hl_cosine_figure", "interp.analyses.hl_alignment(trace)")
        c = PALETTE[i % len(PALETTE)]
        x, m = df["step"].to_numpy(), df["cos_mean"].to_numpy(dtype=np.float64)
        label = name or "cos(slow, fast)"
        if "cos_std" in df:
            s = df["cos_std"].to_numpy(dtype=np.float64)
            fig.add_trace(go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[m + s, (m - s)[::-1]], fill="toself",
                                     fillcolor=_rgba(c, 0.15), line={"width": 0}, hoverinfo="skip",
                                     showlegend=False, legendgroup=label))
        fig.add_trace(go.Scatter(x=x, y=m, mode="lines", line={"color": c}, name=label, legendgroup=label,
                                 hovertemplate="step %{x}: %{y:.3f}<extra>" + label + "</extra>"))
        if "is_slow" in df:
            sl = df["is_slow"].astype(bool).to_numpy()
            fig.add_trace(go.Scatter(x=x[sl], y=m[sl], mode="markers", marker={"symbol": "triangle-up", "size": 8,
                                                                                  "color": c},
                                     name=f"{label} slow update", legendgroup=label, showlegend=i == 0,
                                     hovertemplate="slow update at step %{x}: %{y:.3f}<extra></extra>"))
        if "cka" in df:
            fig.add_trace(go.Scatter(x=x, y=df["cka"], mode="lines", line={"color": c, "dash": "dot"},
                                     name=f"{label} linear CKA", legendgroup=label))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="cosine (mean over positions)")
    return _layout(fig, title or "Slow/fast (H/L) alignment per step", height=420)


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def gate_stats_figure(stats: Any, title: str | None = None):
    """HRM-LM gates: mean (± std) per step with slow firings marked; gate means right after a slow firing vs
    other steps; fusion weight per source and pass. ``stats``: ``interp.analyses.gate_statistics(trace)``."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    per_step = getattr(stats, "per_step", None)
    if per_step is None:
        raise TraceError("gate_stats_figure needs a GateStats (interp.analyses.gate_statistics(trace))")
    gates = [c[: -len("_mean")] for c in per_step.columns if c.startswith("gate_") and c.endswith("_mean")]
    if not gates:
        raise TraceError("gate_stats_figure: the GateStats has no gate_*_mean columns")
    has_fusion = isinstance(stats.fusion, pd.DataFrame) and not stats.fusion.empty
    ncols = 3 if has_fusion else 2
    fig = make_subplots(rows=1, cols=ncols, column_widths=[0.5, 0.25, 0.25][:ncols] if has_fusion else [0.65, 0.35],
                        subplot_titles=["gate mean per step", "after a slow firing vs other steps",
                                        "fusion weights per pass"][:ncols])
    x = per_step["step"].to_numpy()
    for i, g in enumerate(gates):
        c = PALETTE[i % len(PALETTE)]
        m = per_step[f"{g}_mean"].to_numpy(dtype=np.float64)
        err = per_step[f"{g}_std"].to_numpy(dtype=np.float64) if f"{g}_std" in per_step else None
        fig.add_trace(go.Scatter(x=x, y=m, mode="lines+markers", name=g, line={"color": c}, connectgaps=True,
                                 error_y={"type": "data", "array": err, "thickness": 1} if err is not None else None,
                                 legendgroup=g), row=1, col=1)
    if "is_slow" in per_step:
        for k in x[per_step["is_slow"].astype(bool).to_numpy()]:
            fig.add_vline(x=float(k), line={"color": "rgba(120,120,120,0.4)", "width": 1}, row=1, col=1)
    ph = stats.by_phase
    if isinstance(ph, pd.DataFrame) and not ph.empty:
        key = "after_slow_firing" if "after_slow_firing" in ph else ph.columns[0]
        labels = ["after slow firing" if bool(v) else "other steps" for v in ph[key]]
        for i, g in enumerate(gates):
            if f"{g}_mean" in ph:
                fig.add_trace(go.Bar(x=labels, y=ph[f"{g}_mean"], name=g, marker_color=PALETTE[i % len(PALETTE)],
                                     legendgroup=g, showlegend=False), row=1, col=2)
    if has_fusion:
        fu = stats.fusion
        for i, src in enumerate([c for c in fu.columns if c != "pass"]):
            fig.add_trace(go.Bar(x=fu["pass"], y=fu[src], name=f"fusion: {src}", marker_color=PALETTE[(i + 4) % 8]),
                          row=1, col=3)
        fig.update_xaxes(title_text="pass", dtick=1, row=1, col=3)
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_yaxes(title_text="gate value (sigmoid)", row=1, col=1)
    fig.update_layout(barmode="group")
    return _layout(fig, title or "Gate statistics", height=430)


def probe_accuracy_figure(df: pd.DataFrame, title: str | None = None):
    """Linear-probe accuracy per step and target (solid) against the shuffled-label control (dotted) and chance."""
    import plotly.graph_objects as go

    _need(df, {"step", "target", "accuracy"}, "probe_accuracy_figure", "probes.probe_curves / probes_from_trace")
    fig = go.Figure()
    for i, (target, g) in enumerate(df.groupby("target", sort=False)):
        g = g.sort_values("step")
        c = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=g["step"], y=g["accuracy"], mode="lines+markers", name=str(target),
                                 line={"color": c}, legendgroup=str(target)))
        if "control_accuracy" in g:
            fig.add_trace(go.Scatter(x=g["step"], y=g["control_accuracy"], mode="lines", name=f"{target} control",
                                     line={"color": c, "dash": "dot"}, legendgroup=str(target)))
        if "chance" in g:
            fig.add_trace(go.Scatter(x=g["step"], y=g["chance"], mode="lines", name=f"{target} chance",
                                     line={"color": c, "dash": "dash", "width": 1}, legendgroup=str(target),
                                     opacity=0.5))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="held-out accuracy (split by puzzle)", range=[0, 1.02])
    return _layout(fig, title or "Linear probes per step", height=420)


def guess_scaling_figure(df: pd.DataFrame, title: str | None = None):
    """Accuracy vs pass budget per strategy and voting rule (drawn by ``interp.guess_scaling.plots``)."""
    from interp.guess_scaling.plots import guess_scaling_figure as draw

    return draw(df, title)


def trajectory_figure(df: pd.DataFrame, **kwargs: Any):
    """PCA/UMAP trajectories (drawn by ``probes.projection.trajectory_figure``)."""
    from probes.projection import trajectory_figure as draw

    return draw(df, **kwargs)


__all__ = ["jump_histogram_figure", "residual_figure", "hl_cosine_figure", "gate_stats_figure",
           "probe_accuracy_figure", "guess_scaling_figure", "trajectory_figure"]
