"""SAE features across steps: samples from a trace, per-cell targets, selectivity, naming, trajectories.

Activations are [N puzzles, T steps, L cells, F features]; targets are boolean
[N, T, L] arrays with a mask of the cells where they are defined:

* ``given``:     the cell is a clue (all cells)
* ``decided``:   the decoded digit of this blank cell already equals its final value and never changes again
* ``correct``:   the decoded digit of this blank cell is the solution's
* ``clash``:     the decoded digit repeats in the cell's row, column or box (a constraint clash; all cells)
* ``digit_d``:   the decoded digit is d (blank cells)

``selectivity`` scores every feature against one target on the masked
samples: ROC AUC of the activation (rank formula, ties averaged), Pearson
correlation with the 0/1 target, mean activation and firing rate on / off the
target. ``name_features`` keeps, per target, the feature with the highest AUC.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

BLANK, DIGIT0 = 1, 2  # Sudoku tokens: 1 = blank, 2..S+1 = digits 1..S


def sae_inputs_from_trace(trace: Any, state: str = "answer") -> tuple[np.ndarray, np.ndarray]:
    """States of ``state`` after each step that updates it, prefix dropped: ([N, T', L, D], step indices [T'])."""
    name = trace.resolve_state(state)
    upd = np.array([name in str(u).split("+") for u in trace.steps["updated"]])
    steps = np.flatnonzero(upd) if upd.any() else np.arange(trace.n_steps)
    return trace.states(name, drop_prefix=True)[:, steps], steps


def cell_clashes(tokens: np.ndarray) -> np.ndarray:
    """[..., S*S] tokens -> bool: the cell holds a digit that occurs again in its row, column or box."""
    t = np.asarray(tokens, dtype=np.int64)
    S = math.isqrt(t.shape[-1])
    n = math.isqrt(S)
    if S * S != t.shape[-1] or n * n != S:
        raise ValueError(f"{t.shape[-1]} cells is not a Sudoku grid")
    lead = t.shape[:-1]
    onehot = (t[..., None] - DIGIT0) == np.arange(S)  # [..., L, S]
    g = onehot.reshape(*lead, S, S, S)  # row, col, digit
    rows = g.sum(-2, keepdims=True)  # [..., S, 1, S]
    cols = g.sum(-3, keepdims=True)  # [..., 1, S, S]
    boxes = g.reshape(*lead, n, n, n, n, S).sum(axis=(-4, -2), keepdims=True)  # [..., n, 1, n, 1, S]
    boxes = np.broadcast_to(boxes, (*lead, n, n, n, n, S)).reshape(*lead, S, S, S)
    count = (rows + cols + boxes - 2) * g  # occurrences of the cell's digit in its units, itself counted once
    return (count.sum(-1) > 1).reshape(*lead, S * S)


def decided_cells(predictions: np.ndarray) -> np.ndarray:
    """[N, T, L] -> bool: the prediction equals the final one at this step and every later step."""
    p = np.asarray(predictions)
    same = p == p[:, -1:]
    return np.flip(np.logical_and.accumulate(np.flip(same, 1), axis=1), 1)


def cell_targets(inputs: np.ndarray, predictions: np.ndarray, labels: np.ndarray | None = None
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Targets ``name -> (target [N, T, L] bool, mask [N, T, L] bool)`` from inputs [N, L] and predictions [N, T, L]."""
    x = np.asarray(inputs, dtype=np.int64)[:, None, :]
    p = np.asarray(predictions, dtype=np.int64)
    shape = p.shape
    blank = np.broadcast_to(x == BLANK, shape)
    every = np.ones(shape, dtype=bool)
    out = {"given": (np.broadcast_to(x != BLANK, shape), every),
           "decided": (decided_cells(p), blank),
           "clash": (cell_clashes(p), every)}
    if labels is not None:
        out["correct"] = (p == np.asarray(labels, dtype=np.int64)[:, None, :], blank)
    S = math.isqrt(shape[-1])
    for d in range(1, S + 1):
        out[f"digit_{d}"] = (p == d + DIGIT0 - 1, blank)
    return out


def _ranks(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a, axis=0)


def selectivity(acts: np.ndarray, target: np.ndarray) -> pd.DataFrame:
    """Per feature of ``acts`` [M, F] against bool ``target`` [M]: auc, corr, mean_on/off, rate_on/off."""
    a = np.asarray(acts, dtype=np.float64)
    t = np.asarray(target, dtype=bool)
    n1, n0 = int(t.sum()), int((~t).sum())
    if n1 == 0 or n0 == 0:
        auc = np.full(a.shape[1], np.nan)
    else:
        auc = (_ranks(a)[t].sum(0) - n1 * (n1 + 1) / 2) / (n1 * n0)
    tc = t - t.mean()
    ac = a - a.mean(0)
    den = np.sqrt((ac ** 2).sum(0) * (tc ** 2).sum())
    corr = np.where(den > 0, (ac * tc[:, None]).sum(0) / np.where(den > 0, den, 1), np.nan)
    return pd.DataFrame({
        "feature": np.arange(a.shape[1]), "auc": auc, "corr": corr,
        "mean_on": a[t].mean(0) if n1 else np.nan, "mean_off": a[~t].mean(0) if n0 else np.nan,
        "rate_on": (a[t] > 0).mean(0) if n1 else np.nan, "rate_off": (a[~t] > 0).mean(0) if n0 else np.nan,
    })


def name_features(acts: np.ndarray, targets: dict[str, tuple[np.ndarray, np.ndarray]], max_samples: int = 50_000,
                  seed: int = 0, exclude_dead: bool = True) -> pd.DataFrame:
    """Per target, the feature of ``acts`` [N, T, L, F] with the highest AUC (ties: larger corr), with its statistics.

    At most ``max_samples`` masked (puzzle, step, cell) samples are drawn per target. Rows:
    target, feature, auc, corr, mean_on, mean_off, rate_on, rate_off, n_on, n_off.
    """
    F = acts.shape[-1]
    flat = acts.reshape(-1, F)
    rng = np.random.default_rng(seed)
    rows = []
    for name, (target, mask) in targets.items():
        idx = np.flatnonzero(np.asarray(mask).reshape(-1))
        if idx.size > max_samples:
            idx = np.sort(rng.choice(idx, max_samples, replace=False))
        t = np.asarray(target).reshape(-1)[idx]
        s = selectivity(flat[idx], t)
        if exclude_dead:
            s = s[(s["rate_on"] > 0) | (s["rate_off"] > 0)]
        if s["auc"].isna().all():
            continue
        best = s.sort_values(["auc", "corr"], ascending=False).iloc[0]
        rows.append({"target": name, **best.to_dict(), "n_on": int(t.sum()), "n_off": int((~t).sum())})
    out = pd.DataFrame(rows)
    if len(out):
        out["feature"] = out["feature"].astype(int)
    return out


def label_features(acts: np.ndarray, targets: dict[str, tuple[np.ndarray, np.ndarray]], min_auc: float = 0.75,
                   max_samples: int = 50_000, seed: int = 0) -> pd.DataFrame:
    """Per feature of ``acts`` [N, T, L, F], the target it selects best: rows feature, label, auc, corr.

    The label is the target with the highest AUC when that AUC is at least ``min_auc``, else ``""``
    (the automatic label of a feature page: ``digit_3``, ``clash``, ``decided`` ...). At most
    ``max_samples`` masked samples are drawn per target.
    """
    F = acts.shape[-1]
    flat = acts.reshape(-1, F)
    rng = np.random.default_rng(seed)
    best_auc, best_corr = np.full(F, -np.inf), np.full(F, np.nan)
    best = np.full(F, "", dtype=object)
    for name, (target, mask) in targets.items():
        idx = np.flatnonzero(np.asarray(mask).reshape(-1))
        if idx.size > max_samples:
            idx = np.sort(rng.choice(idx, max_samples, replace=False))
        s = selectivity(flat[idx], np.asarray(target).reshape(-1)[idx])
        auc = s["auc"].to_numpy()
        better = np.nan_to_num(auc, nan=-np.inf) > best_auc
        best_auc[better], best_corr[better], best[better] = auc[better], s["corr"].to_numpy()[better], name
    label = np.where(best_auc >= min_auc, best, "")
    return pd.DataFrame({"feature": np.arange(F), "label": label, "auc": np.where(np.isfinite(best_auc), best_auc, np.nan),
                         "corr": best_corr, "best_target": best})


def feature_trajectories(acts: np.ndarray, features: list[int] | np.ndarray | None = None,
                         steps: np.ndarray | None = None) -> pd.DataFrame:
    """Long table (puzzle, step, feature, mean, max, n_active) of activations over cells, per puzzle and step."""
    N, T, L, F = acts.shape
    feats = np.arange(F) if features is None else np.asarray(features, dtype=np.int64)
    a = acts[..., feats]  # [N, T, L, f]
    steps = np.arange(T) if steps is None else np.asarray(steps)
    grid = np.stack(np.meshgrid(np.arange(N), steps, feats, indexing="ij"), -1).reshape(-1, 3)
    return pd.DataFrame({"puzzle": grid[:, 0], "step": grid[:, 1], "feature": grid[:, 2],
                         "mean": a.mean(2).reshape(-1), "max": a.max(2).reshape(-1),
                         "n_active": (a > 0).sum(2).reshape(-1)})


__all__ = ["sae_inputs_from_trace", "cell_clashes", "decided_cells", "cell_targets", "selectivity", "name_features",
           "label_features", "feature_trajectories"]
