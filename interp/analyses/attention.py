"""Where attention goes on a Sudoku grid: mass on the same row, column and box, per head and step.

A pure function of a trace recorded with ``attention=True`` (``interp trace --attention``):
the stored patterns ``pattern.layer{k}`` are [n, T, heads, query, key] (puzzle prefix
positions first). For every query cell, the mass the head puts on the other cells of
its row, column and box is summed, after removing the query cell itself and
renormalising over the remaining keys (``exclude_self=True``): a head that attends only
within rows scores ``row`` = 1 however much it attends to itself. Cells share a row and
a box, or a column and a box, so ``row + col + box`` can exceed 1; ``peers`` (the union)
cannot. Masses on prefix positions go to ``prefix``.

    from interp.analyses.attention import sudoku_attention_mass
    df = sudoku_attention_mass(tr)                 # step, layer, head, row, col, box, peers, prefix, self

The PNG of these masses (one panel per layer and head) is drawn and written by
``interp.report.figures.plot_head_masses``: analyses compute, they write no files.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from interp.tracing.trace import TraceError

MASS_COLUMNS = ("row", "col", "box", "peers", "prefix", "self")


def sudoku_relations(n_cells: int) -> dict[str, np.ndarray]:
    """Boolean [cells, cells] masks ``row``, ``col``, ``box`` (self excluded) and ``peers`` (their union)."""
    S = math.isqrt(n_cells)
    b = math.isqrt(S)
    if S * S != n_cells or b * b != S:
        raise TraceError(f"{n_cells} cells is not a Sudoku grid (need S*S cells with S = n*n)")
    idx = np.arange(n_cells)
    r, c = idx // S, idx % S
    box = (r // b) * b + c // b
    off = ~np.eye(n_cells, dtype=bool)
    rel = {"row": (r[:, None] == r[None, :]) & off, "col": (c[:, None] == c[None, :]) & off,
           "box": (box[:, None] == box[None, :]) & off}
    rel["peers"] = rel["row"] | rel["col"] | rel["box"]
    return rel


def pattern_masses(pattern: np.ndarray, prefix_len: int = 0, exclude_self: bool = True) -> dict[str, np.ndarray]:
    """Masses of patterns [..., query, key] (keys = prefix + cells): each ``MASS_COLUMNS`` entry [...],
    averaged over the query cells (prefix queries are not scored)."""
    p = np.asarray(pattern, dtype=np.float64)
    P = int(prefix_len)
    n_cells = p.shape[-1] - P
    if p.shape[-2] != p.shape[-1] or n_cells < 1:
        raise TraceError(f"a pattern must be [..., query, key] over prefix + cells, got shape {p.shape}")
    rel = sudoku_relations(n_cells)
    q = p[..., P:, :]  # [..., cells, keys]
    cells = q[..., P:]  # [..., cells, cells]
    self_mass = np.diagonal(cells, axis1=-2, axis2=-1)  # [..., cells]
    denom = (1.0 - self_mass) if exclude_self else np.ones_like(self_mass)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {k: ((cells * m).sum(-1) / denom).mean(-1) for k, m in rel.items()}
        out["prefix"] = (q[..., :P].sum(-1) / denom).mean(-1)
    out["self"] = self_mass.mean(-1)
    return out


def sudoku_attention_mass(trace, layers: list[int] | None = None, puzzles=None, exclude_self: bool = True) -> pd.DataFrame:
    """One row per (step, layer, head): mean over stored puzzles and query cells of the masses
    ``row``, ``col``, ``box``, ``peers``, ``prefix`` (renormalised without self) and ``self``.
    Steps whose module has no such layer (NaN patterns) are left out."""
    names = [s for s in trace.stored_states if s.startswith("pattern.layer")]
    if not names:
        raise TraceError("the trace stores no attention patterns (trace with attention=True / --attention "
                         "and keep them with states='all' or 'pattern')")
    if layers is not None:
        names = [n for n in names if int(n[len("pattern.layer"):]) in set(layers)]
    rows = []
    updated = trace.steps["updated"].tolist() if "updated" in trace.steps else [""] * trace.n_steps
    for name in names:
        k = int(name[len("pattern.layer"):])
        pat = trace.states(name, puzzles)  # [n, T, H, Q, K]
        m = pattern_masses(pat, trace.prefix_len, exclude_self)  # each [n, T, H]
        with warnings.catch_warnings():  # all-NaN steps (no such layer) stay NaN quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = {c: np.nanmean(m[c], axis=0) for c in MASS_COLUMNS}  # [T, H]
        T, H = mean["self"].shape
        for t in range(T):
            if not np.isfinite(mean["self"][t]).any():
                continue
            for h in range(H):
                rows.append({"step": t, "updated": updated[t], "layer": k, "head": h,
                             **{c: float(mean[c][t, h]) for c in MASS_COLUMNS}})
    return pd.DataFrame(rows, columns=["step", "updated", "layer", "head", *MASS_COLUMNS])


__all__ = ["MASS_COLUMNS", "sudoku_relations", "pattern_masses", "sudoku_attention_mass"]
