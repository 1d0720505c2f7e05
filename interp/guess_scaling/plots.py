"""The guess-scaling figure, static (matplotlib) and interactive (Plotly), from a ``budget_table``.

One panel per strategy, one line per vote rule (same colour in every panel),
accuracy against the pass budget k with its interval; oracle rules dashed.
``interp.report.figures`` and ``interp.views.dataset_figures`` re-export these.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from common.io import atomic_write
from interp.guess_scaling.errors import GuessScalingError

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
ORACLES = ("oracle_any", "augmented_hrm")


def _check_table(df: pd.DataFrame) -> None:
    need = {"strategy", "rule", "k", "accuracy", "ci_low", "ci_high"}
    missing = need - set(df.columns)
    if missing:
        raise GuessScalingError(f"table lacks columns {sorted(missing)} (use guess_scaling_curve's output)")
    if df.empty:
        raise GuessScalingError("table is empty: nothing to plot")


def _is_oracle(g: pd.DataFrame, rule: str) -> bool:
    return bool(g["uses_label"].iloc[0]) if "uses_label" in g else rule in ORACLES


def guess_scaling_plot(df: pd.DataFrame, title: str | None = None) -> Any:
    """A pyplot-free matplotlib ``Figure``: accuracy vs pass budget k per strategy and rule, interval bands."""
    from matplotlib.figure import Figure

    _check_table(df)
    strategies = list(dict.fromkeys(df["strategy"]))
    rules = list(dict.fromkeys(df["rule"]))
    fig = Figure(figsize=(max(6.5, 3.8 * len(strategies) + 0.5), 3.6), constrained_layout=True)
    axes = fig.subplots(1, len(strategies), squeeze=False, sharey=True)[0]
    for ax, strategy in zip(axes, strategies):
        part = df[df["strategy"] == strategy]
        for i, rule in enumerate(rules):
            g = part[part["rule"] == rule].sort_values("k")
            if g.empty:
                continue
            oracle = _is_oracle(g, rule)
            colour = COLOURS[i % len(COLOURS)]
            ax.plot(g["k"], g["accuracy"], "o" + ("--" if oracle else "-"), ms=3, color=colour,
                    label=f"{rule} (oracle)" if oracle else rule)
            ax.fill_between(g["k"], g["ci_low"], g["ci_high"], color=colour, alpha=0.12, lw=0)
        ax.set_xscale("log", base=2)
        ks = sorted(part["k"].unique())
        ax.set_xticks(ks)
        ax.set_xticklabels([str(int(k)) for k in ks])
        ax.minorticks_off()
        ax.set_title(strategy, fontsize=10)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("k (pass budget)")
        ax.grid(alpha=0.25)
    axes[0].set_ylabel("exact accuracy")
    axes[-1].legend(fontsize=6, loc="best")
    fig.suptitle(title or "Guess scaling", fontsize=11)
    return fig


def plot_guess_scaling(df: pd.DataFrame, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write :func:`guess_scaling_plot` to ``path`` (PNG/SVG/PDF by suffix), atomically."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise GuessScalingError(f"figure path must end in .png, .svg or .pdf, got {path.name!r}")
    fig = guess_scaling_plot(df, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=150))


def guess_scaling_figure(df: pd.DataFrame, title: str | None = None) -> Any:
    """Interactive Plotly figure (``go.Figure``): a panel per strategy, error bars, oracle rules dashed."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    _check_table(df)
    strategies = list(dict.fromkeys(df["strategy"]))
    rules = list(dict.fromkeys(df["rule"]))
    colours = {r: COLOURS[i % len(COLOURS)] for i, r in enumerate(rules)}
    fig = make_subplots(rows=1, cols=len(strategies), subplot_titles=strategies, shared_yaxes=True)
    for col, strategy in enumerate(strategies, start=1):
        part = df[df["strategy"] == strategy]
        for rule in rules:
            g = part[part["rule"] == rule].sort_values("k")
            if g.empty:
                continue
            oracle = _is_oracle(g, rule)
            fig.add_trace(go.Scatter(
                x=g["k"], y=g["accuracy"], mode="lines+markers", name=f"{rule} (oracle)" if oracle else rule,
                legendgroup=rule, showlegend=col == 1, line={"color": colours[rule], "dash": "dash" if oracle else "solid"},
                error_y={"type": "data", "symmetric": False, "array": g["ci_high"] - g["accuracy"],
                         "arrayminus": g["accuracy"] - g["ci_low"]},
                hovertemplate="k=%{x}<br>accuracy=%{y:.3f}<extra>" + rule + "</extra>",
            ), row=1, col=col)
        fig.update_xaxes(type="log", title_text="k (pass budget)", row=1, col=col)
    fig.update_yaxes(title_text="exact accuracy", range=[-0.02, 1.02], row=1, col=1)
    fig.update_layout(title=title or "Guess scaling", template="plotly_white")
    return fig


__all__ = ["guess_scaling_plot", "plot_guess_scaling", "guess_scaling_figure"]
