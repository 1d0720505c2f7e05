"""The 8 symmetries of the square (dihedral group D4) acting on 2-D grids.

Maze and ARC augmentations both rotate and reflect grids; predictions made on
an augmented copy must be mapped back with the inverse. The numbering follows
the HRM/TRM reference data builders, so augmentation names written by either
side mean the same thing:

    0 identity          4 mirror left-right   (np.fliplr)
    1 rotate 90 (ccw)   5 mirror up-down      (np.flipud)
    2 rotate 180        6 transpose           (main diagonal)
    3 rotate 270 (ccw)  7 anti-transpose      (anti-diagonal)

Every element is written as "optionally transpose, then rotate k quarter turns
counter-clockwise"; inverses and the composition table are derived from that
form by computation at import time rather than typed in by hand.
"""

from __future__ import annotations

import numpy as np

NUM_DIHEDRAL = 8

# (transpose first?, quarter turns counter-clockwise) for ids 0..7
_FORM: tuple[tuple[bool, int], ...] = (
    (False, 0),
    (False, 1),
    (False, 2),
    (False, 3),
    (True, 3),  # fliplr == rot270(x.T)
    (True, 1),  # flipud == rot90(x.T)
    (True, 0),  # transpose
    (True, 2),  # anti-transpose == rot180(x.T)
)

DIHEDRAL_NAMES: tuple[str, ...] = (
    "identity", "rot90", "rot180", "rot270", "flip_lr", "flip_ud", "transpose", "anti_transpose",
)


def _check_id(tid: int) -> int:
    if isinstance(tid, bool) or not isinstance(tid, (int, np.integer)) or not 0 <= int(tid) < NUM_DIHEDRAL:
        raise ValueError(f"dihedral transform id must be an integer in 0..7, got {tid!r}")
    return int(tid)


def dihedral_transform(grid: np.ndarray, tid: int) -> np.ndarray:
    """Apply symmetry ``tid`` to the first two axes of ``grid`` (returns a contiguous copy)."""
    tid = _check_id(tid)
    arr = np.asarray(grid)
    if arr.ndim < 2:
        raise ValueError(f"dihedral transforms need a grid with at least 2 axes, got shape {arr.shape}")
    transpose, turns = _FORM[tid]
    if transpose:
        arr = np.swapaxes(arr, 0, 1)
    return np.ascontiguousarray(np.rot90(arr, k=turns, axes=(0, 1)))


def _derive_tables() -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    probe = np.arange(12).reshape(3, 4)  # non-square and asymmetric: every element differs
    images = [dihedral_transform(probe, t) for t in range(NUM_DIHEDRAL)]

    def which(arr: np.ndarray) -> int:
        hits = [t for t, im in enumerate(images) if im.shape == arr.shape and np.array_equal(im, arr)]
        assert len(hits) == 1
        return hits[0]

    compose = tuple(
        tuple(which(dihedral_transform(images[b], a)) for b in range(NUM_DIHEDRAL)) for a in range(NUM_DIHEDRAL)
    )
    inverse = tuple(next(b for b in range(NUM_DIHEDRAL) if compose[a][b] == 0) for a in range(NUM_DIHEDRAL))
    return inverse, compose


DIHEDRAL_INVERSE, _COMPOSE = _derive_tables()


def inverse_id(tid: int) -> int:
    """The id of the symmetry that undoes ``tid``."""
    return DIHEDRAL_INVERSE[_check_id(tid)]


def compose_ids(a: int, b: int) -> int:
    """The id ``c`` with ``transform(x, c) == transform(transform(x, b), a)`` (b first, then a)."""
    return _COMPOSE[_check_id(a)][_check_id(b)]


def inverse_dihedral_transform(grid: np.ndarray, tid: int) -> np.ndarray:
    """Undo ``dihedral_transform(grid, tid)``."""
    return dihedral_transform(grid, inverse_id(tid))


def transformed_shape(shape: tuple[int, int], tid: int) -> tuple[int, int]:
    """Shape of a ``shape`` grid after symmetry ``tid`` (rows and columns swap for odd forms)."""
    transpose, turns = _FORM[_check_id(tid)]
    swapped = transpose ^ (turns % 2 == 1)
    return (shape[1], shape[0]) if swapped else (shape[0], shape[1])
