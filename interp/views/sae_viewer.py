"""Plotly panel of SAE feature trajectories: activation per step (lines) and over the grid (heatmaps, step slider).

    from common.plotly_html import write_html
    from interp.views.sae_viewer import feature_trajectory_figure
    write_html(feature_trajectory_figure(acts, [12, 40], names={12: "decided"}, predictions=preds), "sae.html")

``acts`` is [N puzzles, T steps, L cells, F features] (``probes.sae.encode_array``
of ``probes.sae_features.sae_inputs_from_trace`` states). Top row: per feature,
the mean activation over cells against the step, for the chosen puzzle (solid)
and the mean over all puzzles (dotted). Bottom row: one heatmap per feature of
the chosen puzzle's cells at the slider's step, the decoded digit written in
each cell when ``predictions`` [N, T, L] are given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _text(pred: np.ndarray | None, side: int) -> np.ndarray | None:
    if pred is None:
        return None
    digits = np.where(pred >= 2, pred - 1, 0).astype(int)
    return np.array([str(d) if d else "" for d in digits]).reshape(side, side)


def feature_trajectory_figure(acts: np.ndarray, features: Sequence[int], names: Mapping[int, str] | None = None,
                              puzzle: int = 0, predictions: np.ndarray | None = None,
                              steps: Sequence[int] | None = None, title: str | None = None):
    """See module docstring; at most 6 features."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    acts = np.asarray(acts)
    if acts.ndim != 4:
        raise ValueError(f"acts must be [N, T, L, F], got shape {acts.shape}")
    N, T, L, F = acts.shape
    feats = [int(f) for f in features][:6]
    if not feats or min(feats) < 0 or max(feats) >= F:
        raise ValueError(f"features must be 1..6 indices in [0, {F})")
    if not 0 <= puzzle < N:
        raise ValueError(f"puzzle must be in [0, {N})")
    side = math.isqrt(L)
    if side * side != L:
        raise ValueError(f"{L} cells is not a square grid")
    names = dict(names or {})
    labels = [f"f{f}" + (f" {names[f]}" if f in names else "") for f in feats]
    x_steps = np.arange(T) if steps is None else np.asarray(steps)
    fig = make_subplots(rows=2, cols=len(feats), specs=[[{"colspan": len(feats)}] + [None] * (len(feats) - 1),
                                                        [{} for _ in feats]],
                        subplot_titles=["mean activation over cells per step", *labels],
                        vertical_spacing=0.12, row_heights=[0.4, 0.6])
    for i, (f, lab) in enumerate(zip(feats, labels)):
        c = COLOURS[i % len(COLOURS)]
        fig.add_trace(go.Scatter(x=x_steps, y=acts[puzzle, :, :, f].mean(-1), mode="lines+markers", name=lab,
                                 line={"color": c}), row=1, col=1)
        fig.add_trace(go.Scatter(x=x_steps, y=acts[:, :, :, f].mean((0, 2)), mode="lines", name=f"{lab} (all puzzles)",
                                 line={"color": c, "dash": "dot"}), row=1, col=1)
    n_lines = 2 * len(feats)
    zmax = [float(acts[puzzle, :, :, f].max()) or 1.0 for f in feats]

    def heatmaps(t: int) -> list:
        pred = None if predictions is None else np.asarray(predictions)[puzzle, t]
        text = _text(pred, side)
        return [go.Heatmap(z=acts[puzzle, t, :, f].reshape(side, side)[::-1], zmin=0, zmax=zmax[i], colorscale="Viridis",
                           showscale=False, text=None if text is None else text[::-1], texttemplate="%{text}",
                           hovertemplate="row %{y} col %{x}: %{z:.3f}<extra></extra>")
                for i, f in enumerate(feats)]

    for i, h in enumerate(heatmaps(0)):
        fig.add_trace(h, row=2, col=i + 1)
    frames = [go.Frame(data=heatmaps(t), traces=list(range(n_lines, n_lines + len(feats))), name=str(t)) for t in range(T)]
    fig.frames = frames
    fig.update_layout(
        title=title or f"SAE features across steps (puzzle {puzzle})", height=620, template="plotly_white",
        sliders=[{"active": 0, "currentvalue": {"prefix": "step "}, "pad": {"t": 30},
                  "steps": [{"label": str(int(x_steps[t])), "method": "animate",
                             "args": [[str(t)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True}}]}
                            for t in range(T)]}])
    for i in range(len(feats)):
        fig.update_xaxes(showticklabels=False, row=2, col=i + 1)
        fig.update_yaxes(showticklabels=False, scaleanchor=f"x{i + 2}", row=2, col=i + 1)
    fig.update_xaxes(title_text="step", row=1, col=1)
    return fig


__all__ = ["feature_trajectory_figure"]
