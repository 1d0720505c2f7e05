"""ARC grids on the 30x30 canvas: colour grid checks, the token encoding and its exact and lenient decoding.

Token encoding (vocab 12, the reference encoding)::

    0 pad   1 end-of-grid marker   2..11 colours 0..9

A grid sits on a 30x30 canvas at some offset (top-left by default); the row
just below it and the column just right of it (over the grid's extent, when
inside the canvas) hold the marker, the rest is pad. ``decode_grid`` undoes
this exactly and refuses anything else.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from common.labels import IGNORE_LABEL

CANVAS = 30
MAX_GRID = 30
NUM_COLOURS = 10
PAD, EOS, COLOUR_OFFSET = 0, 1, 2
VOCAB_SIZE = NUM_COLOURS + 2
SEQ_LEN = CANVAS * CANVAS

Grid = np.ndarray
Pair = tuple[np.ndarray, np.ndarray]  # (input, output); a test output may be None when the file omits it


class ArcTaskError(ValueError):
    """A malformed ARC task or grid encoding; the message names the file and the problem."""


def validate_grid(grid: Any, where: str) -> np.ndarray:
    """Check one grid (list of equal-length rows of ints 0..9, 1..30 a side); return it as uint8."""
    if isinstance(grid, np.ndarray):
        if grid.ndim != 2:
            raise ArcTaskError(f"{where}: grid must be 2-D, got shape {grid.shape}")
        arr = grid
    else:
        if not isinstance(grid, list) or not grid:
            raise ArcTaskError(f"{where}: grid must be a non-empty list of rows")
        if not all(isinstance(row, list) for row in grid):
            raise ArcTaskError(f"{where}: every grid row must be a list")
        width = len(grid[0])
        for r, row in enumerate(grid):
            if len(row) != width:
                raise ArcTaskError(f"{where}: ragged grid, row {r} has {len(row)} cells, expected {width}")
        try:
            arr = np.array(grid)
        except (ValueError, TypeError):
            arr = np.array(grid, dtype=object)
        if arr.ndim != 2:  # e.g. lists inside cells: keep the cells as objects, reported below
            arr = np.empty((len(grid), width), dtype=object)
            for r, row in enumerate(grid):
                for c, v in enumerate(row):
                    arr[r, c] = v
    h, w = arr.shape
    if not (1 <= h <= MAX_GRID and 1 <= w <= MAX_GRID):
        raise ArcTaskError(f"{where}: grid is {h}x{w}, sides must be 1..{MAX_GRID}")
    if arr.dtype.kind in "iu":
        bad = (arr < 0) | (arr >= NUM_COLOURS)
    else:
        bad = np.array(
            [[isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < NUM_COLOURS for v in row]
             for row in arr.tolist()]
        )
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        v = arr[r, c].item() if isinstance(arr[r, c], np.generic) else arr[r, c]
        raise ArcTaskError(f"{where}: cell ({r}, {c}) is {reprlib.repr(v)}, colours must be integers 0..9")
    return arr.astype(np.uint8)


def encode_grid(grid: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Place a colour grid on the 30x30 canvas at ``offset`` with end markers; return uint8 [900]."""
    grid = validate_grid(grid, "encode_grid")
    h, w = grid.shape
    r0, c0 = int(offset[0]), int(offset[1])
    if r0 < 0 or c0 < 0 or r0 + h > CANVAS or c0 + w > CANVAS:
        raise ArcTaskError(
            f"encode_grid: a {h}x{w} grid at offset ({r0}, {c0}) does not fit the {CANVAS}x{CANVAS} canvas"
        )
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    canvas[r0 : r0 + h, c0 : c0 + w] = grid + COLOUR_OFFSET
    if r0 + h < CANVAS:
        canvas[r0 + h, c0 : c0 + w] = EOS
    if c0 + w < CANVAS:
        canvas[r0 : r0 + h, c0 + w] = EOS
    return canvas.reshape(-1)


def decode_grid(seq: np.ndarray, return_offset: bool = False) -> np.ndarray | tuple[np.ndarray, tuple[int, int]]:
    """Crop the grid out of a canvas sequence (inverse of ``encode_grid``); raise if malformed."""
    arr = np.asarray(seq)
    if arr.size != SEQ_LEN:
        raise ArcTaskError(f"decode_grid: expected {SEQ_LEN} tokens (30x30 canvas), got {arr.size}")
    canvas = arr.reshape(CANVAS, CANVAS).astype(np.int64)
    if canvas.min() < 0 or canvas.max() >= VOCAB_SIZE:
        raise ArcTaskError(f"decode_grid: tokens must be 0..{VOCAB_SIZE - 1}, found {canvas.min()}..{canvas.max()}")
    colour = canvas >= COLOUR_OFFSET
    if not colour.any():
        raise ArcTaskError("decode_grid: malformed canvas, no colour cells")
    rows, cols = np.flatnonzero(colour.any(1)), np.flatnonzero(colour.any(0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if not colour[r0:r1, c0:c1].all():
        raise ArcTaskError("decode_grid: malformed canvas, colour cells do not form one rectangle")
    grid = (canvas[r0:r1, c0:c1] - COLOUR_OFFSET).astype(np.uint8)
    expected = encode_grid(grid, (int(r0), int(c0))).reshape(CANVAS, CANVAS)
    if not np.array_equal(expected, canvas):
        bad = np.argwhere(expected != canvas)[0]
        what = "end-of-grid marker" if expected[tuple(bad)] == EOS else "pad"
        raise ArcTaskError(
            f"decode_grid: malformed canvas, expected {what} at ({bad[0]}, {bad[1]}), found token {canvas[tuple(bad)]}"
        )
    return (grid, (int(r0), int(c0))) if return_offset else grid


def crop_prediction(seq: np.ndarray) -> np.ndarray | None:
    """Lenient crop of a model prediction anchored at the top-left corner (no translation).

    Width = run of colour tokens at the start of row 0; height = run of rows
    whose first ``width`` tokens are all colours. Returns None when row 0
    starts with a non-colour token. Use ``decode_grid`` for exact checks.
    """
    arr = np.asarray(seq)
    if arr.size != SEQ_LEN:
        raise ArcTaskError(f"crop_prediction: expected {SEQ_LEN} tokens, got {arr.size}")
    colour = (arr.reshape(CANVAS, CANVAS) >= COLOUR_OFFSET) & (arr.reshape(CANVAS, CANVAS) < VOCAB_SIZE)
    width = int(np.argmin(colour[0])) if not colour[0].all() else CANVAS
    if width == 0:
        return None
    full = colour[:, :width].all(1)
    height = int(np.argmin(full)) if not full.all() else CANVAS
    return (arr.reshape(CANVAS, CANVAS)[:height, :width] - COLOUR_OFFSET).astype(np.uint8)


def content_box(token_grids: np.ndarray | Sequence[np.ndarray], rows: int = CANVAS,
                cols: int = CANVAS) -> tuple[int, int, int, int] | None:
    """Bounding box ``(r0, r1, c0, c1)`` of the cells that hold a token (neither pad nor ``IGNORE_LABEL``) in any
    of the ``rows*cols`` token grids; None when all are empty. The part of ARC's mostly padded canvas worth showing."""
    used = np.zeros((rows, cols), dtype=bool)
    for g in token_grids:
        t = np.asarray(g).reshape(-1, rows, cols)
        used |= ((t != PAD) & (t != IGNORE_LABEL)).any(0)
    if not used.any():
        return None
    r, c = np.flatnonzero(used.any(1)), np.flatnonzero(used.any(0))
    return int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1


__all__ = ["CANVAS", "MAX_GRID", "NUM_COLOURS", "PAD", "EOS", "COLOUR_OFFSET", "VOCAB_SIZE", "SEQ_LEN", "Grid", "Pair",
           "ArcTaskError", "validate_grid", "encode_grid", "decode_grid", "crop_prediction", "content_box"]
