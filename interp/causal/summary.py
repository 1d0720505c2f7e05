"""Summaries of a score table: top units, where the attribution lies relative to a cell's Sudoku peers,
and how well each estimate ranks units against exact patching."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

UNIT_KEYS = ["puzzle", "segment", "step", "state", "position"]


def top_units(scores: pd.DataFrame, k: int = 10, method: str | None = None) -> pd.DataFrame:
    """The ``k`` units with the largest |score| per method (or of one ``method``)."""
    df = scores if method is None else scores[scores["method"] == method]
    df = df.assign(abs_score=df["score"].abs())
    return (df.sort_values("abs_score", ascending=False).groupby("method", sort=False).head(k)
            .drop(columns="abs_score").reset_index(drop=True))


def peer_share_by_step(scores: pd.DataFrame, focus: dict[int, int], n_cells: int) -> pd.DataFrame:
    """Per (method, step): the share of |score| on the Sudoku peers of each puzzle's ``focus`` cell, among all
    cells but the focus cell (uniform attribution gives 20/80 = 0.25 on a 9x9 grid), averaged over puzzles."""
    from interp.analyses.attention import sudoku_relations

    peers = sudoku_relations(n_cells)["peers"]
    rows = []
    df = scores[(scores["position"] >= 0) & (scores["position"] < n_cells) & scores["puzzle"].isin(list(focus))]
    for (method, step, puzzle), g in df.groupby(["method", "step", "puzzle"]):
        f = focus[int(puzzle)]
        mass = g.groupby("position")["score"].apply(lambda s: s.abs().sum())
        others = mass.drop(index=f, errors="ignore")
        total = float(others.sum())
        on_peers = float(others[others.index.isin(np.flatnonzero(peers[f]))].sum())
        rows.append({"method": method, "step": int(step), "puzzle": int(puzzle),
                     "peer_share": on_peers / total if total > 0 else math.nan})
    out = pd.DataFrame(rows, columns=["method", "step", "puzzle", "peer_share"])
    return out.groupby(["method", "step"], as_index=False)["peer_share"].mean()


def compare_methods(scores: pd.DataFrame, reference: str = "patch", top: float = 0.10) -> pd.DataFrame:
    """Per (puzzle, method): Spearman's rho with ``reference`` over all units and over the units that matter
    (the top ``top`` fraction by |reference score|), and the overlap of the top-k sets (k = that many units)."""
    piv = scores.pivot_table(index=UNIT_KEYS, columns="method", values="score", aggfunc="first")
    if reference not in piv.columns:
        return pd.DataFrame(columns=["puzzle", "method", "n_units", "n_top", "spearman_all", "spearman_top",
                                     "topk_overlap"])
    rows = []
    for puzzle, g in piv.groupby(level="puzzle"):
        ref = g[reference].to_numpy(dtype=float)
        ok = np.isfinite(ref)
        k = max(2, int(math.ceil(top * ok.sum())))
        order = np.argsort(-np.abs(np.where(ok, ref, 0)))
        top_idx = order[:k]
        for method in [c for c in piv.columns if c != reference]:
            est = g[method].to_numpy(dtype=float)
            est_top = set(np.argsort(-np.abs(np.where(np.isfinite(est), est, 0)))[:k])
            rows.append({
                "puzzle": int(puzzle), "method": method, "n_units": int(ok.sum()), "n_top": k,
                "spearman_all": _rho(est[ok], ref[ok]),
                "spearman_top": _rho(est[top_idx], ref[top_idx]),
                "topk_overlap": len(est_top & set(top_idx.tolist())) / k,
            })
    return pd.DataFrame(rows)


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    return float(spearmanr(a, b)[0])


__all__ = ["top_units", "peer_share_by_step", "compare_methods"]
