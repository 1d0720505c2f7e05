"""Exact Sudoku solver: bitset candidates, propagation, fewest-candidates backtracking.

Each cell holds a bitset of its candidate digits. Placing a digit clears it from
the cell's peers; propagation then runs to a fixed point over three rules:

* naked single  - a cell with one candidate takes it;
* hidden single - a digit with one possible cell in a row/column/box goes there;
* locked candidates (pointing / claiming) - if, inside a box, a digit only fits
  in the cells it shares with one row (column), it is cleared from the rest of
  that row (column), and vice versa.

Then the search branches on the first cell with the fewest candidates, trying its
digits in ascending order. The loops run compiled (numba, :mod:`tasks.sudoku.kernel`)
for every size ``S = n*n``; the locked-candidates rule cuts top1465's mean
guesses from ~92 to ~38 (compare ``python benchmarks/bench_solver.py`` with and
without ``--singles-only``).

Difficulty is the number of guesses: each trial value placed at a branching cell
counts as one guess; a ``backtrack`` is a guess whose subtree held no solution.
Counts cover the whole search, which with ``max_solutions=2`` continues after the
first solution to prove uniqueness. A puzzle solved by propagation alone has 0.

Search budget: ``max_guesses`` (default :data:`DEFAULT_MAX_GUESSES`) bounds the
search. A grid not decided within it raises :class:`SearchLimitExceeded` (a
:class:`PuzzleFormatError`, so callers that reject bad puzzles reject it too)
instead of running for minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from tasks.sudoku import kernel
from tasks.sudoku.grid import PuzzleFormatError, box_size, check_givens, check_grid, parse_puzzle

DEFAULT_MAX_GUESSES = 100_000
"""Default guess budget of :func:`solve` per search phase (see :func:`search_flat`): about a second in all."""
PLAIN_GUESSES = 50_000
"""Guesses the plain search gets before the pruned fallback takes over (real puzzles need < 10,000)."""


class SearchLimitExceeded(PuzzleFormatError):
    """The search used its whole guess budget without settling the question.

    ``guesses`` is the budget spent and ``n_solutions`` the solutions found so far
    (fewer than asked for).
    """

    def __init__(self, guesses: int, n_solutions: int) -> None:
        super().__init__(
            f"no answer within the search budget: {guesses} guesses, {n_solutions} solution(s) found so far"
        )
        self.guesses = guesses
        self.n_solutions = n_solutions


@dataclass
class SolveResult:
    """Outcome of :func:`solve`.

    ``n_solutions`` is capped at ``max_solutions`` (with the default 2, ``2`` means
    "two or more"). ``unique`` is True/False when the search settled it and None
    when ``max_solutions=1`` stopped at the first solution.
    """

    solution: Optional[np.ndarray]
    n_solutions: int
    unique: Optional[bool]
    guesses: int
    backtracks: int


@dataclass
class _Search:
    """Raw kernel outcome: status, counters and the first solution as digits (or None)."""

    status: int
    count: int
    guesses: int
    backtracks: int
    solution: Optional[np.ndarray]


def search_flat(
    flat: "Sequence[int] | np.ndarray", n: int, max_solutions: int, order: Optional[Sequence[int]] = None,
    locked: bool = True, max_guesses: int = DEFAULT_MAX_GUESSES, exclude: tuple[int, int] = (-1, 0),
) -> _Search:
    """Run the search on a flat digit list (0 = blank; the path shared with the generator).

    ``order`` lists digit bits in trial order (default ascending); ``exclude=(cell,
    digit)`` forbids that digit at that blank cell. Two phases: the plain search
    (up to :data:`PLAIN_GUESSES` guesses), then, if that did not settle it, the
    same search pruned by a per-unit matching check (``hall`` in
    :func:`tasks.sudoku.kernel.search`) with ``max_guesses``. The pruning removes only
    subtrees without solutions, so both phases find the same solutions in the same
    order; only the guess counts of such (pathological) grids come from phase two.
    """
    t = kernel.tables(n)
    bits = t.ascending if order is None else np.asarray(order, dtype=np.int32)
    digits = np.asarray(flat, dtype=np.int8)
    out = np.empty(t.cells, dtype=np.int8)
    args = (digits, exclude[0], exclude[1], t.peers, t.units, t.segs, t.line_others, t.box_others, t.full, locked,
            bits, max_solutions)
    status, count, guesses, backtracks = kernel.solve_digits(*args, min(max_guesses, PLAIN_GUESSES), out, False)
    if status == kernel.STATUS_LIMIT and max_guesses > PLAIN_GUESSES:
        status, count, guesses, backtracks = kernel.solve_digits(*args, max_guesses, out, True)
    return _Search(status, count, guesses, backtracks, out if count else None)


def solve(
    grid: np.ndarray, max_solutions: int = 2, locked_candidates: bool = True,
    max_guesses: int = DEFAULT_MAX_GUESSES,
) -> SolveResult:
    """Solve an ``[S, S]`` grid (0 = blank), counting solutions up to ``max_solutions``.

    Givens that clash give ``n_solutions == 0`` (use :func:`solve_puzzle` for an
    error naming the clash). ``locked_candidates=False`` propagates singles only:
    same solutions, more guesses (a weaker-solver difficulty scale). Raises
    :class:`SearchLimitExceeded` when ``max_guesses`` guesses do not settle it.
    """
    grid = check_grid(grid)
    if max_solutions < 1:
        raise ValueError(f"max_solutions must be >= 1, got {max_solutions}")
    size = grid.shape[0]
    n = box_size(size)
    search = search_flat(grid.reshape(-1), n, max_solutions, locked=locked_candidates, max_guesses=max_guesses)
    if search.status == kernel.STATUS_LIMIT:
        raise SearchLimitExceeded(search.guesses, search.count)
    solution = None if search.solution is None else search.solution.reshape(size, size)
    count = min(search.count, max_solutions)
    if count == 0:
        unique: Optional[bool] = False
    elif count >= 2:
        unique = False
    else:
        unique = True if max_solutions >= 2 else None
    return SolveResult(solution, count, unique, search.guesses, search.backtracks)


def solve_puzzle(puzzle: "str | np.ndarray", size: int = 9, max_solutions: int = 2) -> SolveResult:
    """Like :func:`solve`, but parses text and raises :class:`PuzzleFormatError` for clashing givens or no solution."""
    grid = parse_puzzle(puzzle, size=size) if isinstance(puzzle, str) else check_grid(puzzle, "puzzle")
    check_givens(grid)
    result = solve(grid, max_solutions=max_solutions)
    if result.n_solutions == 0:
        raise PuzzleFormatError(
            f"puzzle has no solution (givens do not clash directly; search exhausted after {result.guesses} guesses)"
        )
    return result


def count_solutions(grid: np.ndarray, limit: int = 2) -> int:
    """Number of solutions of ``grid``, counted up to ``limit``."""
    return solve(grid, max_solutions=limit).n_solutions
