"""Canonical form of a Sudoku solution grid under the full validity-preserving symmetry group.

Two solution grids are *equivalent* when one becomes the other by a transposition, a permutation of the
bands, of the rows inside each band, of the stacks, of the columns inside each stack, and a relabelling of
the digits (every :class:`~tasks.sudoku.augment.SudokuTransform`). The canonical form is the lexicographically
smallest grid (row-major) of the class, digits relabelled by first appearance, so its first row always reads
``1 2 ... S``; equivalent grids have the same canonical form and inequivalent ones different forms (exact).

The search fixes the transposition, the first row and the whole column arrangement (2 x 9 x 1296 choices
for 9x9), which fixes the relabelling, then chooses the remaining rows depth-first with branch and bound
against the best grid found so far: a row greater than the best one at its position is cut at once, so
almost every branch ends on its second row. About a millisecond per 9x9 grid (compiled with numba, cached).

Used to keep held-out sets honest: :func:`equivalent_mask` marks the held-out grids that a training grid
equals up to symmetry (``scripts/make_hard_sudoku.py``, ``tasks/sudoku/build.py``, ``python -m training eval``).
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Iterable

import numpy as np
from numba import njit

from tasks.sudoku.grid import PuzzleFormatError, box_size, grid_to_line, is_valid_solution

MAX_BOX = 3  # 16x16 would need 24^5 column arrangements per first row: refused


@lru_cache(maxsize=None)
def _column_arrangements(n: int) -> np.ndarray:
    """Every stack-preserving column permutation ``int64 [(n!)^(n+1), n*n]``."""
    inner = list(itertools.permutations(range(n)))
    rows = []
    for stacks in itertools.permutations(range(n)):
        for within in itertools.product(inner, repeat=n):
            rows.append([stacks[k] * n + within[k][j] for k in range(n) for j in range(n)])
    return np.asarray(rows, dtype=np.int64)


@njit(cache=True)
def _row_vs_best(g, r, cols, relabel, best, k, size):
    """Compare row ``r`` (columns ``cols``, relabelled) with ``best[k]``: -1 smaller (best updated, rows after
    it reset to "infinity"), 0 equal, 1 greater."""
    for j in range(size):
        v = relabel[g[r, cols[j]]]
        b = best[k, j]
        if v < b:
            for jj in range(size):
                best[k, jj] = relabel[g[r, cols[jj]]]
            for kk in range(k + 1, size):
                for jj in range(size):
                    best[kk, jj] = size + 1
            return -1
        if v > b:
            return 1
    return 0


@njit(cache=True)
def _search_rows(g, r0, cols, relabel, best, n, size):
    """Depth-first choice of rows 1..S-1 after first row ``r0`` (bands kept together), bounded by ``best``."""
    used_row = np.zeros(size, np.bool_)
    used_band = np.zeros(n, np.bool_)
    choice = np.full(size, -1, np.int64)
    used_row[r0] = True
    used_band[r0 // n] = True
    choice[0] = r0
    k = 1
    while k >= 1:
        r = choice[k] + 1
        if choice[k] >= 0:  # release the row tried last at this level
            used_row[choice[k]] = False
            if k % n == 0:
                used_band[choice[k] // n] = False
        found = -1
        while r < size:
            if not used_row[r]:
                if k % n == 0:
                    ok = not used_band[r // n]
                else:
                    ok = r // n == choice[k - 1] // n
                if ok and _row_vs_best(g, r, cols, relabel, best, k, size) <= 0:
                    found = r
                    break
            r += 1
        if found < 0:
            choice[k] = -1
            k -= 1
            continue
        choice[k] = found
        used_row[found] = True
        if k % n == 0:
            used_band[found // n] = True
        if k < size - 1:
            k += 1
            choice[k] = -1


@njit(cache=True)
def _canonical_one(grid, arrangements, n, out):
    """Write the canonical form of one valid ``[S, S]`` solution grid into ``out``."""
    size = n * n
    for i in range(size):
        for j in range(size):
            out[i, j] = size + 1
    relabel = np.zeros(size + 1, np.int64)
    for t in range(2):
        g = grid if t == 0 else grid.T.copy()
        for r0 in range(size):
            for a in range(arrangements.shape[0]):
                cols = arrangements[a]
                for j in range(size):
                    relabel[g[r0, cols[j]]] = j + 1
                if _row_vs_best(g, r0, cols, relabel, out, 0, size) <= 0:
                    _search_rows(g, r0, cols, relabel, out, n, size)


@njit(cache=True)
def _canonical_many(grids, arrangements, n, out):
    for i in range(grids.shape[0]):
        _canonical_one(grids[i], arrangements, n, out[i])


def _checked(grids: np.ndarray) -> tuple[np.ndarray, int]:
    """``int64 [N, S, S]`` complete valid solution grids, and the box size; PuzzleFormatError otherwise."""
    arr = np.asarray(grids)
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
        raise PuzzleFormatError(f"expected solution grids [N, S, S], got shape {tuple(arr.shape)}")
    n = box_size(arr.shape[1])
    if n > MAX_BOX:
        raise PuzzleFormatError(f"canonical forms are computed up to {MAX_BOX ** 2}x{MAX_BOX ** 2} grids, "
                                f"got {arr.shape[1]}x{arr.shape[1]}")
    for i, g in enumerate(arr):
        if not is_valid_solution(g):
            raise PuzzleFormatError(f"grid {i} is not a complete valid solution grid (canonical forms are "
                                    "defined for solution grids)")
    return np.ascontiguousarray(arr, dtype=np.int64), n


def canonical_grids(grids: np.ndarray) -> np.ndarray:
    """Canonical forms ``int8 [N, S, S]`` of valid solution grids ``[N, S, S]`` (see module doc)."""
    arr, n = _checked(grids)
    out = np.empty_like(arr)
    if len(arr):
        _canonical_many(arr, _column_arrangements(n), n, out)
    return out.astype(np.int8)


def canonical_grid(grid: np.ndarray) -> np.ndarray:
    """Canonical form ``int8 [S, S]`` of one valid solution grid."""
    return canonical_grids(np.asarray(grid)[None])[0]


def canonical_keys(grids: np.ndarray) -> list[str]:
    """One string per grid (its canonical form, row-major digits): equal exactly for equivalent grids."""
    return [grid_to_line(g) for g in canonical_grids(grids)]


def equivalent_mask(grids: np.ndarray, against: Iterable[str]) -> np.ndarray:
    """``bool [N]``: which of ``grids`` is equivalent to a grid whose canonical key is in ``against``."""
    keys = set(against)
    return np.asarray([k in keys for k in canonical_keys(grids)], dtype=bool)


__all__ = ["MAX_BOX", "canonical_grids", "canonical_grid", "canonical_keys", "equivalent_mask"]
