"""Score depth x breadth candidates: one row per (strategy, halting, depth, k, rule) with cost and a Wilson interval.

For depth ``d`` (segments) and halting mode:

* ``off`` - the answer after segment ``d``; ``d`` segments run;
* ``q_head`` - the answer at the first segment ``s <= d`` with ``q_halt > 0`` (else ``d``); ``s`` segments run;
* ``fixed_point`` - the first segment whose residual falls below ``tol`` (else ``d``).

Breadth ``k`` takes candidates 0..k-1 (candidate 0 is the plain model, so the
identity pass is always part of the budget). Cost per puzzle: ``passes`` =
segments run over all k candidates / ``halt_max_steps`` (mean over puzzles),
``flops`` = segments x FLOPs per segment (``flops.py``), ``wall_s`` = the
collection's wall time scaled by the share of segments the row uses. The
``stability`` rule also pays one extra segment per candidate (the re-solve),
and exists only with halting ``off`` at the checked depths.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from common.stats import wilson_interval
from interp.guess_scaling.depth_runs import DepthRecord
from interp.guess_scaling.selection import solved

HALTING = ("off", "q_head", "fixed_point")
COLUMNS = ["weights", "strategy", "rule", "halting", "depth", "k", "passes", "flops", "wall_s", "n", "solved",
           "accuracy", "lo", "hi", "within_budget", "uses_label"]


def at_depth(rec: DepthRecord, depth: int, halting: str, tol: float) -> tuple[np.ndarray, ...]:
    """(grids [N, K, L], q_halt [N, K], residual [N, K], segments run [N, K]) at ``depth`` under ``halting``."""
    D = int(depth)
    q, r = rec.q_halt[:, :, :D], rec.residual[:, :, :D]
    if halting == "off":
        stop = np.full(q.shape[:2], D - 1)
    else:
        hit = q > 0 if halting == "q_head" else r < tol
        stop = np.where(hit.any(-1), hit.argmax(-1), D - 1)
    take = stop[..., None]
    grids = np.take_along_axis(rec.grids[:, :, :D], take[..., None], axis=2)[:, :, 0]
    return (grids.astype(np.int64), np.take_along_axis(q, take, 2)[..., 0], np.take_along_axis(r, take, 2)[..., 0],
            stop + 1)


def ks_for(K: int) -> list[int]:
    """Breadths 1, 2, 4, ... up to ``K``, and ``K``."""
    out = [1]
    while out[-1] * 2 <= K:
        out.append(out[-1] * 2)
    return sorted(set(out + [int(K)]))


def depths_for(D: int, base: int) -> list[int]:
    """Depths 1, 2, 4, ... up to ``D``, plus the training depth ``base`` and ``D``."""
    return sorted({d for d in ks_for(D)} | ({int(base)} if base <= D else set()))


def score(rec: DepthRecord, labels: np.ndarray, strategy: str, base: int, seg_flops: float, rules: Sequence[str],
          halting: Sequence[str] = HALTING, tol: float = 1e-3, check_depths: Sequence[int] = (), budget: float = np.inf,
          seconds: float = float("nan"), weights: str = "", topk_frac: float = 0.25,
          depths: Sequence[int] | None = None) -> pd.DataFrame:
    """Every (halting, depth, k, rule) row of one strategy's candidates (see the module docstring)."""
    N, K, D, _ = rec.grids.shape
    y = np.asarray(labels)
    total_segments = N * K * (D + len(check_depths))
    rows = []
    for mode in halting:
        for d in (depths or depths_for(D, base)):
            g, q, r, segs = at_depth(rec, d, mode, tol)
            ci = list(check_depths).index(d) if (mode == "off" and d in check_depths) else None
            for k in ks_for(K):
                used = segs[:, :k].sum(1).astype(np.float64)  # [N]
                for rule in rules:
                    if rule == "stability" and ci is None:
                        continue
                    st = rec.stable[:, :k, ci] if ci is not None else None
                    flags = solved(rule, g[:, :k], y, q[:, :k], r[:, :k], st, topk_frac)
                    u = used + (k if rule == "stability" else 0)
                    hits = int(flags.sum())
                    lo, hi = wilson_interval(hits, N)
                    passes = float(u.mean()) / base
                    rows.append({
                        "weights": weights, "strategy": strategy, "rule": rule, "halting": mode, "depth": int(d),
                        "k": int(k), "passes": passes, "flops": float(u.mean()) * seg_flops,
                        "wall_s": seconds * float(u.sum()) / total_segments, "n": N, "solved": hits,
                        "accuracy": hits / N, "lo": lo, "hi": hi, "within_budget": passes <= budget + 1e-9,
                        "uses_label": rule == "oracle",
                    })
    return pd.DataFrame(rows, columns=COLUMNS)


def pareto(df: pd.DataFrame) -> pd.DataFrame:
    """Label-free rows within budget that no other row beats on both accuracy (higher) and FLOPs (lower)."""
    d = df[(~df["uses_label"]) & df["within_budget"]].sort_values(["flops", "accuracy"], ascending=[True, False])
    keep, best = [], -1.0
    for i, row in d.iterrows():
        if row["accuracy"] > best:
            keep.append(i)
            best = row["accuracy"]
    return d.loc[keep]


__all__ = ["HALTING", "COLUMNS", "at_depth", "ks_for", "depths_for", "score", "pareto"]
