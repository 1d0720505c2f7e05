"""The selection rules of ``interp scale``, scored side by side on the same candidates.

Every rule turns K candidate grids per puzzle ([N, K, L]) into one answer and
reports exact-correct flags [N]. Candidate order matters for ties: candidate 0
is the plain model, and ties go to the earlier candidate.

* ``q_head`` - the candidate with the highest halting logit (PTRM's Q-head selection);
* ``majority`` - plurality of identical grids (ties: earlier first appearance);
* ``weighted_majority`` - the grid with the largest summed ``sigmoid(q_halt)`` (confidence-weighted vote);
* ``residual_topk`` - EqR's convergence selection: the ``m = max(1, round(topk_frac * K))`` candidates
  with the smallest fixed-point residual vote by plurality (ties: smaller residual);
* ``stability`` - candidates whose answer survived re-noising and one more segment vote by
  plurality; a puzzle with no survivor falls back to all candidates;
* ``oracle`` - pass@K, solved if any candidate is right: the ceiling, not a test-time method.
"""

from __future__ import annotations

import numpy as np

from common.labels import IGNORE_LABEL
from interp.guess_scaling.errors import GuessScalingError
from interp.guess_scaling.voting import (exact_correct, oracle_any_correct, select_max_q, vote_confidence,
                                         vote_majority_first)

SCALE_RULES = ("q_head", "majority", "weighted_majority", "residual_topk", "stability", "oracle")
HALTING_RULES = ("q_head", "weighted_majority")
"""Rules that read the halting logits (refused for a model without a halting head)."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _masked_majority(grids: np.ndarray, keep: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Per puzzle, the plurality grid among candidates with ``keep`` [N, K] (all when none kept), in ``order``."""
    N, K, L = grids.shape
    out = np.empty((N, L), dtype=grids.dtype)
    for n in range(N):
        idx = np.arange(K) if order is None else order[n]
        sel = idx[keep[n, idx]]
        if sel.size == 0:
            sel = idx
        out[n] = vote_majority_first(grids[n, sel][None])[0]
    return out


def choose(rule: str, grids: np.ndarray, q_halt: np.ndarray | None = None, residual: np.ndarray | None = None,
           stable: np.ndarray | None = None, topk_frac: float = 0.25) -> np.ndarray:
    """The chosen grid [N, L] of a label-free ``rule`` (not ``oracle``)."""
    g = np.asarray(grids)
    if g.ndim != 3 or g.shape[1] == 0:
        raise GuessScalingError(f"grids must be [N, K >= 1, L], got shape {g.shape}")
    N, K, _ = g.shape

    def need(a: np.ndarray | None, what: str) -> np.ndarray:
        if a is None:
            raise GuessScalingError(f"rule {rule!r} needs {what} per candidate")
        a = np.asarray(a)
        if a.shape != (N, K):
            raise GuessScalingError(f"{what} must have shape [{N}, {K}], got {list(a.shape)}")
        return a

    if rule == "q_head":
        return select_max_q(g, need(q_halt, "halting logits"))
    if rule == "majority":
        return vote_majority_first(g)
    if rule == "weighted_majority":
        return vote_confidence(g, _sigmoid(need(q_halt, "halting logits")))
    if rule == "residual_topk":
        r = need(residual, "a fixed-point residual").astype(np.float64)
        r = np.where(np.isnan(r), np.inf, r)
        order = np.argsort(r, axis=1, kind="stable")
        m = max(1, int(round(topk_frac * K)))
        keep = np.zeros((N, K), dtype=bool)
        np.put_along_axis(keep, order[:, :m], True, axis=1)
        return _masked_majority(g, keep, order)
    if rule == "stability":
        return _masked_majority(g, need(stable, "a stability flag").astype(bool))
    raise GuessScalingError(f"unknown or label-using rule {rule!r}; choose from {', '.join(SCALE_RULES)}")


def solved(rule: str, grids: np.ndarray, labels: np.ndarray, q_halt: np.ndarray | None = None,
           residual: np.ndarray | None = None, stable: np.ndarray | None = None, topk_frac: float = 0.25,
           ignore_label: int = IGNORE_LABEL) -> np.ndarray:
    """[N] exact-correct flags of ``rule`` (one of :data:`SCALE_RULES`) on candidate grids [N, K, L]."""
    if rule == "oracle":
        return oracle_any_correct(np.asarray(grids), labels, ignore_label)
    return exact_correct(choose(rule, grids, q_halt, residual, stable, topk_frac), labels, ignore_label)


__all__ = ["SCALE_RULES", "HALTING_RULES", "choose", "solved"]
