"""Sudoku constraint violations of decoded answers (the Augmented-HRM error curve).

Counted on tokens (2..S+1 = digits 1..S) so analyses need no task code:
for every row, column and box, ``sum_d relu(count(d) - 1)``. A prediction
that is not a digit (pad/blank token) cannot clash; by default each such cell
adds 1 so that an unfilled grid never scores as conflict-free.
"""

from __future__ import annotations

import math

import numpy as np

from interp.tracing.trace import TraceError

DIGIT_OFFSET = 1  # token = digit + 1


def sudoku_conflicts(tokens: np.ndarray, count_non_digits: bool = True) -> np.ndarray:
    """Conflicts of token grids ``[..., S*S]`` -> integer array ``[...]``."""
    arr = np.asarray(tokens)
    n_cells = arr.shape[-1]
    S = math.isqrt(n_cells)
    n = math.isqrt(S)
    if S * S != n_cells or n * n != S:
        raise TraceError(f"{n_cells} cells is not a Sudoku grid (need S*S cells with S = n*n)")
    lead = arr.shape[:-1]
    digits = arr.astype(np.int64) - DIGIT_OFFSET  # 1..S for digits
    onehot = digits[..., None] == np.arange(1, S + 1)  # [..., S*S, S]
    grid = onehot.reshape(*lead, S, S, S)  # [..., row, col, digit]
    rows = grid.sum(-2)  # [..., row, digit]
    cols = grid.sum(-3)
    boxes = grid.reshape(*lead, n, n, n, n, S).sum(axis=(-4, -2))  # [..., band, stack, digit]
    conf = (np.maximum(rows - 1, 0).sum((-1, -2)) + np.maximum(cols - 1, 0).sum((-1, -2))
            + np.maximum(boxes - 1, 0).sum((-1, -2, -3)))
    if count_non_digits:
        conf = conf + (~onehot.any(-1)).sum(-1)
    return conf.astype(np.int64)


__all__ = ["sudoku_conflicts"]
