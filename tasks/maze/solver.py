"""Solve and check mazes: shortest S-to-G paths (BFS), their count, the label, and label checks."""

from __future__ import annotations

import numpy as np

from tasks.maze.grid import (
    GOAL,
    OPEN,
    PATH,
    START,
    STEPS,
    WALL,
    MazeError,
    as_token_grid,
    bfs_distances,
    check_maze,
)


def shortest_path_counts(passable: np.ndarray, start: tuple[int, int], dist: np.ndarray) -> np.ndarray:
    """Number of distinct shortest paths from ``start`` to each cell, capped at 2."""
    count = np.zeros(passable.shape, dtype=np.int8)
    count[start] = 1
    cells = np.argwhere(dist > 0)
    order = np.argsort(dist[dist > 0], kind="stable")
    n_rows, n_cols = passable.shape
    for r, c in cells[order].tolist():
        total = 0
        for dr, dc in STEPS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < n_rows and 0 <= cc < n_cols and dist[rr, cc] == dist[r, c] - 1:
                total += count[rr, cc]
        count[r, c] = min(total, 2)
    return count


def shortest_path(grid: np.ndarray) -> list[tuple[int, int]]:
    """A shortest S-to-G path (BFS) as a list of (row, col), S first and G last.

    Existing 'o' cells count as open. Ties are broken deterministically; use
    ``count_shortest_paths`` to see whether the answer is unique.
    """
    grid = as_token_grid(grid)
    s, g = check_maze(grid, check_reachable=False)
    dist = bfs_distances(grid != WALL, g)  # distances to the goal: walk downhill from S
    if dist[s] < 0:
        raise MazeError(f"goal 'G' at {g} is not reachable from start 'S' at {s}")
    path = [s]
    r, c = s
    while (r, c) != g:
        for dr, dc in STEPS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < grid.shape[0] and 0 <= cc < grid.shape[1] and dist[rr, cc] == dist[r, c] - 1:
                r, c = rr, cc
                break
        path.append((r, c))
    return path


def path_length(grid: np.ndarray) -> int:
    """Number of moves on a shortest S-to-G path."""
    return len(shortest_path(grid)) - 1


def count_shortest_paths(grid: np.ndarray) -> int:
    """How many distinct shortest S-to-G paths exist, capped at 2 (1 means the label is unique)."""
    grid = as_token_grid(grid)
    s, g = check_maze(grid)
    passable = grid != WALL
    dist = bfs_distances(passable, s)
    return int(shortest_path_counts(passable, s, dist)[g])


def solve_maze(grid: np.ndarray) -> np.ndarray:
    """The label: ``grid`` with the shortest path's interior cells marked 'o' (old 'o' cleared first)."""
    grid = as_token_grid(grid).copy()
    grid[grid == PATH] = OPEN
    label = grid.copy()
    for cell in shortest_path(grid)[1:-1]:
        label[cell] = PATH
    return label


def is_valid_path_solution(puzzle: np.ndarray, label: np.ndarray) -> bool:
    """True iff ``label`` is ``puzzle`` plus 'o' cells forming a shortest S-to-G path.

    Checked without reconstructing any path: the 'o' cells must lie on open
    cells of the puzzle, every other cell must be unchanged, there must be
    exactly (shortest length - 1) of them, and G must be reachable from S
    moving only through S, G and 'o' cells. Any S-G route inside that set has
    at least as many interior cells as the shortest path, so it uses every 'o'
    cell and is itself a shortest path.
    """
    puzzle = as_token_grid(puzzle)
    label = np.asarray(label)
    if label.shape != puzzle.shape:
        return False
    try:
        label = as_token_grid(label)
    except MazeError:
        return False
    marked = label == PATH
    if (puzzle == PATH).any() or (puzzle[marked] != OPEN).any():
        return False
    if not np.array_equal(label[~marked], puzzle[~marked]):
        return False
    try:
        s, g = check_maze(puzzle)
    except MazeError:
        return False
    best = bfs_distances(puzzle != WALL, s)[g]
    if int(marked.sum()) != best - 1:
        return False
    on_path = marked | (label == START) | (label == GOAL)
    return bool(bfs_distances(on_path, s)[g] == best)


__all__ = ["shortest_path_counts", "shortest_path", "path_length", "count_shortest_paths", "solve_maze",
           "is_valid_path_solution"]
