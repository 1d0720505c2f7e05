"""The stability figure (matplotlib): exponent by outcome, per-step stretch and drift by outcome, ROC curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.mpl_figures import COLOURS, new_figure
from interp.stability.summary import PREDICTORS, failure_auc, step_curves

SOLVED, FAILED = COLOURS[2], COLOURS[3]
SHORT = {"ftle": "FTLE", "residual": "residual", "q_halt": "-q_halt"}


def _roc_points(failed: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(failed, score)
    return fpr, tpr


def stability_figure(per_puzzle: pd.DataFrame, per_step: pd.DataFrame, title: str | None = None,
                     outcome: str = "solved"):
    """Four panels: FTLE histogram, log stretch per step, relative drift per step, ROC for failure."""
    fig = new_figure(15.0, 3.4)
    ax_h, ax_s, ax_d, ax_r = fig.subplots(1, 4)
    ok = per_puzzle[outcome].astype(bool).to_numpy()
    v = per_puzzle["ftle"].to_numpy(dtype=np.float64)
    bins = np.histogram_bin_edges(v[np.isfinite(v)], bins=30) if np.isfinite(v).any() else 10
    for name, sel, c in (("solved", ok, SOLVED), ("failed", ~ok, FAILED)):
        ax_h.hist(v[sel], bins=bins, alpha=0.6, color=c, label=f"{name} ({int(sel.sum())})")
    ax_h.axvline(0, color="k", lw=0.8)
    ax_h.set_xlabel("largest FTLE (log stretch per step)")
    ax_h.set_ylabel("puzzles")
    ax_h.legend(fontsize=7)
    curves = step_curves(per_step, per_puzzle, outcome)
    for name, c in (("solved", SOLVED), ("failed", FAILED)):
        g = curves[curves["outcome"] == name]
        ax_s.plot(g["step"], g["log_stretch"], marker="o", ms=3, color=c, label=name)
        ax_d.semilogy(g["step"], g["rel_drift"], marker="o", ms=3, color=c, label=name)
    ax_s.axhline(0, color="k", lw=0.8)
    ax_s.set_xlabel("step")
    ax_s.set_ylabel("mean log stretch (leading direction)")
    ax_d.set_xlabel("step")
    ax_d.set_ylabel("mean ||z_{t+1} - z_t|| / ||z_t||")
    failed = ~ok
    aucs = failure_auc(per_puzzle, outcome=outcome).set_index("predictor")["auc"]
    if failed.any() and ok.any():
        for i, (p, sign) in enumerate(PREDICTORS.items()):
            s = sign * per_puzzle[p].to_numpy(dtype=np.float64)
            fin = np.isfinite(s)
            fpr, tpr = _roc_points(failed[fin], s[fin])
            ax_r.plot(fpr, tpr, color=COLOURS[i], label=f"{SHORT.get(p, p)}: AUC {aucs[p]:.3f}")
    ax_r.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax_r.set_xlabel("false positive rate")
    ax_r.set_ylabel("true positive rate (failure)")
    ax_r.legend(fontsize=7, loc="lower right")
    for ax in (ax_h, ax_s, ax_d, ax_r):
        ax.grid(alpha=0.25)
    ax_s.legend(fontsize=7)
    fig.suptitle(title or "Stability of the step map", fontsize=11)
    return fig


__all__ = ["stability_figure"]
