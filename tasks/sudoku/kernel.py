"""Numba kernels of the Sudoku solver: propagation and depth-first search on bitsets.

A state is ``cand`` (int32 candidate bitset per cell; a placed digit is a single
bit) and ``done`` (1 where that single bit has been cleared from the peers).
Propagation applies naked singles, hidden singles and (optionally) locked
candidates to a fixed point. All three rules only remove candidates that no
solution can use, so the fixed point (or the contradiction) does not depend on
the order they are applied in; the kernels exploit that freedom for speed while
the search visits exactly the tree described in :mod:`tasks.sudoku.solver`.

The search is iterative (an explicit stack of states, one per depth) and stops
after ``node_limit`` guesses with :data:`STATUS_LIMIT`.

Compiled with ``cache=True``: the first import in a fresh environment compiles
(a few seconds), later processes load the cached machine code.
"""

from __future__ import annotations

import numpy as np
from numba import njit

STATUS_DONE = 0  # the search settled the question (up to max_solutions solutions)
STATUS_LIMIT = 1  # the guess budget ran out first


class Tables:
    """Index arrays for one grid size ``S = n*n``: peers, units, box/line intersections."""

    def __init__(self, n: int) -> None:
        size = n * n
        self.n, self.size, self.cells = n, size, size * size
        self.full = (1 << size) - 1
        rows = [[r * size + c for c in range(size)] for r in range(size)]
        cols = [[r * size + c for r in range(size)] for c in range(size)]
        boxes = [
            [(br + i) * size + bc + j for i in range(n) for j in range(n)]
            for br in range(0, size, n) for bc in range(0, size, n)
        ]
        unit_list = rows + cols + boxes
        member: list[set[int]] = [set() for _ in range(self.cells)]
        for unit in unit_list:
            for i in unit:
                member[i].update(unit)
        self.peers = np.array([sorted(member[i] - {i}) for i in range(self.cells)], dtype=np.int32)
        self.units = np.array(unit_list, dtype=np.int32)
        # box x line intersections ("segments", n cells each), with the segments making
        # up the rest of their line and the rest of their box (same orientation)
        segs, seg_line, seg_box = [], [], []
        for b, box in enumerate(boxes):
            for li, line in enumerate(rows + cols):
                seg = set(box) & set(line)
                if len(seg) == n:
                    segs.append(sorted(seg))
                    seg_line.append(li)
                    seg_box.append((b, li >= size))
        line_others = [[j for j in range(len(segs)) if seg_line[j] == seg_line[k] and j != k] for k in range(len(segs))]
        box_others = [[j for j in range(len(segs)) if seg_box[j] == seg_box[k] and j != k] for k in range(len(segs))]
        self.segs = np.array(segs, dtype=np.int32)
        self.line_others = np.array(line_others, dtype=np.int32)
        self.box_others = np.array(box_others, dtype=np.int32)
        self.ascending = np.array([1 << d for d in range(size)], dtype=np.int32)


_TABLES: dict[int, Tables] = {}


def tables(n: int) -> Tables:
    """Cached :class:`Tables` for box side ``n``."""
    t = _TABLES.get(n)
    if t is None:
        t = _TABLES[n] = Tables(n)
    return t


@njit(cache=True, inline="always")
def _popcount(m):
    m = m - ((m >> 1) & 0x55555555)
    m = (m & 0x33333333) + ((m >> 2) & 0x33333333)
    m = (m + (m >> 4)) & 0x0F0F0F0F
    return ((m * 0x01010101) & 0xFFFFFFFF) >> 24


@njit(cache=True)
def propagate(cand, done, stack, sp, peers, units, segs, line_others, box_others, full, locked, seg_or):
    """Run the rules to a fixed point; False on a contradiction.

    ``stack[:sp]`` holds cells that became single and still need their digit
    cleared from their peers; ``seg_or`` is scratch space (one int per segment).
    """
    n_units, size = units.shape
    n_peers = peers.shape[1]
    n_seg, seg_len = segs.shape
    n_others = line_others.shape[1]
    while True:
        while sp > 0:  # naked singles
            sp -= 1
            i = stack[sp]
            if done[i]:
                continue
            done[i] = 1
            bit = cand[i]
            for k in range(n_peers):
                p = peers[i, k]
                m = cand[p]
                if m & bit:
                    m ^= bit
                    if m == 0:
                        return False
                    cand[p] = m
                    if m & (m - 1) == 0:
                        stack[sp] = p
                        sp += 1
        for u in range(n_units):  # hidden singles
            once = 0
            twice = 0
            for j in range(size):
                m = cand[units[u, j]]
                twice |= once & m
                once |= m
            if once != full:
                return False  # some digit has no place left in this unit
            hidden = once & ~twice
            if hidden:
                for j in range(size):
                    i = units[u, j]
                    m = cand[i]
                    if m & hidden and m & (m - 1):
                        m &= hidden
                        if m & (m - 1):
                            return False  # two digits need this one cell
                        cand[i] = m
                        stack[sp] = i
                        sp += 1
                if sp > 0:
                    break  # clear the new singles first (measured faster than scanning on)
        if sp > 0:
            continue
        if not locked:
            return True
        changed = False
        for k in range(n_seg):  # segment unions
            seg = 0
            for j in range(seg_len):
                seg |= cand[segs[k, j]]
            seg_or[k] = seg
        for k in range(n_seg):  # locked candidates (pointing / claiming)
            line = 0
            box = 0
            for j in range(n_others):
                line |= seg_or[line_others[k, j]]
                box |= seg_or[box_others[k, j]]
            seg = seg_or[k]
            for side in range(2):
                if side == 0:
                    drop = seg & line & ~box
                else:
                    drop = seg & box & ~line
                if drop == 0:
                    continue
                changed = True
                for j in range(n_others):
                    other = line_others[k, j] if side == 0 else box_others[k, j]
                    for q in range(seg_len):
                        p = segs[other, q]
                        m = cand[p]
                        if m & drop:
                            m &= ~drop
                            if m == 0:
                                return False
                            cand[p] = m
                            if m & (m - 1) == 0:
                                stack[sp] = p
                                sp += 1
                    seg_or[other] &= ~drop
        if not changed:
            return True


@njit(cache=True)
def units_matchable(cand, units, work):
    """False if some unit's cells cannot take distinct digits (a Hall violation).

    Per unit, Kuhn's augmenting paths match every open cell to a distinct
    candidate digit (placed digits are already cleared from their peers). This only detects dead states (it removes no candidate); the search
    uses it in its fallback mode to prune subtrees without solutions.
    ``work`` is scratch space: ``int32 [4, S]``.
    """
    n_units, size = units.shape
    match = work[0]  # digit -> matched position in the unit, -1 if free
    st_pos = work[1]
    st_rem = work[2]
    st_digit = work[3]
    for u in range(n_units):
        for d in range(size):
            match[d] = -1
        for start in range(size):
            if cand[units[u, start]] & (cand[units[u, start]] - 1) == 0:
                continue  # placed: propagation already removed its digit from the open cells
            visited = 0
            depth = 0
            st_pos[0] = start
            st_rem[0] = cand[units[u, start]]
            found = False
            while depth >= 0:
                rem = st_rem[depth] & ~visited
                if rem == 0:
                    depth -= 1
                    continue
                bit = rem & -rem
                visited |= bit
                st_rem[depth] = rem ^ bit
                d = 0
                while (bit >> d) != 1:
                    d += 1
                st_digit[depth] = d
                if match[d] < 0:
                    for k in range(depth + 1):
                        match[st_digit[k]] = st_pos[k]
                    found = True
                    break
                depth += 1
                st_pos[depth] = match[d]
                st_rem[depth] = cand[units[u, match[d]]]
            if not found:
                return False
    return True


@njit(cache=True)
def search(cand0, peers, units, segs, line_others, box_others, full, locked, order, max_solutions, node_limit, solution,
           hall):
    """Depth-first search from the unpropagated state ``cand0``.

    Branches on the first open cell with the fewest candidates, trying its digits
    in ``order`` (bits). Returns ``(status, count, guesses, backtracks)``; the
    first solution found is written to ``solution`` (bitsets). ``count`` stops at
    ``max_solutions``; ``node_limit`` caps the guesses (``STATUS_LIMIT``).
    ``hall`` adds :func:`units_matchable` after every propagation: it prunes only
    subtrees without solutions, so solutions come in the same order, but the
    guess counts shrink (the fallback for grids the plain search cannot settle).
    """
    cells = cand0.shape[0]
    cand = np.empty((cells + 1, cells), dtype=np.int32)
    done = np.zeros((cells + 1, cells), dtype=np.uint8)
    stack = np.empty(2 * cells + 1, dtype=np.int32)
    branch_cell = np.empty(cells + 1, dtype=np.int32)
    remaining = np.empty(cells + 1, dtype=np.int32)
    before = np.empty(cells + 1, dtype=np.int64)
    seg_or = np.empty(segs.shape[0], dtype=np.int32)
    work = np.empty((4, units.shape[1]), dtype=np.int32)
    n_order = order.shape[0]
    count = 0
    guesses = 0
    backtracks = 0
    sp = 0
    for i in range(cells):
        cand[0, i] = cand0[i]
        m = cand0[i]
        if m == 0:
            return STATUS_DONE, 0, 0, 0
        if m & (m - 1) == 0:
            stack[sp] = i
            sp += 1
    if not propagate(cand[0], done[0], stack, sp, peers, units, segs, line_others, box_others, full, locked, seg_or):
        return STATUS_DONE, 0, 0, 0
    if hall and not units_matchable(cand[0], units, work):
        return STATUS_DONE, 0, 0, 0
    level = 0
    enter = True
    while level >= 0:
        if enter:
            best = -1
            fewest = 1 << 30
            for i in range(cells):
                if done[level, i] == 0:
                    k = _popcount(cand[level, i])
                    if k < fewest:
                        best = i
                        fewest = k
                        if k == 2:
                            break
            if best < 0:  # a solution
                if count == 0:
                    for i in range(cells):
                        solution[i] = cand[level, i]
                count += 1
                if count >= max_solutions:
                    return STATUS_DONE, count, guesses, backtracks
                level -= 1  # back to the parent's next trial
                if level >= 0 and count == before[level]:
                    backtracks += 1
                enter = False
                continue
            branch_cell[level] = best
            remaining[level] = cand[level, best]
        # next trial at this level
        m = remaining[level]
        if m == 0:
            level -= 1
            if level >= 0 and count == before[level]:
                backtracks += 1
            enter = False
            continue
        bit = 0
        for k in range(n_order):
            if m & order[k]:
                bit = order[k]
                break
        remaining[level] = m ^ bit
        if guesses >= node_limit:
            return STATUS_LIMIT, count, guesses, backtracks
        guesses += 1
        before[level] = count
        nxt = level + 1
        for i in range(cells):
            cand[nxt, i] = cand[level, i]
            done[nxt, i] = done[level, i]
        best = branch_cell[level]
        cand[nxt, best] = bit
        stack[0] = best
        if propagate(cand[nxt], done[nxt], stack, 1, peers, units, segs, line_others, box_others, full, locked,
                     seg_or) and (not hall or units_matchable(cand[nxt], units, work)):
            level = nxt
            enter = True
        else:
            backtracks += 1  # the trial failed at once
            enter = False
    return STATUS_DONE, count, guesses, backtracks


@njit(cache=True)
def solve_digits(digits, exclude_cell, exclude_digit, peers, units, segs, line_others, box_others, full, locked,
                 order, max_solutions, node_limit, out, hall):
    """:func:`search` on a flat digit array (0 = blank); the first solution goes to ``out`` as digits.

    ``exclude_cell >= 0`` removes digit ``exclude_digit`` from that (blank) cell's
    candidates: "is there a solution with another digit here?".
    """
    cells = digits.shape[0]
    cand0 = np.empty(cells, dtype=np.int32)
    for i in range(cells):
        d = digits[i]
        cand0[i] = full if d == 0 else 1 << (d - 1)
    if exclude_cell >= 0:
        cand0[exclude_cell] &= ~(1 << (exclude_digit - 1))
    bits = np.zeros(cells, dtype=np.int32)
    status, count, guesses, backtracks = search(
        cand0, peers, units, segs, line_others, box_others, full, locked, order, max_solutions, node_limit, bits, hall
    )
    if count:
        for i in range(cells):
            m = bits[i]
            d = 0
            while m:
                m >>= 1
                d += 1
            out[i] = d
    return status, count, guesses, backtracks
