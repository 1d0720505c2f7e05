"""Canonical solution grids: invariant under the symmetry group, exact (4x4 against brute force), idempotent,
minimal, and inequivalent grids kept apart."""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.sudoku.augment import SudokuTransform
from tasks.sudoku.canonical import canonical_grid, canonical_grids, canonical_keys, equivalent_mask
from tasks.sudoku.generate import generate
from tasks.sudoku.grid import PuzzleFormatError, is_valid_solution

seeds = st.integers(0, 2**32 - 1)


@lru_cache(maxsize=None)
def solutions(size: int, n: int = 12) -> np.ndarray:
    return np.stack([r.solution for r in generate(n, size=size, seed=31)])


def relabel_first_appearance(g: np.ndarray) -> np.ndarray:
    seen: dict[int, int] = {}
    for v in g.reshape(-1):
        seen.setdefault(int(v), len(seen) + 1)
    return np.vectorize(seen.get)(g)


def all_transforms(size: int):
    """Every transposition / band / row / stack / column arrangement (digits left to the relabelling)."""
    n = int(round(size ** 0.5))
    inner = list(itertools.permutations(range(n)))
    outer = list(itertools.permutations(range(n)))
    arrangements = [[o[k] * n + w[k][j] for k in range(n) for j in range(n)]
                    for o in outer for w in itertools.product(inner, repeat=n)]
    for t in (False, True):
        for rows in arrangements:
            for cols in arrangements:
                yield t, rows, cols


def brute_canonical(g: np.ndarray) -> np.ndarray:
    """Independent definition: the smallest first-appearance relabelling over every arrangement."""
    best = None
    for t, rows, cols in all_transforms(g.shape[0]):
        x = (g.T if t else g)[np.ix_(rows, cols)]
        cand = tuple(relabel_first_appearance(x).reshape(-1))
        best = cand if best is None or cand < best else best
    return np.array(best).reshape(g.shape)


def all_4x4_grids() -> list[np.ndarray]:
    out = []
    for rows in itertools.permutations(itertools.permutations(range(1, 5)), 4):
        g = np.array(rows)
        if is_valid_solution(g):
            out.append(g)
    return out


def test_4x4_matches_brute_force_and_has_two_classes():
    grids = all_4x4_grids()
    assert len(grids) == 288  # the known count of 4x4 Sudoku grids
    canon = canonical_grids(np.stack(grids))
    assert len({c.tobytes() for c in canon}) == 2  # the known number of essentially different 4x4 grids
    for g, c in zip(grids[::7], canon[::7]):
        np.testing.assert_array_equal(c, brute_canonical(g))


@settings(max_examples=30, deadline=None)
@given(seeds, st.sampled_from([4, 9]), st.integers(0, 11))
def test_invariant_under_random_group_actions(seed, size, which):
    g = solutions(size)[which]
    t = SudokuTransform.random(np.random.default_rng(seed), size)
    moved = t.apply(g)
    # (a grid with automorphisms may be fixed by a non-identity transform, so `moved == g` proves nothing)
    np.testing.assert_array_equal(canonical_grid(moved), canonical_grid(g))


@settings(max_examples=15, deadline=None)
@given(seeds, st.integers(0, 11))
def test_canonical_is_a_valid_grid_of_the_class_no_larger_than_any_image(seed, which):
    g = solutions(9)[which]
    c = canonical_grid(g)
    assert is_valid_solution(c)
    assert list(c[0]) == list(range(1, 10))
    np.testing.assert_array_equal(canonical_grid(c), c)  # idempotent
    image = relabel_first_appearance(SudokuTransform.random(np.random.default_rng(seed), 9).apply(g))
    assert tuple(c.reshape(-1)) <= tuple(image.reshape(-1))  # minimal over (sampled) images


def minirow_minicol_overlap(g: np.ndarray) -> int:
    """A group invariant computed independently: 3-sets that occur both as a mini-row and as a mini-column."""
    rows = {frozenset(g[r, 3 * s:3 * s + 3]) for r in range(9) for s in range(3)}
    cols = {frozenset(g[3 * b:3 * b + 3, c]) for c in range(9) for b in range(3)}
    return len(rows & cols)


def test_inequivalent_grids_stay_distinct():
    grids = solutions(9)
    keys = canonical_keys(grids)
    inv = [minirow_minicol_overlap(g) for g in grids]
    planted = [(i, j) for i in range(len(grids)) for j in range(i) if inv[i] != inv[j]]
    assert len(planted) >= 10  # the planted pairs: provably inequivalent (an invariant differs)
    for i, j in planted:
        assert keys[i] != keys[j]
    assert len(set(keys)) == len(grids)  # random grids are (almost surely) pairwise inequivalent


def test_equivalent_mask_finds_planted_copies():
    grids = solutions(9)
    rng = np.random.default_rng(5)
    train = np.stack([SudokuTransform.random(rng, 9).apply(grids[i]) for i in (1, 4, 7)])
    mask = equivalent_mask(grids, canonical_keys(train))
    assert list(np.flatnonzero(mask)) == [1, 4, 7]


def test_refuses_non_solutions():
    g = solutions(9)[0].copy()
    g[0, 0], g[0, 1] = g[0, 1], g[0, 0]
    with pytest.raises(PuzzleFormatError, match="not a complete valid solution"):
        canonical_grid(g)
    with pytest.raises(PuzzleFormatError, match="up to 9x9"):
        canonical_grids(np.ones((1, 16, 16), dtype=np.int64))
