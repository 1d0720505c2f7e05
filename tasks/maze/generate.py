"""Generate mazes: a randomised DFS on the odd lattice plus loops, S and G far apart (unique shortest path).

Everything is deterministic given a ``numpy.random.Generator`` or seed.
"""

from __future__ import annotations

import numpy as np

from tasks.maze.grid import (
    GOAL,
    OPEN,
    START,
    STEPS,
    WALL,
    MazeError,
    bfs_distances,
    encode,
)
from tasks.maze.solver import shortest_path_counts, solve_maze

HARD_MIN_PATH_LENGTH_30 = 110  # path length threshold used for 30x30 "hard" mazes


def default_min_path_length(size: int) -> int:
    """The "hard" threshold scaled by area: 110 moves at 30x30, proportionally less for small grids."""
    return int(round(HARD_MIN_PATH_LENGTH_30 * size * size / 900))


def carve_maze(size: int | tuple[int, int], rng: np.random.Generator, loop_fraction: float = 0.05) -> np.ndarray:
    """A maze of walls and open cells (no S/G): randomised DFS on the odd lattice, then loops.

    ``loop_fraction`` of the walls still standing between two lattice cells are
    opened, so several routes can join two cells.
    """
    n_rows, n_cols = (size, size) if isinstance(size, (int, np.integer)) else size
    if n_rows < 5 or n_cols < 5:
        raise MazeError(f"maze size must be at least 5x5, got {n_rows}x{n_cols}")
    if not 0.0 <= loop_fraction <= 1.0:
        raise MazeError(f"loop_fraction must be in [0, 1], got {loop_fraction}")
    cr, cc = (n_rows - 1) // 2, (n_cols - 1) // 2  # lattice cells at (2i+1, 2j+1)
    grid = np.full((n_rows, n_cols), WALL, dtype=np.uint8)
    visited = np.zeros((cr, cc), dtype=bool)
    start = (int(rng.integers(cr)), int(rng.integers(cc)))
    visited[start] = True
    grid[2 * start[0] + 1, 2 * start[1] + 1] = OPEN
    stack = [start]
    while stack:
        i, j = stack[-1]
        options = [
            (i + di, j + dj)
            for di, dj in STEPS
            if 0 <= i + di < cr and 0 <= j + dj < cc and not visited[i + di, j + dj]
        ]
        if not options:
            stack.pop()
            continue
        ni, nj = options[int(rng.integers(len(options)))]
        visited[ni, nj] = True
        grid[2 * ni + 1, 2 * nj + 1] = OPEN
        grid[i + ni + 1, j + nj + 1] = OPEN  # the wall between the two cells
        stack.append((ni, nj))
    if loop_fraction > 0:
        walls = [
            (r, c)
            for r in range(1, 2 * cr)
            for c in range(1, 2 * cc)
            if (r + c) % 2 == 1 and grid[r, c] == WALL  # between two lattice cells
        ]
        n_open = int(round(loop_fraction * len(walls)))
        for k in rng.permutation(len(walls))[:n_open].tolist():
            grid[walls[k]] = OPEN
    return grid


def generate_maze(
    size: int = 30,
    rng: np.random.Generator | int | None = None,
    min_path_length: int | None = None,
    loop_fraction: float = 0.05,
    unique_path: bool = True,
    max_tries: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """One (puzzle, label) pair of token grids, deterministic given ``rng`` (a Generator or seed).

    S is drawn uniformly among open cells, G uniformly among cells whose
    shortest distance from S is >= ``min_path_length`` (default: the area-scaled
    hard threshold) and, with ``unique_path``, reached by exactly one shortest
    path. A new maze is carved when no such G exists.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if min_path_length is None:
        min_path_length = default_min_path_length(size if isinstance(size, (int, np.integer)) else max(size))
    min_path_length = max(int(min_path_length), 1)
    for _ in range(max_tries):
        grid = carve_maze(size, rng, loop_fraction)
        passable = grid == OPEN
        open_cells = np.argwhere(passable)
        s = tuple(int(v) for v in open_cells[int(rng.integers(len(open_cells)))])
        dist = bfs_distances(passable, s)
        ok = dist >= min_path_length
        if unique_path and ok.any():
            ok &= shortest_path_counts(passable, s, dist) == 1
        candidates = np.argwhere(ok)
        if len(candidates) == 0:
            continue
        g = tuple(int(v) for v in candidates[int(rng.integers(len(candidates)))])
        grid[s], grid[g] = START, GOAL
        return grid, solve_maze(grid)
    raise MazeError(
        f"no {size}x{size} maze with a path of >= {min_path_length} moves found in {max_tries} tries; "
        "lower min_path_length or loop_fraction"
    )


def generate_mazes(
    n: int,
    size: int = 30,
    seed: int | np.random.SeedSequence = 0,
    min_path_length: int | None = None,
    loop_fraction: float = 0.05,
    unique_path: bool = True,
    exclude: set[bytes] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct mazes as token sequences: (inputs, labels), each uint8 [n, size*size].

    Mazes whose encoded input is in ``exclude`` (or repeats an earlier one) are
    redrawn; the encodings of the new mazes are added to ``exclude``.
    """
    rng = np.random.default_rng(seed)
    seen = exclude if exclude is not None else set()
    inputs, labels = [], []
    while len(inputs) < n:
        puzzle, label = generate_maze(size, rng, min_path_length, loop_fraction, unique_path)
        key = puzzle.tobytes()
        if key in seen:
            continue
        seen.add(key)
        inputs.append(encode(puzzle))
        labels.append(encode(label))
    seq_len = size * size if isinstance(size, (int, np.integer)) else size[0] * size[1]
    if not inputs:
        return np.zeros((0, seq_len), np.uint8), np.zeros((0, seq_len), np.uint8)
    return np.stack(inputs), np.stack(labels)


__all__ = ["HARD_MIN_PATH_LENGTH_30", "default_min_path_length", "carve_maze", "generate_maze", "generate_mazes"]
