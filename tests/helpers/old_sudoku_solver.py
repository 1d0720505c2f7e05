"""REFERENCE ONLY: the pure-Python solver as it was before the numba kernel (tests compare against it).

Exact Sudoku solver: bitset candidates, propagation, fewest-candidates backtracking.

Each cell holds an ``int`` bitset of its candidate digits. Placing a digit clears
it from the cell's peers (precomputed tables); propagation then runs to a fixed
point over three rules, all a few C-level integer operations per unit:

* naked single  - a cell with one candidate takes it;
* hidden single - a digit with one possible cell in a row/column/box goes there;
* locked candidates (pointing / claiming) - if, inside a box, a digit only fits
  in the cells it shares with one row (column), it is cleared from the rest of
  that row (column), and vice versa.

Then the search branches on the cell with the fewest candidates. Why bitsets and
not dancing links: in pure Python every interpreted step costs tens of
nanoseconds, a DLX node update takes several, while bitsets process a whole unit's
digits per operation. The locked-candidates rule cuts top1465's mean guesses
from ~92 to ~38 and the worst case from ~2500 to ~580; over the whole set it is
about time-neutral (more work per node, fewer nodes), so it is kept for the
steadier difficulty scale (compare ``python benchmarks/bench_solver.py`` with
and without ``--singles-only``).

Difficulty is the number of guesses: each trial value placed at a branching cell
counts as one guess; a ``backtrack`` is a guess whose subtree held no solution.
Counts cover the whole search, which with ``max_solutions=2`` continues after the
first solution to prove uniqueness. A puzzle solved by propagation alone has 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Optional, Sequence

import numpy as np

from tasks.sudoku.grid import PuzzleFormatError, box_size, check_givens, check_grid, parse_puzzle


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


class _Tables:
    """Precomputed per-size lookups: peers, units, box/line intersections."""

    def __init__(self, n: int) -> None:
        size = n * n
        self.n = n
        self.size = size
        self.cells = size * size
        self.full = (1 << size) - 1
        rows = [[r * size + c for c in range(size)] for r in range(size)]
        cols = [[r * size + c for r in range(size)] for c in range(size)]
        boxes = [
            [(br + i) * size + bc + j for i in range(n) for j in range(n)]
            for br in range(0, size, n) for bc in range(0, size, n)
        ]
        units = rows + cols + boxes
        member: list[set[int]] = [set() for _ in range(self.cells)]
        for unit in units:
            for i in unit:
                member[i].update(unit)
        self.peers = [tuple(sorted(member[i] - {i})) for i in range(self.cells)]
        # hidden singles: (getter of the unit's candidates, the unit's cells)
        self.unit_scan = [(itemgetter(*u), tuple(u)) for u in units]
        # locked candidates: for every box x line intersection (segment), getters of
        # the segment, the rest of the line and the rest of the box, and those cells
        self.intersections = []
        for box in boxes:
            for line in rows + cols:
                seg = set(box) & set(line)
                if len(seg) != n:
                    continue
                line_rest = sorted(set(line) - seg)
                box_rest = sorted(set(box) - seg)
                self.intersections.append((
                    itemgetter(*sorted(seg)), itemgetter(*line_rest), itemgetter(*box_rest),
                    tuple(line_rest), tuple(box_rest),
                ))


_TABLE_CACHE: dict[int, _Tables] = {}


def _tables(n: int) -> _Tables:
    t = _TABLE_CACHE.get(n)
    if t is None:
        t = _TABLE_CACHE[n] = _Tables(n)
    return t


class _Search:
    """Depth-first search: counters, the first solution, an optional digit trial order.

    A state is ``cand`` (candidate bitset per cell; a placed digit is a single bit)
    and ``done`` (1 where that single bit has already been cleared from the peers).
    """

    def __init__(
        self, t: _Tables, max_solutions: int, order: Optional[Sequence[int]] = None, locked: bool = True
    ) -> None:
        self.t = t
        self.locked = locked  # off = singles only: same solutions, different guess counts
        self.max_solutions = max_solutions
        self.order = list(order) if order is not None else None  # bits in trial order
        self.count = 0
        self.guesses = 0
        self.backtracks = 0
        self.solution: Optional[list[int]] = None

    def propagate(self, cand: list[int], done: list[int], stack: list[int]) -> bool:
        """Apply the three rules to a fixed point; False on a contradiction.

        ``stack`` holds cells that became single-candidate and still need their
        digit cleared from their peers.
        """
        t = self.t
        full = t.full
        peers = t.peers
        while True:
            while stack:  # naked singles
                i = stack.pop()
                if done[i]:
                    continue
                done[i] = 1
                bit = cand[i]
                for p in peers[i]:
                    m = cand[p]
                    if m & bit:
                        m ^= bit
                        if not m:
                            return False
                        cand[p] = m
                        if not m & (m - 1):
                            stack.append(p)
            for gather, cells in t.unit_scan:  # hidden singles
                once = twice = 0
                for m in gather(cand):
                    twice |= once & m
                    once |= m
                if once != full:
                    return False  # some digit has no place left in this unit
                hidden = once & ~twice
                if hidden:
                    for i in cells:
                        m = cand[i]
                        if m & hidden and m & (m - 1):
                            m &= hidden
                            if m & (m - 1):
                                return False  # two digits need this one cell
                            cand[i] = m
                            stack.append(i)
                    if stack:
                        break
            if stack:
                continue
            if not self.locked:
                return True
            changed = False
            for seg_get, line_get, box_get, line_rest, box_rest in t.intersections:  # locked candidates
                seg = line = box = 0
                for m in seg_get(cand):
                    seg |= m
                for m in line_get(cand):
                    line |= m
                for m in box_get(cand):
                    box |= m
                for drop, cells in ((seg & line & ~box, line_rest), (seg & box & ~line, box_rest)):
                    if drop:
                        changed = True
                        for p in cells:
                            m = cand[p]
                            if m & drop:
                                m &= ~drop
                                if not m:
                                    return False
                                cand[p] = m
                                if not m & (m - 1):
                                    stack.append(p)
            if not changed:
                return True

    def run(self, cand: list[int], done: list[int]) -> None:
        """Search below a propagated state until ``max_solutions`` solutions are found or the tree is exhausted."""
        best, fewest = -1, 1 << 30
        for i in range(self.t.cells):
            if not done[i]:
                k = cand[i].bit_count()
                if k < fewest:
                    best, fewest = i, k
                    if k == 2:
                        break
        if best < 0:
            self.count += 1
            if self.solution is None:
                self.solution = cand
            return
        m = cand[best]
        trials = [bit for bit in self.order if m & bit] if self.order else _bits(m)
        for bit in trials:
            self.guesses += 1
            before = self.count
            c2 = cand.copy()
            d2 = done.copy()
            c2[best] = bit
            if self.propagate(c2, d2, [best]):
                self.run(c2, d2)
            if self.count == before:
                self.backtracks += 1
            if self.count >= self.max_solutions:
                return


def _bits(m: int) -> list[int]:
    out = []
    while m:
        bit = m & -m
        out.append(bit)
        m ^= bit
    return out


def _initial(flat: Sequence[int], t: _Tables) -> tuple[list[int], list[int], list[int]]:
    """Unpropagated state ``(cand, done, stack)`` for a flat digit list (0 = blank)."""
    cand = [t.full] * t.cells
    stack = []
    for i, v in enumerate(flat):
        if v:
            cand[i] = 1 << (v - 1)
            stack.append(i)
    return cand, [0] * t.cells, stack


def _search_flat(
    flat: Sequence[int], n: int, max_solutions: int, order: Optional[Sequence[int]] = None, locked: bool = True
) -> _Search:
    """Run the search on a flat digit list (the fast path shared with the generator)."""
    t = _tables(n)
    search = _Search(t, max_solutions, order, locked)
    cand, done, stack = _initial(flat, t)
    if search.propagate(cand, done, stack):
        search.run(cand, done)
    return search


def _has_other_solution(flat: list[int], n: int, cell: int, value: int) -> bool:
    """True if some solution of ``flat`` (``cell`` blank) puts a digit other than ``value`` at ``cell``.

    The generator's uniqueness test after blanking a cell of a unique puzzle: one
    solvability search per alternative digit, each starting with that digit placed
    first, so wrong alternatives usually die within the first propagation.
    """
    t = _tables(n)
    taken = 0
    for p in t.peers[cell]:
        if flat[p]:
            taken |= 1 << (flat[p] - 1)
    for bit in _bits(t.full & ~taken & ~(1 << (value - 1))):
        flat[cell] = bit.bit_length()
        cand, done, stack = _initial(flat, t)
        stack.remove(cell)
        stack.append(cell)  # popped first
        search = _Search(t, 1, locked=False)
        if search.propagate(cand, done, stack):
            search.run(cand, done)
        flat[cell] = 0
        if search.count:
            return True
    return False


def _to_digits(vals: list[int]) -> list[int]:
    return [v.bit_length() for v in vals]


def solve(grid: np.ndarray, max_solutions: int = 2, locked_candidates: bool = True) -> SolveResult:
    """Solve an ``[S, S]`` grid (0 = blank), counting solutions up to ``max_solutions``.

    Givens that clash give ``n_solutions == 0`` (use :func:`solve_puzzle` for an
    error naming the clash). ``locked_candidates=False`` propagates singles only:
    same solutions, more guesses (a weaker-solver difficulty scale).
    """
    grid = check_grid(grid)
    if max_solutions < 1:
        raise ValueError(f"max_solutions must be >= 1, got {max_solutions}")
    size = grid.shape[0]
    n = box_size(size)
    search = _search_flat(grid.reshape(-1).tolist(), n, max_solutions, locked=locked_candidates)
    solution = None
    if search.solution is not None:
        solution = np.asarray(_to_digits(search.solution), dtype=np.int8).reshape(size, size)
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
