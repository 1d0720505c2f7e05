"""Figures of ``interp scale``: accuracy vs FLOPs with the Pareto front, and accuracy vs depth.

Static figures are pyplot-free matplotlib (PNG), interactive ones Plotly; both
read the ``scaling.csv`` table (``scale_table.COLUMNS``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from interp.guess_scaling.scale_table import pareto

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def _label_free(df: pd.DataFrame) -> pd.DataFrame:
    return df[(~df["uses_label"]) & df["within_budget"]]


def pareto_png(df: pd.DataFrame, title: str) -> Any:
    """Matplotlib ``Figure``: every label-free in-budget row (FLOPs, accuracy) by strategy, the Pareto front as a line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), constrained_layout=True)
    ax = fig.subplots()
    pts = _label_free(df)
    for i, (s, g) in enumerate(pts.groupby("strategy", sort=False)):
        ax.scatter(g["flops"], g["accuracy"], s=8, alpha=0.5, color=COLOURS[i % len(COLOURS)], label=s)
    front = pareto(df)
    ax.plot(front["flops"], front["accuracy"], "k-o", ms=3, lw=1.2, label="Pareto front")
    ax.fill_between(front["flops"], front["lo"], front["hi"], color="k", alpha=0.08, lw=0, step="post")
    ax.set_xscale("log")
    ax.set_xlabel("forward FLOPs per puzzle")
    ax.set_ylabel("exact accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    return fig


def depth_png(df: pd.DataFrame, title: str) -> Any:
    """Matplotlib ``Figure``: accuracy vs depth (segments), halting off, one panel per strategy, k = 1 and largest k."""
    from matplotlib.figure import Figure

    d = df[(df["halting"] == "off") & df["rule"].isin(["majority", "oracle"])]
    strategies = list(dict.fromkeys(d["strategy"]))
    fig = Figure(figsize=(max(5.0, 3.6 * len(strategies)), 3.4), constrained_layout=True)
    axes = fig.subplots(1, max(1, len(strategies)), squeeze=False, sharey=True)[0]
    for ax, s in zip(axes, strategies):
        part = d[d["strategy"] == s]
        kmax = int(part["k"].max())
        for i, (k, rule) in enumerate([(1, "majority"), (kmax, "majority"), (kmax, "oracle")]):
            g = part[(part["k"] == k) & (part["rule"] == rule)].sort_values("depth")
            if g.empty or (k == 1 and rule == "majority" and i > 0):
                continue
            ax.plot(g["depth"], g["accuracy"], "o" + ("--" if rule == "oracle" else "-"), ms=3,
                    color=COLOURS[i], label=f"k={k} {rule}")
            ax.fill_between(g["depth"], g["lo"], g["hi"], color=COLOURS[i], alpha=0.12, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("depth (segments)")
        ax.set_title(s, fontsize=10)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("exact accuracy")
    fig.suptitle(title, fontsize=10)
    return fig


def scale_figure(df: pd.DataFrame, title: str) -> Any:
    """Plotly ``go.Figure``: accuracy vs FLOPs (left, Pareto front in black) and vs depth (right, k=1, halting off)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy vs FLOPs (label-free rules, within budget)",
                                                        "accuracy vs depth (k = 1, halting off, majority)"))
    pts = _label_free(df)
    for i, (s, g) in enumerate(pts.groupby("strategy", sort=False)):
        text = [f"{r.rule} halting={r.halting} depth={r.depth} k={r.k} passes={r.passes:.2f} "
                f"{r.solved}/{r.n} [{r.lo:.3f}, {r.hi:.3f}]" for r in g.itertuples()]
        fig.add_trace(go.Scatter(x=g["flops"], y=g["accuracy"], mode="markers", name=s, text=text,
                                 marker={"color": COLOURS[i % len(COLOURS)], "size": 5, "opacity": 0.6},
                                 hovertemplate="%{text}<extra>" + s + "</extra>"), row=1, col=1)
    front = pareto(df)
    fig.add_trace(go.Scatter(x=front["flops"], y=front["accuracy"], mode="lines+markers", name="Pareto front",
                             line={"color": "black"}), row=1, col=1)
    d = df[(df["halting"] == "off") & (df["rule"] == "majority") & (df["k"] == 1)]
    for i, (s, g) in enumerate(d.groupby("strategy", sort=False)):
        g = g.sort_values("depth")
        fig.add_trace(go.Scatter(x=g["depth"], y=g["accuracy"], mode="lines+markers", name=f"{s} k=1", showlegend=False,
                                 line={"color": COLOURS[i % len(COLOURS)]},
                                 error_y={"type": "data", "symmetric": False, "array": g["hi"] - g["accuracy"],
                                          "arrayminus": g["accuracy"] - g["lo"]}), row=1, col=2)
    fig.update_xaxes(type="log", title_text="forward FLOPs per puzzle", row=1, col=1)
    fig.update_xaxes(type="log", title_text="depth (segments)", row=1, col=2)
    fig.update_yaxes(title_text="exact accuracy", range=[-0.02, 1.02])
    fig.update_layout(title=title, template="plotly_white")
    return fig


__all__ = ["pareto_png", "depth_png", "scale_figure"]
