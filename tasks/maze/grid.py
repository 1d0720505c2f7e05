"""Maze grids: tokens, text <-> grid, flat sequences, validity checks and BFS move counts.

A maze is an N x M grid of tokens (vocab 6, the reference encoding)::

    0 pad   1 '#' wall   2 ' ' open   3 'S' start   4 'G' goal   5 'o' path
"""

from __future__ import annotations

from collections import deque

import numpy as np

PAD, WALL, OPEN, START, GOAL, PATH = 0, 1, 2, 3, 4, 5
CHARSET = "# SGo"  # token t (1..5) is CHARSET[t - 1]
VOCAB_SIZE = 6
_CHAR_TO_TOKEN = {ch: i + 1 for i, ch in enumerate(CHARSET)}
STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))


class MazeError(ValueError):
    """A malformed maze; the message names the problem in one line."""


def parse_maze(text: str, width: int | None = None, check_reachable: bool = True) -> np.ndarray:
    """Parse maze text (one row per line, chars ``'# SGo'``) into a uint8 token grid.

    ``width`` splits a single-line string (e.g. a CSV cell of N*N chars) into rows.
    Raises ``MazeError`` for unknown characters, ragged rows, not exactly one S
    and one G, or (with ``check_reachable``) a goal that cannot be reached.
    """
    if not isinstance(text, str):
        raise MazeError(f"maze text must be a str, got {type(text).__name__}")
    if width is not None:
        flat = text.strip("\r\n")
        if width <= 0 or len(flat) % width:
            raise MazeError(f"maze string of length {len(flat)} cannot be split into rows of width {width}")
        rows = [flat[i : i + width] for i in range(0, len(flat), width)]
    else:
        rows = [line.rstrip("\r") for line in text.split("\n")]
        while rows and rows[-1] == "":
            rows.pop()
        while rows and rows[0] == "":
            rows.pop(0)
    if not rows:
        raise MazeError("empty maze text")
    n_cols = len(rows[0])
    if n_cols == 0:
        raise MazeError("maze row 0 is empty")
    grid = np.empty((len(rows), n_cols), dtype=np.uint8)
    for r, row in enumerate(rows):
        if len(row) != n_cols:
            raise MazeError(f"ragged maze: row {r} has {len(row)} characters, expected {n_cols}")
        for c, ch in enumerate(row):
            tok = _CHAR_TO_TOKEN.get(ch)
            if tok is None:
                raise MazeError(
                    f"invalid maze character {ch!r} at row {r}, column {c} (allowed: '#', ' ', 'S', 'G', 'o')"
                )
            grid[r, c] = tok
    check_maze(grid, check_reachable=check_reachable)
    return grid


def format_maze(grid: np.ndarray) -> str:
    """Render a token grid as text, one row per line (inverse of ``parse_maze``)."""
    grid = as_token_grid(grid)
    return "\n".join("".join(CHARSET[t - 1] for t in row) for row in grid.tolist())


def encode(grid: np.ndarray) -> np.ndarray:
    """Flatten a token grid into the model's uint8 sequence (row-major, length N*M)."""
    return as_token_grid(grid).reshape(-1).copy()


def decode(seq: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Reshape a token sequence back into a grid; ``shape`` defaults to the square of side sqrt(len)."""
    arr = np.asarray(seq)
    if arr.ndim != 1:
        raise MazeError(f"maze token sequence must be 1-D, got shape {arr.shape}")
    if shape is None:
        side = int(round(len(arr) ** 0.5))
        if side * side != len(arr) or side == 0:
            raise MazeError(f"maze sequence length {len(arr)} is not a square; pass shape=(rows, cols)")
        shape = (side, side)
    if shape[0] * shape[1] != len(arr):
        raise MazeError(f"maze sequence length {len(arr)} does not match shape {tuple(shape)}")
    return as_token_grid(arr.reshape(shape))


def as_token_grid(grid: np.ndarray) -> np.ndarray:
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.size == 0:
        raise MazeError(f"maze grid must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise MazeError(f"maze grid must hold integer tokens, got dtype {arr.dtype}")
    bad = (arr < WALL) | (arr > PATH)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise MazeError(f"invalid maze token {int(arr[r, c])} at row {r}, column {c} (expected 1..5)")
    return arr.astype(np.uint8, copy=False)


def _find_one(grid: np.ndarray, token: int, name: str) -> tuple[int, int]:
    hits = np.argwhere(grid == token)
    if len(hits) != 1:
        raise MazeError(f"maze must contain exactly one {name}, found {len(hits)}")
    return int(hits[0][0]), int(hits[0][1])


def check_maze(grid: np.ndarray, check_reachable: bool = True) -> tuple[tuple[int, int], tuple[int, int]]:
    """Validate a token grid (tokens 1..5, one S, one G, optionally G reachable); return (S, G)."""
    grid = as_token_grid(grid)
    s = _find_one(grid, START, "'S'")
    g = _find_one(grid, GOAL, "'G'")
    if check_reachable and bfs_distances(grid != WALL, s)[g] < 0:
        raise MazeError(f"goal 'G' at {g} is not reachable from start 'S' at {s}")
    return s, g


def bfs_distances(passable: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Move counts from ``start`` to every passable cell (-1 where unreachable)."""
    n_rows, n_cols = passable.shape
    dist = np.full(passable.shape, -1, dtype=np.int32)
    dist[start] = 0
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        d = dist[r, c] + 1
        for dr, dc in STEPS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < n_rows and 0 <= cc < n_cols and passable[rr, cc] and dist[rr, cc] < 0:
                dist[rr, cc] = d
                queue.append((rr, cc))
    return dist


__all__ = ["PAD", "WALL", "OPEN", "START", "GOAL", "PATH", "CHARSET", "VOCAB_SIZE", "STEPS", "MazeError", "parse_maze",
           "format_maze", "encode", "decode", "as_token_grid", "check_maze", "bfs_distances"]
