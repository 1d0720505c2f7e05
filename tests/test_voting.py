"""Voting rules on hand-built candidate sets with known winners."""

from __future__ import annotations

import numpy as np
import pytest

from interp.guess_scaling.voting import (
    VotingError,
    augmented_hrm_aggregate,
    exact_correct,
    oracle_any_correct,
    rule_uses_label,
    solved_by_rule,
    vote_cell_majority,
    vote_confidence,
    vote_majority,
    vote_prob_average,
)

A = [2, 3, 4, 5]
B = [2, 3, 4, 4]
C = [5, 3, 4, 5]


def G(*rows):
    """One puzzle's candidates [1, K, L]."""
    return np.array([rows], dtype=np.int64)


def test_majority_plain_plurality():
    out = vote_majority(G(B, A, C, A), np.array([[0.9, 0.1, 0.9, 0.1]]))
    assert out.tolist() == [A]  # 2 votes beat higher confidence


def test_majority_tie_broken_by_mean_confidence():
    grids = G(A, B, A, B)
    assert vote_majority(grids, np.array([[0.2, 0.9, 0.3, 0.8]])).tolist() == [B]
    assert vote_majority(grids, np.array([[0.9, 0.2, 0.8, 0.3]])).tolist() == [A]
    # full tie -> earlier first appearance
    assert vote_majority(grids, np.array([[0.5, 0.5, 0.5, 0.5]])).tolist() == [A]
    assert vote_majority(G(B, A, A, B), None).tolist() == [B]


def test_confidence_rule_sums_confidence():
    # A: 2 votes, total 0.4; B: 1 vote, total 0.9 -> B wins on summed confidence
    grids = G(A, A, B)
    conf = np.array([[0.2, 0.2, 0.9]])
    assert vote_confidence(grids, conf).tolist() == [B]
    assert vote_majority(grids, conf).tolist() == [A]
    # equal sums -> more votes
    assert vote_confidence(G(A, A, B), np.array([[0.3, 0.3, 0.6]])).tolist() == [A]


def test_cell_majority_differs_from_full_grid_majority():
    X = [2, 3, 4, 5]
    # X twice; three other grids, each wrong in a different cell but agreeing on cell 0
    grids = G(X, X, [6, 3, 4, 9], [6, 7, 4, 5], [6, 3, 8, 5])
    assert vote_majority(grids).tolist() == [X]
    # cell 0: 6 (3 votes) beats 2 (2 votes); other cells follow X
    assert vote_cell_majority(grids).tolist() == [[6, 3, 4, 5]]


def test_cell_majority_tie_rules():
    grids = G([2, 5], [3, 5])
    assert vote_cell_majority(grids, np.array([[0.1, 0.9]])).tolist() == [[3, 5]]
    assert vote_cell_majority(grids, np.array([[0.9, 0.1]])).tolist() == [[2, 5]]
    assert vote_cell_majority(grids, np.array([[0.5, 0.5]])).tolist() == [[2, 5]]  # lower token id
    # votes always outweigh confidence
    three = G([2, 5], [3, 5], [3, 5])
    assert vote_cell_majority(three, np.array([[1.0, 0.0, 0.0]])).tolist() == [[3, 5]]


def test_prob_average_against_manual_mean():
    rng = np.random.default_rng(0)
    p = rng.random((3, 4, 5, 6))
    p /= p.sum(-1, keepdims=True)
    assert np.array_equal(vote_prob_average(p), np.mean(p, axis=1).argmax(-1))
    # two confident-but-split candidates lose to one moderately sure consensus
    q = np.zeros((1, 3, 1, 3))
    q[0, 0, 0] = [0.0, 0.9, 0.1]
    q[0, 1, 0] = [0.0, 0.1, 0.9]
    q[0, 2, 0] = [1.0, 0.0, 0.0]
    assert vote_prob_average(q).tolist() == [[0]]


def test_oracle_any_and_exact_correct_with_ignore():
    labels = np.array([A, [2, -100, 4, 5]])
    grids = np.array([[B, C], [[2, 9, 4, 5], B]])
    assert exact_correct(grids, labels).tolist() == [[False, False], [True, False]]
    assert oracle_any_correct(grids, labels).tolist() == [False, True]
    grids2 = np.array([[B, A], [B, B]])
    assert oracle_any_correct(grids2, labels).tolist() == [True, False]


def test_augmented_hrm_aggregate():
    labels = np.array([A])
    # checkpoint 0: 1/3 right; checkpoint 1: 2/3 right -> solved
    grids = G(A, B, B, A, A, C)
    m = np.array([0, 0, 0, 1, 1, 1])
    assert augmented_hrm_aggregate(grids, labels, m).tolist() == [True]
    # exactly half is not "more than half"
    assert augmented_hrm_aggregate(G(A, B, A, B), labels, np.array([0, 0, 1, 1])).tolist() == [False]
    # passes that did not halt leave the denominator: halted (A, B) -> 1/2, not solved; halted (A) -> 1/1, solved
    grids3 = G(A, B, B)
    assert augmented_hrm_aggregate(grids3, labels, None, np.array([[True, True, False]])).tolist() == [False]
    assert augmented_hrm_aggregate(grids3, labels, None, np.array([[True, False, False]])).tolist() == [True]
    # no halted pass -> not solved
    assert augmented_hrm_aggregate(G(A), labels, None, np.array([[False]])).tolist() == [False]
    # it is an oracle: it never beats pass@K
    rng = np.random.default_rng(1)
    g = rng.integers(2, 4, size=(50, 6, 3))
    y = rng.integers(2, 4, size=(50, 3))
    mi = np.repeat(np.arange(3), 2)
    assert (augmented_hrm_aggregate(g, y, mi) <= oracle_any_correct(g, y)).all()


def test_dispatch_and_errors():
    labels = np.array([A])
    grids = G(A, A, B)
    conf = np.array([[0.1, 0.1, 0.9]])
    assert solved_by_rule("majority", grids, labels, conf).tolist() == [True]
    assert solved_by_rule("confidence", grids, labels, conf).tolist() == [False]
    assert rule_uses_label("oracle_any") and not rule_uses_label("majority")
    with pytest.raises(VotingError, match="unknown voting rule"):
        solved_by_rule("best", grids, labels)
    with pytest.raises(VotingError, match="prob_average"):
        solved_by_rule("prob_average", grids, labels)
    with pytest.raises(VotingError, match=r"grids must be \[N"):
        vote_majority(np.array(A))
    with pytest.raises(VotingError, match="confidence must have shape"):
        vote_majority(grids, np.array([0.1, 0.2]))
    with pytest.raises(VotingError, match="labels must have shape"):
        oracle_any_correct(grids, np.array(A))
    with pytest.raises(VotingError, match="model_index"):
        augmented_hrm_aggregate(grids, labels, np.array([0, 1]))
