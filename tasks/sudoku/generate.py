"""Generate Sudoku puzzles with unique solutions, deterministic from a seed.

Recipe: a random complete grid (diagonal boxes filled with random permutations —
they never interact — then the solver completes it trying digits in a random
order), then cells are blanked in random order, each removal kept only if the
puzzle stays uniquely solvable, until the drawn blank target is reached. If the
puzzle is easier than ``min_guesses``, removal continues (up to ``max_blanks``)
until it is hard enough; otherwise a new grid is tried.

Uniqueness after blanking cell ``i`` (value ``v``) is checked as "no solution has
another digit at ``i``": one solvability search per alternative digit, which is
cheaper than counting two solutions of the whole puzzle.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from tqdm import tqdm

from tasks.sudoku.grid import PuzzleRecord, box_size, grid_to_line
from tasks.sudoku.solver import _has_other_solution, _search_flat, _to_digits

DEFAULT_BLANKS = {4: (8, 10), 9: (40, 50), 16: (120, 140)}


def default_blanks(size: int) -> tuple[int, int]:
    """Default ``(min_blanks, max_blanks)`` for a grid side (9 -> 40..50)."""
    if size in DEFAULT_BLANKS:
        return DEFAULT_BLANKS[size]
    cells = size * size
    return cells // 2, (cells * 5) // 8


def random_solution(rng: np.random.Generator, size: int = 9) -> np.ndarray:
    """A random complete grid ``int8 [S, S]`` (deterministic given ``rng``)."""
    n = box_size(size)
    flat = [0] * (size * size)
    for b in range(n):  # diagonal boxes share no row, column or box
        digits = (rng.permutation(size) + 1).tolist()
        for k, d in enumerate(digits):
            r, c = b * n + k // n, b * n + k % n
            flat[r * size + c] = d
    order = [1 << int(d) for d in rng.permutation(size)]
    search = _search_flat(flat, n, max_solutions=1, order=order, locked=False)
    if search.solution is None:
        # 9x9 diagonal boxes always extend; 4x4 ones may not. The first box alone
        # always does (any grid relabelled), so keep it and clear the others.
        first = set(b * size + c for b in range(n) for c in range(n))
        flat = [v if i in first else 0 for i, v in enumerate(flat)]
        search = _search_flat(flat, n, max_solutions=1, order=order, locked=False)
    assert search.solution is not None
    return np.asarray(_to_digits(search.solution), dtype=np.int8).reshape(size, size)


def _try_blank(flat: list[int], cell: int, n: int) -> bool:
    """Blank ``cell`` if the puzzle stays uniquely solvable; returns whether it did."""
    value = flat[cell]
    flat[cell] = 0
    if _has_other_solution(flat, n, cell, value):
        flat[cell] = value
        return False
    return True


def _guesses(flat: list[int], n: int) -> int:
    return _search_flat(flat, n, max_solutions=2).guesses


def _make_one(
    rng: np.random.Generator, size: int, min_blanks: int, max_blanks: int, min_guesses: int
) -> Optional[tuple[np.ndarray, np.ndarray, int]]:
    """One attempt: ``(puzzle, solution, guesses)`` or None if the targets were not met."""
    n = box_size(size)
    solution = random_solution(rng, size)
    flat = solution.reshape(-1).tolist()
    target = int(rng.integers(min_blanks, max_blanks + 1))
    order = rng.permutation(size * size).tolist()
    blanks = 0
    pos = 0
    while pos < len(order) and blanks < target:
        blanks += _try_blank(flat, order[pos], n)
        pos += 1
    if blanks < min_blanks:
        return None
    guesses = _guesses(flat, n)
    while guesses < min_guesses and blanks < max_blanks and pos < len(order):
        if _try_blank(flat, order[pos], n):
            blanks += 1
            guesses = _guesses(flat, n)
        pos += 1
    if guesses < min_guesses:
        return None
    puzzle = np.asarray(flat, dtype=np.int8).reshape(size, size)
    return puzzle, solution, guesses


def generate(
    n_puzzles: int,
    size: int = 9,
    min_blanks: Optional[int] = None,
    max_blanks: Optional[int] = None,
    min_guesses: int = 0,
    seed: int = 0,
    max_attempts: int = 200,
    distinct: bool = True,
    progress: bool = False,
) -> list[PuzzleRecord]:
    """Generate ``n_puzzles`` uniquely-solvable puzzles, deterministic from ``seed``.

    Each has between ``min_blanks`` and ``max_blanks`` blanks (defaults per size:
    9x9 -> 40..50) and at least ``min_guesses`` solver guesses; ``rating`` holds the
    guess count. ``distinct`` drops repeated puzzles. Raises ``ValueError`` when one
    puzzle needs more than ``max_attempts`` fresh grids (targets too hard).
    """
    box_size(size)
    cells = size * size
    lo, hi = default_blanks(size)
    if min_blanks is None:
        min_blanks = lo if max_blanks is None else min(lo, int(max_blanks))
    if max_blanks is None:
        max_blanks = max(hi, int(min_blanks))
    min_blanks, max_blanks = int(min_blanks), int(max_blanks)
    if n_puzzles < 0:
        raise ValueError(f"n_puzzles must be >= 0, got {n_puzzles}")
    if not 0 <= min_blanks <= max_blanks <= cells - 1:
        raise ValueError(f"need 0 <= min_blanks <= max_blanks <= {cells - 1}, got {min_blanks}..{max_blanks}")
    if min_guesses < 0:
        raise ValueError(f"min_guesses must be >= 0, got {min_guesses}")
    rng = np.random.default_rng(seed)
    records: list[PuzzleRecord] = []
    seen: set[str] = set()
    bar = tqdm(total=n_puzzles, desc="generate", unit="puzzle", disable=not progress)
    while len(records) < n_puzzles:
        for _ in range(max_attempts):
            made = _make_one(rng, size, min_blanks, max_blanks, min_guesses)
            if made is None:
                continue
            line = grid_to_line(made[0])
            if distinct and line in seen:
                continue
            break
        else:
            bar.close()
            raise ValueError(
                f"no {size}x{size} puzzle with {min_blanks}..{max_blanks} blanks and >= {min_guesses} guesses "
                f"after {max_attempts} attempts; lower the targets"
            )
        seen.add(line)
        puzzle, solution, guesses = made
        records.append(PuzzleRecord(puzzle, solution, float(guesses), f"generated:seed={seed}:{len(records)}"))
        bar.update(1)
    bar.close()
    return records
