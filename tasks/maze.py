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
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path
from typing import Sequence

import numpy as np

from tasks.dihedral import NUM_DIHEDRAL, dihedral_transform, inverse_dihedral_transform
from common.io import atomic_write_json
from tasks.puzzle_dataset import write_puzzle_split

PAD, WALL, OPEN, START, GOAL, PATH = 0, 1, 2, 3, 4, 5
CHARSET = "# SGo"  # token t (1..5) is CHARSET[t - 1]
VOCAB_SIZE = 6
_CHAR_TO_TOKEN = {ch: i + 1 for i, ch in enumerate(CHARSET)}
_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))
HARD_MIN_PATH_LENGTH_30 = 110  # path length threshold used for 30x30 "hard" mazes


class MazeError(ValueError):
    """A malformed maze; the message names the problem in one line."""


def default_min_path_length(size: int) -> int:
    """The "hard" threshold scaled by area: 110 moves at 30x30, proportionally less for small grids."""
    return int(round(HARD_MIN_PATH_LENGTH_30 * size * size / 900))


# ----------------------------------------------------------------------------- text <-> grid


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
    grid = _as_token_grid(grid)
    return "\n".join("".join(CHARSET[t - 1] for t in row) for row in grid.tolist())


def encode(grid: np.ndarray) -> np.ndarray:
    """Flatten a token grid into the model's uint8 sequence (row-major, length N*M)."""
    return _as_token_grid(grid).reshape(-1).copy()


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
    return _as_token_grid(arr.reshape(shape))


def _as_token_grid(grid: np.ndarray) -> np.ndarray:
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
    grid = _as_token_grid(grid)
    s = _find_one(grid, START, "'S'")
    g = _find_one(grid, GOAL, "'G'")
    if check_reachable and _bfs(grid != WALL, s)[g] < 0:
        raise MazeError(f"goal 'G' at {g} is not reachable from start 'S' at {s}")
    return s, g


# ----------------------------------------------------------------------------- solving


def _bfs(passable: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Move counts from ``start`` to every passable cell (-1 where unreachable)."""
    n_rows, n_cols = passable.shape
    dist = np.full(passable.shape, -1, dtype=np.int32)
    dist[start] = 0
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        d = dist[r, c] + 1
        for dr, dc in _STEPS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < n_rows and 0 <= cc < n_cols and passable[rr, cc] and dist[rr, cc] < 0:
                dist[rr, cc] = d
                queue.append((rr, cc))
    return dist


def _shortest_path_counts(passable: np.ndarray, start: tuple[int, int], dist: np.ndarray) -> np.ndarray:
    """Number of distinct shortest paths from ``start`` to each cell, capped at 2."""
    count = np.zeros(passable.shape, dtype=np.int8)
    count[start] = 1
    cells = np.argwhere(dist > 0)
    order = np.argsort(dist[dist > 0], kind="stable")
    n_rows, n_cols = passable.shape
    for r, c in cells[order].tolist():
        total = 0
        for dr, dc in _STEPS:
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
    grid = _as_token_grid(grid)
    s, g = check_maze(grid, check_reachable=False)
    dist = _bfs(grid != WALL, g)  # distances to the goal: walk downhill from S
    if dist[s] < 0:
        raise MazeError(f"goal 'G' at {g} is not reachable from start 'S' at {s}")
    path = [s]
    r, c = s
    while (r, c) != g:
        for dr, dc in _STEPS:
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
    grid = _as_token_grid(grid)
    s, g = check_maze(grid)
    passable = grid != WALL
    dist = _bfs(passable, s)
    return int(_shortest_path_counts(passable, s, dist)[g])


def solve_maze(grid: np.ndarray) -> np.ndarray:
    """The label: ``grid`` with the shortest path's interior cells marked 'o' (old 'o' cleared first)."""
    grid = _as_token_grid(grid).copy()
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
    puzzle = _as_token_grid(puzzle)
    label = np.asarray(label)
    if label.shape != puzzle.shape:
        return False
    try:
        label = _as_token_grid(label)
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
    best = _bfs(puzzle != WALL, s)[g]
    if int(marked.sum()) != best - 1:
        return False
    on_path = marked | (label == START) | (label == GOAL)
    return bool(_bfs(on_path, s)[g] == best)


# ----------------------------------------------------------------------------- augmentation


def augment_maze(puzzle: np.ndarray, label: np.ndarray, tid: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply dihedral symmetry ``tid`` (0..7) to a puzzle and its label alike."""
    return dihedral_transform(puzzle, tid), dihedral_transform(label, tid)


def unaugment_maze(grid: np.ndarray, tid: int) -> np.ndarray:
    """Map a grid (e.g. a prediction on an augmented puzzle) back to the original orientation."""
    return inverse_dihedral_transform(grid, tid)


def swap_start_goal(grid: np.ndarray) -> np.ndarray:
    """Exchange S and G (an input perturbation that keeps the shortest path set unchanged)."""
    grid = _as_token_grid(grid)
    out = grid.copy()
    out[grid == START] = GOAL
    out[grid == GOAL] = START
    return out


# ----------------------------------------------------------------------------- generation


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
            for di, dj in _STEPS
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
        dist = _bfs(passable, s)
        ok = dist >= min_path_length
        if unique_path and ok.any():
            ok &= _shortest_path_counts(passable, s, dist) == 1
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


# ----------------------------------------------------------------------------- dataset


def build_maze_dataset(
    out_dir: str | Path,
    n_train: int = 1000,
    n_test: int = 1000,
    size: int = 30,
    min_path_length: int | None = None,
    n_aug: int = 0,
    seed: int = 0,
    loop_fraction: float = 0.05,
    unique_path: bool = True,
) -> Path:
    """Write a maze puzzle dataset (reference layout) under ``out_dir/{train,test}``.

    Every maze is one puzzle with one example and puzzle identifier 0 (the
    reference maze data has no per-puzzle identities). With ``n_aug`` in 0..7,
    each training maze also gets ``n_aug`` distinct non-identity dihedral
    copies in its group; the test split is never augmented. Train and test
    mazes are distinct.
    """
    if n_train < 1 or n_test < 1:
        raise MazeError(f"n_train and n_test must be >= 1, got {n_train} and {n_test}")
    if not 0 <= n_aug < NUM_DIHEDRAL:
        raise MazeError(f"n_aug must be in 0..7 (dihedral copies per maze), got {n_aug}")
    if min_path_length is None:
        min_path_length = default_min_path_length(size)
    out_dir = Path(out_dir)
    seen: set[bytes] = set()
    seeds = np.random.SeedSequence(seed).spawn(3)
    splits = {
        "train": generate_mazes(n_train, size, seeds[0], min_path_length, loop_fraction, unique_path, seen),
        "test": generate_mazes(n_test, size, seeds[1], min_path_length, loop_fraction, unique_path, seen),
    }
    aug_rng = np.random.default_rng(seeds[2])
    for split, (inputs, labels) in splits.items():
        k = n_aug if split == "train" else 0
        xs, ys = [], []
        for x, y in zip(inputs, labels):
            extra = aug_rng.choice(np.arange(1, NUM_DIHEDRAL), size=k, replace=False) if k else []
            tids = [0] + sorted(int(t) for t in extra)
            for t in tids:
                px, py = augment_maze(decode(x), decode(y), t)
                xs.append(encode(px))
                ys.append(encode(py))
        n_puzzles = len(xs)
        group_size = k + 1
        meta = {
            "task": "maze",
            "grid_size": int(size),
            "vocab_size": VOCAB_SIZE,
            "seq_len": int(size * size),
            "pad_id": PAD,
            "ignore_label_id": 0,
            "blank_identifier_id": 0,
            "num_puzzle_identifiers": 1,
            "min_path_length": int(min_path_length),
            "loop_fraction": float(loop_fraction),
            "unique_path": bool(unique_path),
            "n_aug": int(k),
            "seed": int(seed),
        }
        write_puzzle_split(
            out_dir / split,
            np.stack(xs),
            np.stack(ys),
            np.zeros(n_puzzles, dtype=np.int32),
            np.arange(n_puzzles + 1, dtype=np.int32),
            np.arange(0, n_puzzles + 1, group_size, dtype=np.int32),
            meta,
            identifiers=["<blank>"],
        )
    atomic_write_json(out_dir / "identifiers.json", ["<blank>"])  # also where the reference layout keeps it
    return out_dir


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tasks.maze {build,show}``: build a dataset or print a generated maze."""
    parser = argparse.ArgumentParser(prog="python -m tasks.maze", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write a maze puzzle dataset")
    b.add_argument("--out", required=True)
    b.add_argument("--n-train", type=int, default=1000)
    b.add_argument("--n-test", type=int, default=1000)
    b.add_argument("--size", type=int, default=30)
    b.add_argument("--min-path-length", type=int, default=None)
    b.add_argument("--n-aug", type=int, default=0)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--loop-fraction", type=float, default=0.05)
    s = sub.add_parser("show", help="print one generated maze and its solution")
    s.add_argument("--size", type=int, default=15)
    s.add_argument("--min-path-length", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "build":
            out = build_maze_dataset(
                args.out, args.n_train, args.n_test, args.size, args.min_path_length, args.n_aug, args.seed,
                args.loop_fraction,
            )
            print(f"wrote {out}/train and {out}/test")
        else:
            puzzle, label = generate_maze(args.size, args.seed, args.min_path_length)
            print(format_maze(puzzle))
            print()
            print(format_maze(label))
            print(f"shortest path: {path_length(puzzle)} moves")
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
