"""Solver and generator, checked against independent brute-force computations."""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import old_sudoku_solver as old
from tasks.sudoku.grid import PuzzleFormatError, grid_to_line, parse_puzzle, read_puzzle_file
from tasks.sudoku import solver
from tasks.sudoku.generate import generate, random_solution
from tasks.sudoku.solver import (
    PLAIN_GUESSES, SearchLimitExceeded, search_flat, count_solutions, solve, solve_puzzle,
)

# Known puzzles with their published solutions.
KNOWN = {
    # Arto Inkala's "world's hardest sudoku" (2012)
    "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4..":
        "812753649943682175675491283154237896369845721287169534521974368438526917796318452",
    # the Wikipedia "Sudoku" article example
    "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79":
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179",
    # first puzzle of top1465
    "4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........":
        "468931527751624839392578461134756298289413675675289314846192753513867942927345186",
}


# ---------------------------------------------------------------- independent checkers


def units(grid: np.ndarray) -> list[list[int]]:
    s = grid.shape[0]
    n = int(round(s ** 0.5))
    out = [list(grid[r]) for r in range(s)] + [list(grid[:, c]) for c in range(s)]
    out += [list(grid[r:r + n, c:c + n].reshape(-1)) for r in range(0, s, n) for c in range(0, s, n)]
    return out


def check_solution(solution: np.ndarray, puzzle: np.ndarray) -> None:
    """Every unit is exactly {1..S} and the givens are kept (set-based, no shared code)."""
    s = puzzle.shape[0]
    assert solution.shape == puzzle.shape
    for unit in units(solution):
        assert sorted(int(x) for x in unit) == list(range(1, s + 1))
    mask = puzzle != 0
    assert (solution[mask] == puzzle[mask]).all()


def naive_count(grid: np.ndarray, limit: int = 2) -> int:
    """Plain backtracking with set-based candidates and no propagation; counts up to ``limit``."""
    g = grid.astype(int).copy()
    s = g.shape[0]
    n = int(round(s ** 0.5))

    def candidates(r: int, c: int) -> set[int]:
        used = set(g[r]) | set(g[:, c]) | set(g[r // n * n:r // n * n + n, c // n * n:c // n * n + n].reshape(-1))
        return set(range(1, s + 1)) - used

    def rec() -> int:
        empties = [(r, c) for r in range(s) for c in range(s) if g[r, c] == 0]
        if not empties:
            return 1
        r, c = min(empties, key=lambda rc: len(candidates(*rc)))
        total = 0
        for d in sorted(candidates(r, c)):
            g[r, c] = d
            total += rec()
            g[r, c] = 0
            if total >= limit:
                break
        return total

    return rec()


@lru_cache(maxsize=1)
def all_4x4_grids() -> list[np.ndarray]:
    """Every valid 4x4 Sudoku grid, by enumerating rows as permutations (there are 288)."""
    perms = list(itertools.permutations(range(1, 5)))
    grids = []

    def ok(rows):
        g = np.array(rows)
        k = len(rows)
        if any(len(set(g[:, c])) != k for c in range(4)):
            return False
        for br in range(0, k - k % 2, 2):
            for bc in (0, 2):
                if len(set(g[br:br + 2, bc:bc + 2].reshape(-1))) != 4:
                    return False
        return True

    def rec(rows):
        if len(rows) == 4:
            grids.append(np.array(rows, dtype=np.int8))
            return
        for p in perms:
            if ok(rows + [p]):
                rec(rows + [p])

    rec([])
    return grids


def brute_count_4x4(puzzle: np.ndarray) -> int:
    mask = puzzle != 0
    return sum(bool((g[mask] == puzzle[mask]).all()) for g in all_4x4_grids())


# ---------------------------------------------------------------- solver


def test_all_4x4_grids_count():
    assert len(all_4x4_grids()) == 288  # the known number of 4x4 Sudoku grids


@pytest.mark.parametrize("puzzle,answer", KNOWN.items())
def test_known_puzzles(puzzle, answer):
    grid = parse_puzzle(puzzle)
    result = solve(grid)
    assert result.n_solutions == 1 and result.unique is True
    assert grid_to_line(result.solution) == answer
    check_solution(result.solution, grid)
    singles = solve(grid, locked_candidates=False)  # weaker propagation, same answer
    assert singles.unique is True and grid_to_line(singles.solution) == answer


def test_hard_puzzle_needs_guesses_easy_one_does_not():
    inkala = solve(parse_puzzle(next(iter(KNOWN))))
    wiki = solve(parse_puzzle(list(KNOWN)[1]))
    assert wiki.guesses == 0 and wiki.backtracks == 0
    assert inkala.guesses > 0 and 0 < inkala.backtracks < inkala.guesses


def test_two_solutions_from_unavoidable_rectangle():
    solution = parse_puzzle(KNOWN[list(KNOWN)[1]])
    found = None
    for r1, r2 in itertools.combinations(range(9), 2):
        for c1, c2 in itertools.combinations(range(9), 2):
            same_band, same_stack = r1 // 3 == r2 // 3, c1 // 3 == c2 // 3
            if same_band == same_stack:
                continue  # the four cells must lie in exactly two boxes
            if solution[r1, c1] == solution[r2, c2] and solution[r1, c2] == solution[r2, c1]:
                found = (r1, r2, c1, c2)
                break
        if found:
            break
    assert found is not None
    r1, r2, c1, c2 = found
    puzzle = solution.copy()
    puzzle[[r1, r1, r2, r2], [c1, c2, c1, c2]] = 0
    result = solve(puzzle)
    assert result.n_solutions == 2 and result.unique is False
    check_solution(result.solution, puzzle)
    assert count_solutions(puzzle, limit=10) == 2  # exactly two, not more
    assert naive_count(puzzle, limit=10) == 2


def test_no_solution_and_clashing_givens():
    no_place = parse_puzzle("12345678." + "........9" + "." * 63)  # r1c9 has no candidate left
    result = solve(no_place)
    assert result.n_solutions == 0 and result.solution is None and result.unique is False
    with pytest.raises(PuzzleFormatError, match="puzzle has no solution"):
        solve_puzzle(no_place)
    with pytest.raises(PuzzleFormatError, match="r1c1 and r1c2 are both 1 in the same row"):
        solve_puzzle("11" + "." * 79)
    clash = np.zeros((9, 9), dtype=np.int8)
    clash[0, 0] = clash[8, 0] = 3
    assert solve(clash).n_solutions == 0
    with pytest.raises(PuzzleFormatError, match="r1c1 and r9c1 are both 3 in the same column"):
        solve_puzzle(clash)


def test_max_solutions_one_and_empty_grid():
    empty = np.zeros((9, 9), dtype=np.int8)
    many = solve(empty)
    assert many.n_solutions == 2 and many.unique is False
    check_solution(many.solution, empty)
    first = solve(empty, max_solutions=1)
    assert first.n_solutions == 1 and first.unique is None
    with pytest.raises(ValueError, match="max_solutions"):
        solve(empty, max_solutions=0)
    with pytest.raises(PuzzleFormatError, match="values must be in 0..9"):
        solve(np.full((9, 9), 12))
    with pytest.raises(PuzzleFormatError, match="grid size"):
        solve(np.zeros((6, 6), dtype=np.int8))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 287), st.lists(st.booleans(), min_size=16, max_size=16))
def test_4x4_solution_counts_match_enumeration(grid_index, keep):
    puzzle = all_4x4_grids()[grid_index].copy()
    puzzle[~np.array(keep).reshape(4, 4)] = 0
    expected = brute_count_4x4(puzzle)
    result = solve(puzzle)
    assert result.n_solutions == min(expected, 2)
    check_solution(result.solution, puzzle)
    assert solve(puzzle, locked_candidates=False).n_solutions == min(expected, 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=16, max_size=16))
def test_4x4_random_givens_including_unsolvable(cells):
    puzzle = np.array(cells, dtype=np.int8).reshape(4, 4)
    result = solve(puzzle)
    assert result.n_solutions == min(brute_count_4x4(puzzle), 2)
    if result.n_solutions:
        check_solution(result.solution, puzzle)


def test_top1465_first_50(shared_dir):
    records = read_puzzle_file(shared_dir / "data" / "sudoku" / "top1465.sdm", limit=50)
    assert len(records) == 50
    guesses = []
    for rec in records:
        result = solve(rec.puzzle)
        assert result.unique is True
        check_solution(result.solution, rec.puzzle)
        guesses.append(result.guesses)
    first = list(KNOWN)[2]
    assert grid_to_line(records[0].puzzle) == first
    assert max(guesses) > 0  # these are hard: at least one needs search


# ---------------------------------------------------------------- same answers as the old pure-Python solver

# Peter Norvig's "impossible" puzzle: no clash among the givens, no solution. The
# plain search needs 4.6 million guesses to exhaust it; the matching fallback none.
NORVIG_IMPOSSIBLE = ".....5.8....6.1.43..........1.5........1.6...3.......553.....61........4........."


def assert_same_as_old(grid: np.ndarray, locked: bool = True) -> None:
    new, ref = solve(grid, locked_candidates=locked), old.solve(grid, locked_candidates=locked)
    assert (new.n_solutions, new.unique, new.guesses, new.backtracks) == (
        ref.n_solutions, ref.unique, ref.guesses, ref.backtracks)
    assert (new.solution is None) == (ref.solution is None)
    if ref.solution is not None:
        assert new.solution.dtype == np.int8 and np.array_equal(new.solution, ref.solution)


def collection_sample(path, k: int) -> list[np.ndarray]:
    """Every puzzle of a small collection, else ``k`` of them at fixed random positions."""
    records = read_puzzle_file(path)
    if len(records) > k:
        picks = np.random.default_rng(0).choice(len(records), size=k, replace=False)
        records = [records[i] for i in sorted(picks)]
    return [r.puzzle for r in records]


def shared_collections(shared_dir):
    files = sorted((shared_dir / "data" / "sudoku").glob("*.sdm"))
    assert files, "no .sdm collections in ../shared/data/sudoku"
    return files


def test_same_answers_as_old_solver_on_every_collection_sample(shared_dir):
    """Solutions, counts, guesses and backtracks equal the old solver's (a sample of each file; all of them in the slow test)."""
    for path in shared_collections(shared_dir):
        for grid in collection_sample(path, 300 if path.name != "top1465.sdm" else 100):
            assert_same_as_old(grid)


@pytest.mark.slow
def test_same_answers_as_old_solver_on_every_collection_in_full(shared_dir):
    """All 64,616 puzzles (about a minute, nearly all of it the old solver), singles-only on a sample."""
    for path in shared_collections(shared_dir):
        for grid in collection_sample(path, 10 ** 9):
            assert_same_as_old(grid)
        for grid in collection_sample(path, 500):
            assert_same_as_old(grid, locked=False)


def test_same_answers_as_old_solver_on_4x4_and_16x16():
    rng = np.random.default_rng(1)
    for _ in range(200):
        puzzle = all_4x4_grids()[int(rng.integers(288))].copy()
        puzzle[rng.random((4, 4)) < rng.random()] = 0
        assert_same_as_old(puzzle)
        assert_same_as_old(puzzle, locked=False)
    for rec in generate(3, size=16, seed=2):
        assert_same_as_old(rec.puzzle)


def test_random_4x4_grids_against_enumeration():
    """Random givens (half of them unsolvable): the count and the solution agree with brute force."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        puzzle = rng.integers(0, 5, size=(4, 4)).astype(np.int8)
        puzzle[rng.random((4, 4)) < 0.6] = 0
        mask = puzzle != 0
        completions = [g for g in all_4x4_grids() if (g[mask] == puzzle[mask]).all()]
        result = solve(puzzle, max_solutions=300)
        assert result.n_solutions == len(completions)
        if completions:
            assert any(np.array_equal(result.solution, g) for g in completions)
            check_solution(result.solution, puzzle)
        else:
            assert result.solution is None and result.unique is False
        if len(completions) == 1:
            assert result.unique and np.array_equal(result.solution, completions[0])


def test_unsolvable_valid_looking_grid_is_decided():
    grid = parse_puzzle(NORVIG_IMPOSSIBLE)
    result = solve(grid)
    assert result.n_solutions == 0 and result.solution is None and result.unique is False
    with pytest.raises(PuzzleFormatError, match="puzzle has no solution"):
        solve_puzzle(NORVIG_IMPOSSIBLE)
    plain = search_flat(grid.reshape(-1), 3, 2, max_guesses=PLAIN_GUESSES)  # no fallback within this budget
    assert plain.status == 1 and plain.count == 0 and plain.guesses == PLAIN_GUESSES


def test_search_budget_raises_a_clear_error():
    inkala = parse_puzzle(next(iter(KNOWN)))
    with pytest.raises(SearchLimitExceeded, match="no answer within the search budget: 5 guesses") as info:
        solve(inkala, max_guesses=5)
    assert isinstance(info.value, PuzzleFormatError) and info.value.guesses == 5 and info.value.n_solutions == 0
    assert solve(inkala, max_guesses=106).unique is True  # exactly the guesses it needs


def test_fallback_finds_the_same_solutions_as_the_plain_search(monkeypatch):
    """With a tiny plain budget the pruned fallback decides; solutions and their order do not change."""
    grids = [".9.........7...6......6...4.6....15........2..51..........8........53.......4...6",  # 2 solutions
             "86........2165.........8.......27.867....1.........7..2..1....8.8.......6.....4..",  # none
             next(iter(KNOWN))]
    for line in grids:
        flat = parse_puzzle(line).reshape(-1)
        plain = search_flat(flat, 3, 2, max_guesses=10 ** 7)
        monkeypatch.setattr(solver, "PLAIN_GUESSES", 3)
        pruned = search_flat(flat, 3, 2, max_guesses=10 ** 6)
        monkeypatch.undo()
        assert pruned.status == plain.status == 0 and pruned.count == plain.count
        assert pruned.guesses <= plain.guesses
        assert (pruned.solution is None) == (plain.solution is None)
        if plain.solution is not None:
            assert np.array_equal(pruned.solution, plain.solution)


# ---------------------------------------------------------------- generator


def test_random_solution_is_valid_and_seeded():
    for size in (4, 9):
        a = random_solution(np.random.default_rng(5), size)
        check_solution(a, np.zeros_like(a))
        assert np.array_equal(a, random_solution(np.random.default_rng(5), size))
    assert not np.array_equal(random_solution(np.random.default_rng(1)), random_solution(np.random.default_rng(2)))


def test_generate_9x9_unique_blanks_and_deterministic():
    records = generate(6, size=9, min_blanks=42, max_blanks=48, seed=11)
    assert len(records) == 6
    for rec in records:
        blanks = int((rec.puzzle == 0).sum())
        assert 42 <= blanks <= 48
        check_solution(rec.solution, rec.puzzle)
        assert naive_count(rec.puzzle) == 1
        assert rec.rating == solve(rec.puzzle).guesses
    again = generate(6, size=9, min_blanks=42, max_blanks=48, seed=11)
    assert [grid_to_line(r.puzzle) for r in again] == [grid_to_line(r.puzzle) for r in records]
    other = generate(6, size=9, min_blanks=42, max_blanks=48, seed=12)
    assert [grid_to_line(r.puzzle) for r in other] != [grid_to_line(r.puzzle) for r in records]


def test_generate_4x4_unique_by_enumeration():
    records = generate(25, size=4, min_blanks=8, max_blanks=11, seed=3)
    lines = [grid_to_line(r.puzzle) for r in records]
    assert len(set(lines)) == 25  # distinct
    for rec in records:
        assert 8 <= int((rec.puzzle == 0).sum()) <= 11
        assert brute_count_4x4(rec.puzzle) == 1


def test_generate_min_guesses():
    records = generate(2, size=9, min_blanks=50, max_blanks=55, min_guesses=2, seed=4)
    for rec in records:
        result = solve(rec.puzzle)
        assert result.unique and result.guesses >= 2 and rec.rating == result.guesses
        assert 50 <= int((rec.puzzle == 0).sum()) <= 55


def test_generate_bad_arguments():
    with pytest.raises(ValueError, match="min_blanks <= max_blanks"):
        generate(1, min_blanks=50, max_blanks=40)
    with pytest.raises(ValueError, match="after 2 attempts"):
        generate(1, size=4, min_blanks=15, max_blanks=15, seed=0, max_attempts=2)  # 1 clue is never unique


def test_generator_output_unchanged_by_the_compiled_solver():
    """The same puzzles and ratings as the pure-Python generator gave (hash taken from it before the change)."""
    import hashlib

    recs = generate(20, seed=11) + generate(30, size=4, seed=3)
    recs += generate(3, size=9, min_blanks=50, max_blanks=55, min_guesses=2, seed=4)
    text = " ".join(f"{grid_to_line(r.puzzle)}:{int(r.rating)}" for r in recs)
    assert hashlib.sha256(text.encode()).hexdigest() == "ad7d043e438786f893bdae6e478a2bcb856625ecb12a39a44da8618d87dbcdd5"


def test_generator_process_pool_gives_the_same_puzzles():
    one = generate(64, size=4, seed=9, workers=1)
    two = generate(64, size=4, seed=9, workers=2)  # 64 = the smallest count that starts a 2-process pool
    assert [grid_to_line(r.puzzle) for r in one] == [grid_to_line(r.puzzle) for r in two]
    assert [r.rating for r in one] == [r.rating for r in two]
    with pytest.raises(ValueError, match="workers"):
        generate(1, workers=-1)
