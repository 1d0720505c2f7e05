"""Outcome-split statistics and failure AUCs of a stability table (pure: pandas/numpy/scikit-learn, no model).

* ``outcome_split``: per predictor and outcome (solved / failed): n, mean with a
  percentile-bootstrap 95% interval over puzzles (the project's ``bootstrap_ci``),
  median.
* ``failure_auc``: ROC AUC for predicting *failure* from each predictor,
  oriented so that larger means "more likely to fail": the exponent and the
  residual as they are, the halting logit negated (a confident halt predicts
  success). 0.5 = no information, 1 = perfect.
* ``stability_markdown``: both as Markdown tables with the settings line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from common.markdown import markdown_table
from common.stats import bootstrap_ci

# predictor column -> sign that makes "larger = more likely to fail"
PREDICTORS: dict[str, float] = {"ftle": 1.0, "residual": 1.0, "q_halt": -1.0}
LABELS = {"ftle": "largest FTLE", "residual": "fixed-point residual ||f(z)-z||/||z||", "q_halt": "halting logit q_halt"}


def _outcome(df: pd.DataFrame, outcome: str) -> np.ndarray:
    if outcome not in df:
        raise ValueError(f"the table has no {outcome!r} column (run the stability analysis with labels)")
    return df[outcome].astype(bool).to_numpy()


def outcome_split(df: pd.DataFrame, predictors: Sequence[str] = tuple(PREDICTORS), outcome: str = "solved",
                  n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Rows (predictor, outcome in {solved, failed}, n, mean, ci_low, ci_high, median)."""
    ok = _outcome(df, outcome)
    rows = []
    for p in predictors:
        v = df[p].to_numpy(dtype=np.float64)
        for name, sel in (("solved", ok), ("failed", ~ok)):
            vals = v[sel & np.isfinite(v)]
            lo, hi = bootstrap_ci(vals, n_boot=n_boot, seed=seed)
            rows.append({"predictor": p, "outcome": name, "n": int(vals.size),
                         "mean": float(vals.mean()) if vals.size else float("nan"), "ci_low": lo, "ci_high": hi,
                         "median": float(np.median(vals)) if vals.size else float("nan")})
    return pd.DataFrame(rows)


def roc_auc(failed: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the positive class ``failed``; NaN when one class is empty."""
    failed = np.asarray(failed, dtype=bool)
    if failed.all() or not failed.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(failed, score))


def failure_auc(df: pd.DataFrame, predictors: Mapping[str, float] = PREDICTORS, outcome: str = "solved") -> pd.DataFrame:
    """Rows (predictor, sign, auc, n_failed, n_solved): AUC of ``sign * predictor`` for predicting failure."""
    failed = ~_outcome(df, outcome)
    rows = []
    for p, sign in predictors.items():
        v = df[p].to_numpy(dtype=np.float64)
        fin = np.isfinite(v)
        rows.append({"predictor": p, "sign": sign, "auc": roc_auc(failed[fin], sign * v[fin]),
                     "n_failed": int((failed & fin).sum()), "n_solved": int((~failed & fin).sum())})
    return pd.DataFrame(rows)


def step_curves(per_step: pd.DataFrame, per_puzzle: pd.DataFrame, outcome: str = "solved") -> pd.DataFrame:
    """Mean per step and outcome of ``log_stretch``, ``rel_drift`` and ``q_halt``: rows (step, outcome, ...)."""
    ok = per_puzzle.set_index("puzzle")[outcome].astype(bool)
    d = per_step.assign(outcome=np.where(per_step["puzzle"].map(ok).to_numpy(), "solved", "failed"))
    cols = [c for c in ("log_stretch", "rel_drift", "q_halt") if c in d]
    return d.groupby(["step", "outcome"])[cols].mean().reset_index()


def _fmt(v: float, digits: int = 3) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.{digits}g}"


def stability_markdown(per_puzzle: pd.DataFrame, settings: Mapping[str, Any] | None = None, title: str = "Stability",
                       outcome: str = "solved") -> str:
    """A Markdown section: settings, the AUC table, the outcome-split table."""
    auc = failure_auc(per_puzzle, outcome=outcome)
    split = outcome_split(per_puzzle, outcome=outcome)
    lines = [f"## {title}", ""]
    if settings:
        lines += ["Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), ""]
    n_fail = int((~per_puzzle[outcome].astype(bool)).sum())
    lines += [f"{len(per_puzzle)} puzzles, {n_fail} failed ({n_fail / max(1, len(per_puzzle)):.1%}).", "",
              "ROC AUC for predicting failure (larger predictor = predicts failure; 0.5 = chance):", ""]
    lines.append(markdown_table(pd.DataFrame({
        "predictor": [LABELS.get(p, p) + (" (negated)" if s < 0 else "") for p, s in zip(auc["predictor"], auc["sign"])],
        "AUC": [_fmt(v) for v in auc["auc"]],
        "failed": auc["n_failed"], "solved": auc["n_solved"]})))
    lines += ["", "Per outcome: mean [95% bootstrap interval over puzzles], median:", ""]
    cells = []
    for p in split["predictor"].unique():
        row = {"predictor": LABELS.get(p, p)}
        for _, r in split[split["predictor"] == p].iterrows():
            row[f"{r['outcome']} (n={r['n']})"] = (f"{_fmt(r['mean'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}], "
                                                   f"median {_fmt(r['median'])}")
        cells.append(row)
    lines.append(markdown_table(pd.DataFrame(cells).fillna("")))
    return "\n".join(lines) + "\n"


__all__ = ["PREDICTORS", "outcome_split", "roc_auc", "failure_auc", "step_curves", "stability_markdown"]
