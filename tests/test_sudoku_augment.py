"""Sudoku symmetries: validity preserved, exact inverses, composition, reference convention."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.sudoku.grid import count_conflicts, encode_grid, is_valid_solution
from tasks.sudoku.augment import SudokuTransform, compose, cyclic_relabellings, random_transforms
from tasks.sudoku.generate import generate

seeds = st.integers(0, 2**32 - 1)


@lru_cache(maxsize=None)
def pool(size: int):
    return [(r.puzzle, r.solution) for r in generate(3, size=size, seed=7)]


def reference_style(grid: np.ndarray, t: SudokuTransform) -> np.ndarray:
    """The reference builders' recipe, written from its description: optional transpose, then
    ``new.flat[i] = old.flat[row_perm[i // S] * S + col_perm[i % S]]``, then the digit map."""
    s = grid.shape[0]
    x = grid.T if t.transpose else grid
    mapping = np.array([t.row_perm[i // s] * s + t.col_perm[i % s] for i in range(s * s)])
    moved = x.reshape(-1)[mapping].reshape(s, s)
    return np.concatenate([[0], np.array(t.digit_perm)])[moved]


@settings(max_examples=40, deadline=None)
@given(seeds, st.sampled_from([4, 9]), st.integers(0, 2))
def test_apply_keeps_pairs_valid_and_inverse_restores(seed, size, which):
    puzzle, solution = pool(size)[which]
    t = SudokuTransform.random(np.random.default_rng(seed), size)
    p2, s2 = t.apply(puzzle), t.apply(solution)
    assert is_valid_solution(s2, p2)
    assert int((p2 == 0).sum()) == int((puzzle == 0).sum())
    assert p2.dtype == puzzle.dtype
    assert np.array_equal(t.apply_inverse(p2), puzzle)
    assert np.array_equal(t.apply_inverse(s2), solution)
    assert np.array_equal(t.invert().apply(s2), solution)
    assert np.array_equal(reference_style(solution, t), s2)


@settings(max_examples=40, deadline=None)
@given(seeds, st.sampled_from([4, 9]))
def test_compose_and_invert_algebra(seed, size):
    rng = np.random.default_rng(seed)
    a, b, c = (SudokuTransform.random(rng, size) for _ in range(3))
    grid = rng.integers(0, size + 1, size=(size, size)).astype(np.int8)  # any grid, not only Sudokus
    assert np.array_equal(a.compose(b).apply(grid), b.apply(a.apply(grid)))
    assert np.array_equal(compose(a, b, c).apply(grid), c.apply(b.apply(a.apply(grid))))
    assert a.compose(a.invert()) == SudokuTransform.identity(size)
    assert a.invert().compose(a) == SudokuTransform.identity(size)
    assert a.invert().invert() == a
    assert a.compose(b).invert() == b.invert().compose(a.invert())
    # conflicts are invariant: the map permutes units and relabels digits
    assert count_conflicts(a.apply(grid)) == count_conflicts(grid)


@settings(max_examples=25, deadline=None)
@given(seeds)
def test_batches_and_tokens(seed):
    rng = np.random.default_rng(seed)
    t = SudokuTransform.random(rng, 9)
    batch = np.stack([p for p, _ in pool(9)])
    out = t.apply(batch)
    for k in range(len(batch)):
        assert np.array_equal(out[k], t.apply(batch[k]))
    tokens = encode_grid(batch)
    tokens[:, :2] = 0  # pads stay pads
    moved = t.apply_tokens(tokens)
    assert moved.dtype == np.uint8
    assert (moved == 0).sum() == 2 * len(batch)
    assert np.array_equal(t.apply_inverse_tokens(moved), tokens)
    assert np.array_equal(t.apply_tokens(encode_grid(batch)), encode_grid(out))


def test_cyclic_relabellings():
    shifts = cyclic_relabellings(9)
    assert len(shifts) == 9 and shifts[0] == SudokuTransform.identity(9)
    puzzle, solution = pool(9)[0]
    images = {shift.apply(solution).tobytes() for shift in shifts}
    assert len(images) == 9
    s3 = SudokuTransform.cyclic_shift(3, 9)
    assert s3.digit_perm[0] == 4 and s3.digit_perm[8] == 3  # 1 -> 4, 9 -> 3
    out = s3.apply(puzzle)
    mask = puzzle != 0
    assert np.array_equal(out[mask], (puzzle[mask] - 1 + 3) % 9 + 1)
    assert (out[~mask] == 0).all()
    assert is_valid_solution(s3.apply(solution), out)
    assert np.array_equal(s3.apply_inverse(out), puzzle)


def test_from_perms_validation_and_dict_round_trip():
    t = random_transforms(np.random.default_rng(0), 1, 9)[0]
    assert SudokuTransform.from_dict(t.to_dict()) == t
    with pytest.raises(ValueError, match="splits a band"):
        SudokuTransform.from_perms([0, 1, 3, 2, 4, 5, 6, 7, 8], list(range(9)), list(range(1, 10)))
    with pytest.raises(ValueError, match="digit_perm must be a permutation"):
        SudokuTransform.from_perms(list(range(9)), list(range(9)), [1] * 9)
    with pytest.raises(ValueError, match="lacks key 'row_perm'"):
        SudokuTransform.from_dict({"col_perm": []})
    with pytest.raises(ValueError, match=r"shape \[\.\.\., 9, 9\]"):
        t.apply(np.zeros((4, 4), dtype=np.int8))
    with pytest.raises(ValueError, match="cannot compose"):
        t.compose(SudokuTransform.identity(4))


def test_random_is_seeded_and_covers_transpose():
    a = [SudokuTransform.random(np.random.default_rng(s), 9) for s in range(40)]
    b = [SudokuTransform.random(np.random.default_rng(s), 9) for s in range(40)]
    assert a == b
    assert {t.transpose for t in a} == {True, False}
    assert len({t for t in a}) == 40
