"""Per-cell probe targets for Sudoku: what a linear read-out of a state could recover.

All functions take token arrays in the shared encoding (0 pad, 1 blank,
2..S+1 digits 1..S; ``S*S`` cells per row) and return one value per cell:

* ``value``      [N, L] int   the solution digit as a class 0..S-1 (digit - 1)
* ``given``      [N, L] int   1 where the cell is a given of the puzzle
* ``candidates`` [N, L] int   digits not excluded by the givens in the cell's
  row, column and box (1 for a given cell: its own digit)
* ``correct``    [N, T, L] int  1 where the decoded prediction after step t
  already equals the solution (a per-step target)

Static targets are [N, L]; per-step targets [N, T, L] (``probes.linear``
accepts both).
"""

from __future__ import annotations

import math

import numpy as np



class FeatureError(ValueError):
    """Arrays that cannot be turned into probe targets; the message names the problem."""


def _tokens(arr: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    a = np.asarray(arr)
    if a.ndim != 2:
        raise FeatureError(f"{name} must be token ids [N, L], got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise FeatureError(f"{name} must be integer token ids, got dtype {a.dtype}")
    size = math.isqrt(a.shape[1])
    box = math.isqrt(size)
    if size * size != a.shape[1] or box * box != size or box < 2:
        raise FeatureError(f"{name} has {a.shape[1]} cells per row; a Sudoku needs S*S cells with S = n*n (16, 81, ...)")
    return a.astype(np.int64), size


def is_given(inputs: np.ndarray) -> np.ndarray:
    """[N, L] 1 where the puzzle shows a digit (token >= 2)."""
    x, _ = _tokens(inputs, "inputs")
    return (x >= 2).astype(np.int64)


def cell_values(labels: np.ndarray) -> np.ndarray:
    """[N, L] solution digit as a class ``0..S-1`` (token - 2); needs complete solutions."""
    y, size = _tokens(labels, "labels")
    if (y < 2).any() or (y > size + 1).any():
        bad = int(y[(y < 2) | (y > size + 1)][0])
        raise FeatureError(f"labels must be complete solutions (tokens 2..{size + 1}), found token {bad}")
    return y - 2


def candidate_counts(inputs: np.ndarray) -> np.ndarray:
    """[N, L] how many digits the givens of the cell's row, column and box leave open (given cells: 1)."""
    x, size = _tokens(inputs, "inputs")
    n = math.isqrt(size)
    N = x.shape[0]
    grid = x.reshape(N, size, size)
    digits = np.arange(2, size + 2)
    present = grid[..., None] == digits  # [N, S, S, D]
    in_row = present.any(axis=2)  # [N, S(row), D]
    in_col = present.any(axis=1)  # [N, S(col), D]
    in_box = present.reshape(N, n, n, n, n, size).any(axis=(2, 4))  # [N, band, stack, D]
    rows = np.arange(size)
    excluded = (
        in_row[:, rows, None, :]
        | in_col[:, None, rows, :]
        | in_box[:, rows[:, None] // n, rows[None, :] // n, :]
    )  # [N, S, S, D]
    counts = size - excluded.sum(axis=-1)
    counts = np.where(grid >= 2, 1, counts)
    return counts.reshape(N, size * size).astype(np.int64)


def prediction_correct(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[N, T, L] 1 where the step-t prediction equals the label (``predictions`` [N, T, L])."""
    p = np.asarray(predictions)
    y = np.asarray(labels)
    if p.ndim != 3 or y.ndim != 2 or p.shape[0] != y.shape[0] or p.shape[2] != y.shape[1]:
        raise FeatureError(f"predictions must be [N, T, L] and labels [N, L] with matching N and L, got {p.shape} and {y.shape}")
    return (p == y[:, None, :]).astype(np.int64)


def sudoku_targets(inputs: np.ndarray, labels: np.ndarray | None = None,
                   predictions: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """All targets available from what is given: ``given`` and ``candidates`` always,
    ``value`` with labels, ``correct`` with labels and per-step ``predictions``."""
    x, _ = _tokens(inputs, "inputs")
    out = {"given": is_given(x), "candidates": candidate_counts(x)}
    if labels is not None:
        y, _ = _tokens(labels, "labels")
        if y.shape != x.shape:
            raise FeatureError(f"labels {y.shape} and inputs {x.shape} must have the same shape")
        out["value"] = cell_values(y)
        if predictions is not None:
            out["correct"] = prediction_correct(predictions, y)
    elif predictions is not None:
        raise FeatureError("the 'correct' target needs labels as well as predictions")
    return out


__all__ = ["FeatureError", "is_given", "cell_values", "candidate_counts", "prediction_correct", "sudoku_targets"]
