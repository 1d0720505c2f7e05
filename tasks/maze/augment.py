"""Maze augmentations: the 8 dihedral symmetries (puzzle and label alike) and swapping S and G."""

from __future__ import annotations

import numpy as np

from tasks.dihedral import dihedral_transform, inverse_dihedral_transform
from tasks.maze.grid import GOAL, START, as_token_grid


def augment_maze(puzzle: np.ndarray, label: np.ndarray, tid: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply dihedral symmetry ``tid`` (0..7) to a puzzle and its label alike."""
    return dihedral_transform(puzzle, tid), dihedral_transform(label, tid)


def unaugment_maze(grid: np.ndarray, tid: int) -> np.ndarray:
    """Map a grid (e.g. a prediction on an augmented puzzle) back to the original orientation."""
    return inverse_dihedral_transform(grid, tid)


def swap_start_goal(grid: np.ndarray) -> np.ndarray:
    """Exchange S and G (an input perturbation that keeps the shortest path set unchanged)."""
    grid = as_token_grid(grid)
    out = grid.copy()
    out[grid == START] = GOAL
    out[grid == GOAL] = START
    return out


__all__ = ["augment_maze", "unaugment_maze", "swap_start_goal"]
