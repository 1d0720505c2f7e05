"""Generate Sudoku puzzles with unique solutions, deterministic from a seed.

Recipe: a random complete grid (diagonal boxes filled with random permutations —
they never interact — then the solver completes it trying digits in a random
order), then cells are blanked in random order, each removal kept only if the
puzzle stays uniquely solvable, until the drawn blank target is reached. If the
puzzle is easier than ``min_guesses``, removal continues (up to ``max_blanks``)
until it is hard enough; otherwise a new grid is tried.

Uniqueness after blanking cell ``i`` (value ``v``) is checked as "no solution has
another digit at ``i``": one solvability search with ``v`` excluded from ``i``,
which is cheaper than counting two solutions of the whole puzzle.

Every attempt draws its random numbers up front (:func:`_draw_attempt`) in a fixed
amount per attempt, so the attempts can run in worker processes
(``workers``) and still give exactly the puzzles a single process gives.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Iterator, Optional

import numpy as np
from tqdm import tqdm

from tasks.sudoku.grid import PuzzleRecord, box_size, grid_to_line
from tasks.sudoku.kernel import STATUS_DONE
from tasks.sudoku.solver import search_flat

DEFAULT_BLANKS = {4: (8, 10), 9: (40, 50), 16: (120, 140)}


def default_blanks(size: int) -> tuple[int, int]:
    """Default ``(min_blanks, max_blanks)`` for a grid side (9 -> 40..50)."""
    if size in DEFAULT_BLANKS:
        return DEFAULT_BLANKS[size]
    cells = size * size
    return cells // 2, (cells * 5) // 8


Draw = tuple[list[list[int]], list[int], int, list[int]]
"""One attempt's random numbers: diagonal-box digits, digit trial order (bits), blank target, cell order."""


def _draw_solution(rng: np.random.Generator, size: int) -> tuple[list[list[int]], list[int]]:
    """The random numbers of :func:`random_solution`: diagonal-box digits and a digit trial order."""
    n = box_size(size)
    boxes = [(rng.permutation(size) + 1).tolist() for _ in range(n)]
    order = [1 << int(d) for d in rng.permutation(size)]
    return boxes, order


def _complete(boxes: list[list[int]], order: list[int], size: int) -> np.ndarray:
    """The first completion (digits tried in ``order``) of a grid with the diagonal boxes filled."""
    n = box_size(size)
    flat = [0] * (size * size)
    for b, digits in enumerate(boxes):  # diagonal boxes share no row, column or box
        for k, d in enumerate(digits):
            flat[(b * n + k // n) * size + b * n + k % n] = d
    search = search_flat(flat, n, max_solutions=1, order=order, locked=False)
    if search.solution is None:
        # 9x9 diagonal boxes always extend; 4x4 ones may not. The first box alone
        # always does (any grid relabelled), so keep it and clear the others.
        first = set(b * size + c for b in range(n) for c in range(n))
        flat = [v if i in first else 0 for i, v in enumerate(flat)]
        search = search_flat(flat, n, max_solutions=1, order=order, locked=False)
    assert search.solution is not None
    return search.solution.reshape(size, size)


def random_solution(rng: np.random.Generator, size: int = 9) -> np.ndarray:
    """A random complete grid ``int8 [S, S]`` (deterministic given ``rng``)."""
    return _complete(*_draw_solution(rng, size), size)


def _try_blank(flat: np.ndarray, cell: int, n: int) -> bool:
    """Blank ``cell`` if the puzzle stays uniquely solvable; returns whether it did.

    One search: is there a solution with another digit at ``cell``? A search that
    runs out of budget counts as "maybe", so the cell is kept.
    """
    value = int(flat[cell])
    flat[cell] = 0
    other = search_flat(flat, n, max_solutions=1, exclude=(cell, value))
    if other.count or other.status != STATUS_DONE:
        flat[cell] = value
        return False
    return True


def _guesses(flat: np.ndarray, n: int) -> int:
    return search_flat(flat, n, max_solutions=2).guesses


def _draw_attempt(rng: np.random.Generator, size: int, min_blanks: int, max_blanks: int) -> Draw:
    """All random numbers one attempt uses, in the order the sequential generator drew them."""
    boxes, digit_order = _draw_solution(rng, size)
    target = int(rng.integers(min_blanks, max_blanks + 1))
    cell_order = rng.permutation(size * size).tolist()
    return boxes, digit_order, target, cell_order


def _run_attempt(
    draw: Draw, size: int, min_blanks: int, max_blanks: int, min_guesses: int
) -> Optional[tuple[np.ndarray, np.ndarray, int]]:
    """One attempt: ``(puzzle, solution, guesses)`` or None if the targets were not met."""
    n = box_size(size)
    boxes, digit_order, target, order = draw
    solution = _complete(boxes, digit_order, size)
    flat = solution.reshape(-1).copy()
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
    return flat.reshape(size, size), solution, guesses


def _run_attempt_star(args: tuple) -> Optional[tuple[np.ndarray, np.ndarray, int]]:
    return _run_attempt(*args)


def _attempts(
    rng: np.random.Generator, size: int, min_blanks: int, max_blanks: int, min_guesses: int, workers: int,
) -> Iterator[Optional[tuple[np.ndarray, np.ndarray, int]]]:
    """Attempt outcomes in draw order; with ``workers > 1`` computed ahead in a process pool."""
    if workers <= 1:
        while True:
            yield _run_attempt(_draw_attempt(rng, size, min_blanks, max_blanks), size, min_blanks, max_blanks,
                               min_guesses)
    def batch() -> list[tuple]:
        return [(_draw_attempt(rng, size, min_blanks, max_blanks), size, min_blanks, max_blanks, min_guesses)
                for _ in range(256 * workers)]

    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
    try:
        pending = pool.map(_run_attempt_star, batch(), chunksize=64)
        while True:  # keep the next batch queued while this one is consumed
            queued = pool.map(_run_attempt_star, batch(), chunksize=64)
            yield from pending
            pending = queued
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


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
    workers: int = 1,
) -> list[PuzzleRecord]:
    """Generate ``n_puzzles`` uniquely-solvable puzzles, deterministic from ``seed``.

    Each has between ``min_blanks`` and ``max_blanks`` blanks (defaults per size:
    9x9 -> 40..50) and at least ``min_guesses`` solver guesses; ``rating`` holds the
    guess count. ``distinct`` drops repeated puzzles. Raises ``ValueError`` when one
    puzzle needs more than ``max_attempts`` fresh grids (targets too hard).
    ``workers`` processes share the work (0 = one per CPU); the output does not
    depend on it.
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
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    workers = workers or os.cpu_count() or 1
    if n_puzzles < 32 * workers:
        workers = 1  # starting the pool would cost more than it saves
    rng = np.random.default_rng(seed)
    records: list[PuzzleRecord] = []
    seen: set[str] = set()
    bar = tqdm(total=n_puzzles, desc="generate", unit="puzzle", disable=not progress)
    attempts = _attempts(rng, size, min_blanks, max_blanks, min_guesses, workers)
    while len(records) < n_puzzles:
        for _ in range(max_attempts):
            made = next(attempts)
            if made is None:
                continue
            line = grid_to_line(made[0])
            if distinct and line in seen:
                continue
            break
        else:
            bar.close()
            attempts.close()
            raise ValueError(
                f"no {size}x{size} puzzle with {min_blanks}..{max_blanks} blanks and >= {min_guesses} guesses "
                f"after {max_attempts} attempts; lower the targets"
            )
        seen.add(line)
        puzzle, solution, guesses = made
        records.append(PuzzleRecord(puzzle, solution, float(guesses), f"generated:seed={seed}:{len(records)}"))
        bar.update(1)
    bar.close()
    attempts.close()
    return records
