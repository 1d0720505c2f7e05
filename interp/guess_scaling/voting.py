"""Voting rules that turn K candidate answers per puzzle into one answer (pure numpy).

Inputs share one layout: ``grids`` int [N, K, L] (K candidate token grids per
puzzle, already mapped back to the original puzzle's frame), ``confidence``
float [N, K] (``sigmoid(q_halt)`` of each pass), ``probs`` float [N, K, L, V]
(per-cell softmax, mapped back too), ``labels`` int [N, L] (``ignore_label``
marks cells that are not scored).

Label-free rules (usable at test time, return a chosen grid [N, L]):

* :func:`vote_majority` - plurality of identical full grids; ties -> higher
  mean confidence -> earlier first appearance (rule ``majority``).
* :func:`vote_majority_first` - plurality of identical full grids; ties ->
  earlier first appearance only (rule ``majority_first``, plain majority).
* :func:`select_max_q` - the single candidate with the highest final
  ``q_halt`` (PTRM's Q-head selection; rule ``q_select``); ties -> earlier.
* :func:`select_min_residual` - the single candidate with the smallest
  fixed-point residual (EqR's selection; rule ``residual_select``); ties -> earlier.
* :func:`vote_confidence` - the distinct grid with the largest *sum* of
  confidences (ARC-style ranking by evidence); ties -> more votes -> earlier.
* :func:`vote_cell_majority` - each cell independently takes its plurality
  token; ties -> larger summed confidence of its voters -> lower token id.
  The result may be a grid no single pass produced.
* :func:`vote_prob_average` - argmax of the mean per-cell probabilities.

Oracle rules (they look at the label, so they are upper bounds, not methods):

* :func:`oracle_any_correct` - pass@K: solved if any candidate is exactly right.
* :func:`augmented_hrm_aggregate` - the Augmented-HRM paper's aggregation:
  per checkpoint, solved if more than half of its (halted) passes are exactly
  right; across checkpoints, logical OR. The public scripts of that paper OR
  over every (checkpoint, relabelling) pass, which is :func:`oracle_any_correct`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from common.labels import IGNORE_LABEL
from interp.guess_scaling.rule_names import ALL_RULES, LABEL_FREE_RULES, ORACLE_RULES


class VotingError(ValueError):
    """Candidate arrays with the wrong shape or type; the message names the problem."""


# --------------------------------------------------------------------------- checks


def _grids(grids: np.ndarray) -> np.ndarray:
    g = np.asarray(grids)
    if g.ndim != 3:
        raise VotingError(f"grids must be [N puzzles, K candidates, L cells], got shape {g.shape}")
    if g.dtype.kind not in "iu":
        raise VotingError(f"grids must hold integer tokens, got dtype {g.dtype}")
    if g.shape[1] == 0:
        raise VotingError("need at least one candidate per puzzle (K = 0)")
    return g


def _conf(confidence: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if confidence is None:
        return np.full(shape, 0.5)
    c = np.asarray(confidence, dtype=np.float64)
    if c.shape != shape:
        raise VotingError(f"confidence must have shape {list(shape)} (N, K), got {list(c.shape)}")
    if np.isnan(c).any():
        raise VotingError("confidence contains NaN")
    return c


def _labels(labels: np.ndarray, n: int, length: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n, length):
        raise VotingError(f"labels must have shape [{n}, {length}] (N, L), got {list(y.shape)}")
    return y


# --------------------------------------------------------------------------- scoring


def exact_correct(pred: np.ndarray, labels: np.ndarray, ignore_label: int = IGNORE_LABEL) -> np.ndarray:
    """Exact-match flags: ``pred`` [N, L] -> [N] or [N, K, L] -> [N, K]; ignored cells always match."""
    p = np.asarray(pred)
    y = np.asarray(labels)
    if p.ndim == 3:
        y = y[:, None, :]
    if p.shape[0] != y.shape[0] or p.shape[-1] != y.shape[-1]:
        raise VotingError(f"predictions {list(p.shape)} and labels {list(np.shape(labels))} disagree on N or L")
    return ((p == y) | (y == ignore_label)).all(axis=-1)


# --------------------------------------------------------------------------- grouping


def _group(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of ``rows`` [K, L]: (first index of each, inverse [K], counts)."""
    _, first, inverse, counts = np.unique(rows, axis=0, return_index=True, return_inverse=True, return_counts=True)
    return first, inverse.reshape(-1), counts


def _pick(keys: list[np.ndarray]) -> int:
    """Index of the best group: larger keys win, compared left to right (``np.lexsort``)."""
    order = np.lexsort(tuple(reversed(keys)))
    return int(order[-1])


def vote_majority(grids: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """Plurality of identical full grids; ties -> higher mean confidence -> earlier first appearance."""
    g = _grids(grids)
    c = _conf(confidence, g.shape[:2])
    out = np.empty((g.shape[0], g.shape[2]), dtype=g.dtype)
    for n in range(g.shape[0]):
        first, inv, counts = _group(g[n])
        mean_conf = np.bincount(inv, weights=c[n], minlength=len(counts)) / counts
        best = _pick([counts.astype(np.float64), mean_conf, -first.astype(np.float64)])
        out[n] = g[n, first[best]]
    return out


def vote_majority_first(grids: np.ndarray) -> np.ndarray:
    """Plurality of identical full grids; ties -> the grid that appeared first (no confidence used)."""
    g = _grids(grids)
    out = np.empty((g.shape[0], g.shape[2]), dtype=g.dtype)
    for n in range(g.shape[0]):
        first, _, counts = _group(g[n])
        best = _pick([counts.astype(np.float64), -first.astype(np.float64)])
        out[n] = g[n, first[best]]
    return out


def _score(score: np.ndarray | None, shape: tuple[int, int], what: str) -> np.ndarray:
    if score is None:
        raise VotingError(f"this rule needs {what} per candidate")
    s = np.asarray(score, dtype=np.float64)
    if s.shape != shape:
        raise VotingError(f"{what} must have shape {list(shape)} (N, K), got {list(s.shape)}")
    return s


def _select(grids: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Per puzzle the candidate with the largest ``score`` (NaN never wins unless all are NaN); ties -> earlier."""
    s = np.where(np.isnan(score), -np.inf, score)
    best = s.argmax(axis=1)  # argmax returns the first maximum
    return grids[np.arange(grids.shape[0]), best]


def select_max_q(grids: np.ndarray, q_halt: np.ndarray) -> np.ndarray:
    """The candidate with the highest final halting logit ``q_halt`` (Q-head selection); ties -> earlier."""
    g = _grids(grids)
    return _select(g, _score(q_halt, g.shape[:2], "q_halt"))


def select_min_residual(grids: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """The candidate with the smallest fixed-point residual; ties -> earlier."""
    g = _grids(grids)
    return _select(g, -_score(residual, g.shape[:2], "a fixed-point residual"))


def vote_confidence(grids: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """The distinct grid with the largest summed confidence; ties -> more votes -> earlier."""
    g = _grids(grids)
    c = _conf(confidence, g.shape[:2])
    out = np.empty((g.shape[0], g.shape[2]), dtype=g.dtype)
    for n in range(g.shape[0]):
        first, inv, counts = _group(g[n])
        total = np.bincount(inv, weights=c[n], minlength=len(counts))
        best = _pick([total, counts.astype(np.float64), -first.astype(np.float64)])
        out[n] = g[n, first[best]]
    return out


def vote_cell_majority(grids: np.ndarray, confidence: np.ndarray | None = None, vocab_size: int | None = None) -> np.ndarray:
    """Per-cell plurality token; ties -> larger summed confidence of its voters -> lower token id."""
    g = _grids(grids)
    if g.size and g.min() < 0:
        raise VotingError(f"grids hold negative tokens ({int(g.min())})")
    K = g.shape[1]
    c = _conf(confidence, g.shape[:2])
    V = int(g.max()) + 1 if vocab_size is None else int(vocab_size)
    onehot = g[..., None] == np.arange(V)  # [N, K, L, V]
    counts = onehot.sum(axis=1)  # [N, L, V]
    conf_sum = np.einsum("nk,nklv->nlv", c, onehot)
    # one vote outweighs any difference in summed confidence (|conf_sum| <= K * max|conf|)
    scale = 2.0 * K * max(1.0, float(np.abs(c).max(initial=0.0))) + 1.0
    score = counts * scale + conf_sum
    return score.argmax(axis=-1).astype(g.dtype)


def vote_prob_average(probs: np.ndarray) -> np.ndarray:
    """Argmax of the per-cell probabilities averaged over candidates: [N, K, L, V] -> [N, L]."""
    p = np.asarray(probs)
    if p.ndim != 4 or p.shape[1] == 0:
        raise VotingError(f"probs must be [N, K >= 1, L, V], got shape {p.shape}")
    return p.astype(np.float64).mean(axis=1).argmax(axis=-1)


# --------------------------------------------------------------------------- oracles


def oracle_any_correct(grids: np.ndarray, labels: np.ndarray, ignore_label: int = IGNORE_LABEL) -> np.ndarray:
    """ORACLE pass@K: [N] True where any candidate matches the label exactly (an upper bound)."""
    g = _grids(grids)
    y = _labels(labels, g.shape[0], g.shape[2])
    return exact_correct(g, y, ignore_label).any(axis=1)


def augmented_hrm_aggregate(
    grids: np.ndarray,
    labels: np.ndarray,
    model_index: np.ndarray | None = None,
    halted: np.ndarray | None = None,
    ignore_label: int = IGNORE_LABEL,
) -> np.ndarray:
    """ORACLE (Augmented-HRM): per checkpoint, solved if > half of its halted passes are exactly right; OR over checkpoints.

    ``model_index`` [K] says which checkpoint produced each candidate (default:
    all one checkpoint); ``halted`` [N, K] (default all True) drops passes that
    did not halt from both numerator and denominator. A checkpoint with no
    halted pass does not solve the puzzle.
    """
    g = _grids(grids)
    N, K, L = g.shape
    y = _labels(labels, N, L)
    m = np.zeros(K, dtype=np.int64) if model_index is None else np.asarray(model_index).astype(np.int64)
    if m.shape != (K,):
        raise VotingError(f"model_index must have shape [{K}] (one entry per candidate), got {list(m.shape)}")
    h = np.ones((N, K), dtype=bool) if halted is None else np.asarray(halted, dtype=bool)
    if h.shape != (N, K):
        raise VotingError(f"halted must have shape [{N}, {K}], got {list(h.shape)}")
    right = exact_correct(g, y, ignore_label) & h
    solved = np.zeros(N, dtype=bool)
    for mi in np.unique(m):
        cols = m == mi
        n_halted = h[:, cols].sum(axis=1)
        solved |= 2 * right[:, cols].sum(axis=1) > n_halted
    return solved


# --------------------------------------------------------------------------- dispatch


def rule_uses_label(rule: str) -> bool:
    """True for the oracle rules (scored against the label; upper bounds, not methods)."""
    if rule not in ALL_RULES:
        raise VotingError(f"unknown voting rule {rule!r}; choose from {', '.join(ALL_RULES)}")
    return rule in ORACLE_RULES


def solved_by_rule(
    rule: str,
    grids: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    model_index: np.ndarray | None = None,
    halted: np.ndarray | None = None,
    ignore_label: int = IGNORE_LABEL,
    q_halt: np.ndarray | None = None,
    residual: np.ndarray | None = None,
) -> np.ndarray:
    """[N] exact-correct flags of one rule, label-free or oracle (see :data:`ALL_RULES`).

    ``q_halt`` (raw halting logits [N, K]) is needed by ``q_select``, ``residual`` [N, K] by ``residual_select``.
    """
    rule_uses_label(rule)
    if rule == "oracle_any":
        return oracle_any_correct(grids, labels, ignore_label)
    if rule == "augmented_hrm":
        return augmented_hrm_aggregate(grids, labels, model_index, halted, ignore_label)
    if rule == "prob_average":
        if probs is None:
            raise VotingError("rule 'prob_average' needs per-cell probabilities (collect with keep_probs=True)")
        chosen = vote_prob_average(probs)
    elif rule == "majority_first":
        chosen = vote_majority_first(grids)
    elif rule == "q_select":
        chosen = select_max_q(grids, q_halt)
    elif rule == "residual_select":
        chosen = select_min_residual(grids, residual)
    else:
        fn: Callable[..., np.ndarray] = {
            "majority": vote_majority,
            "confidence": vote_confidence,
            "cell_majority": vote_cell_majority,
        }[rule]
        chosen = fn(grids, confidence)
    g = _grids(grids)
    return exact_correct(chosen, _labels(labels, g.shape[0], g.shape[2]), ignore_label)


__all__ = [
    "ALL_RULES", "LABEL_FREE_RULES", "ORACLE_RULES", "VotingError", "exact_correct", "vote_majority",
    "vote_majority_first", "select_max_q", "select_min_residual",
    "vote_confidence", "vote_cell_majority", "vote_prob_average", "oracle_any_correct",
    "augmented_hrm_aggregate", "rule_uses_label", "solved_by_rule",
]
