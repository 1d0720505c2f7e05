"""Maze path finding (the "Maze-Hard" task): generate, parse, solve, check, augment, build.

A maze is an N x M grid of tokens (vocab 6, the reference encoding)::

    0 pad   1 '#' wall   2 ' ' open   3 'S' start   4 'G' goal   5 'o' path

The puzzle is a maze with one S and one G; its label is the same grid with the
cells of the SHORTEST S-to-G path (S and G excluded) marked 'o'. Moves are the
4 orthogonal steps; path length counts moves, so a path of length L marks L-1
cells.

Mazes are carved by a randomised depth-first search on the odd lattice (long
corridors, one path between any two cells), then a fraction of the remaining
walls between two lattice cells are knocked out so that loops exist and
several routes compete: the shortest one is the answer. S and G are drawn so
that the shortest path is at least ``min_path_length`` moves long (the
reference "hard" set keeps only long paths) and, by default, so that the
shortest path is unique (otherwise exact-match labels would be ambiguous).
Everything is deterministic given a ``numpy.random.Generator`` or seed.

Modules: ``grid`` (tokens, text, checks), ``solver``, ``augment``, ``generate``, ``build`` (dataset);
the command line is ``python -m tasks.maze`` (``__main__``). Their public names are importable from here.
"""

from __future__ import annotations

from tasks.maze.augment import augment_maze, swap_start_goal, unaugment_maze
from tasks.maze.build import build_maze_dataset
from tasks.maze.generate import (
    HARD_MIN_PATH_LENGTH_30,
    carve_maze,
    default_min_path_length,
    generate_maze,
    generate_mazes,
)
from tasks.maze.grid import (
    CHARSET,
    GOAL,
    OPEN,
    PAD,
    PATH,
    START,
    STEPS,
    VOCAB_SIZE,
    WALL,
    MazeError,
    as_token_grid,
    bfs_distances,
    check_maze,
    decode,
    encode,
    format_maze,
    parse_maze,
)
from tasks.maze.solver import (
    count_shortest_paths,
    is_valid_path_solution,
    path_length,
    shortest_path,
    shortest_path_counts,
    solve_maze,
)

__all__ = ["PAD", "WALL", "OPEN", "START", "GOAL", "PATH", "CHARSET", "VOCAB_SIZE", "STEPS", "HARD_MIN_PATH_LENGTH_30",
           "MazeError", "parse_maze", "format_maze", "encode", "decode", "as_token_grid", "check_maze", "bfs_distances",
           "shortest_path_counts", "shortest_path", "path_length", "count_shortest_paths", "solve_maze",
           "is_valid_path_solution", "augment_maze", "unaugment_maze", "swap_start_goal", "default_min_path_length",
           "carve_maze", "generate_maze", "generate_mazes", "build_maze_dataset"]
