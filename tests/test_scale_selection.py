"""``interp.guess_scaling.selection``: each rule picks the planted answer; ``scale_table.at_depth`` halting modes."""

from __future__ import annotations

import numpy as np
import pytest

from interp.guess_scaling.depth_runs import DepthRecord
from interp.guess_scaling.errors import GuessScalingError
from interp.guess_scaling.scale_table import at_depth, depths_for, ks_for, pareto, score
from interp.guess_scaling.selection import choose, solved

L = 4
RIGHT = np.array([2, 3, 4, 5])
WRONG_A = np.array([2, 3, 4, 6])
WRONG_B = np.array([7, 3, 4, 5])


def _cands(*grids):
    return np.stack(grids)[None].astype(np.int64)  # [1, K, L]


def test_q_head_takes_the_highest_halting_logit_not_the_majority():
    g = _cands(WRONG_A, WRONG_A, RIGHT)
    q = np.array([[0.5, 1.0, 3.0]])
    assert solved("q_head", g, RIGHT[None], q_halt=q).tolist() == [True]
    assert solved("majority", g, RIGHT[None]).tolist() == [False]


def test_majority_counts_identical_grids_and_ties_go_to_the_first():
    assert solved("majority", _cands(WRONG_A, RIGHT, RIGHT), RIGHT[None]).tolist() == [True]
    assert solved("majority", _cands(RIGHT, WRONG_A, WRONG_B), RIGHT[None]).tolist() == [True]  # all singletons
    assert solved("majority", _cands(WRONG_A, RIGHT, WRONG_A, RIGHT), RIGHT[None]).tolist() == [False]


def test_weighted_majority_lets_two_confident_votes_beat_three_unsure_ones():
    g = _cands(WRONG_A, WRONG_A, WRONG_A, RIGHT, RIGHT)
    q = np.array([[-6.0, -6.0, -6.0, 6.0, 6.0]])  # sigmoid: 3 x 0.0025 vs 2 x 0.9975
    assert solved("weighted_majority", g, RIGHT[None], q_halt=q).tolist() == [True]
    assert solved("majority", g, RIGHT[None]).tolist() == [False]


def test_residual_topk_votes_among_the_most_converged():
    # 8 candidates, top 25% = 2: the two smallest residuals hold the right grid, the 6 others agree on a wrong one
    g = _cands(*([WRONG_A] * 6 + [RIGHT] * 2))
    r = np.array([[0.5, 0.4, 0.6, 0.3, 0.2, 0.7, 1e-4, 1e-3]])
    assert solved("residual_topk", g, RIGHT[None], residual=r).tolist() == [True]
    assert solved("residual_topk", g, RIGHT[None], residual=r, topk_frac=1.0).tolist() == [False]  # plain majority
    r_nan = r.copy()
    r_nan[0, 6:] = np.nan  # NaN residuals never count as converged
    assert solved("residual_topk", g, RIGHT[None], residual=r_nan).tolist() == [False]


def test_stability_keeps_survivors_and_falls_back_to_all():
    g = _cands(WRONG_A, WRONG_A, RIGHT)
    st = np.array([[False, False, True]])
    assert solved("stability", g, RIGHT[None], stable=st).tolist() == [True]
    none = np.zeros((1, 3), dtype=bool)  # nobody survived: plain majority of all
    assert solved("stability", g, RIGHT[None], stable=none).tolist() == [False]


def test_oracle_is_pass_at_k():
    assert solved("oracle", _cands(WRONG_A, WRONG_B, RIGHT), RIGHT[None]).tolist() == [True]
    assert solved("oracle", _cands(WRONG_A, WRONG_B), RIGHT[None]).tolist() == [False]


def test_rules_say_what_they_miss():
    with pytest.raises(GuessScalingError, match="halting logits"):
        choose("q_head", _cands(RIGHT, WRONG_A))
    with pytest.raises(GuessScalingError, match="unknown"):
        choose("oracle", _cands(RIGHT))


def _record():
    """2 puzzles, 2 candidates, 4 segments; puzzle 0 candidate 0 is right from segment 2 on and halts there."""
    N, K, D = 2, 2, 4
    grids = np.tile(WRONG_A, (N, K, D, 1)).astype(np.int8)
    grids[0, 0, 1:] = RIGHT
    grids[1, 1, 3] = RIGHT  # only at the last segment
    q = np.full((N, K, D), -3.0, dtype=np.float32)
    q[0, 0, 1] = 2.0  # halts at segment 2
    q[1, 1, 0] = 1.0  # halts (wrongly) at segment 1
    r = np.full((N, K, D), 0.5, dtype=np.float32)
    r[1, 1, 2:] = 1e-5  # a fixed point from segment 3 on
    return DepthRecord(grids, q, r, np.ones((N, K, 1), dtype=bool))


def test_halting_modes_read_the_right_segment():
    rec = _record()
    g, q, r, segs = at_depth(rec, 4, "off", 1e-3)
    assert segs.tolist() == [[4, 4], [4, 4]]
    assert (g[1, 1] == RIGHT).all()
    g, _, _, segs = at_depth(rec, 4, "q_head", 1e-3)
    assert segs.tolist() == [[2, 4], [4, 1]]
    assert (g[0, 0] == RIGHT).all() and (g[1, 1] == WRONG_A).all()
    g, _, _, segs = at_depth(rec, 4, "fixed_point", 1e-3)
    assert segs.tolist() == [[4, 4], [4, 3]]
    assert (g[1, 1] == WRONG_A).all()  # stopped at segment 3, before the right answer appeared


def test_score_counts_passes_flops_and_intervals():
    rec = _record()
    labels = np.stack([RIGHT, RIGHT])
    t = score(rec, labels, "aug", base=2, seg_flops=100.0, rules=["oracle", "majority", "stability"],
              check_depths=[4], budget=3.0)
    row = t[(t["halting"] == "off") & (t["depth"] == 4) & (t["k"] == 2) & (t["rule"] == "oracle")].iloc[0]
    assert (row["solved"], row["n"], row["passes"], row["flops"]) == (2, 2, 4.0, 800.0)
    assert not row["within_budget"] and row["lo"] < 1.0 == row["hi"]
    stab = t[t["rule"] == "stability"]
    assert set(stab["depth"]) == {4} and set(stab["halting"]) == {"off"}
    assert (stab[stab["k"] == 2]["passes"] == 5.0).all()  # one re-solve segment per candidate
    row = t[(t["halting"] == "q_head") & (t["depth"] == 4) & (t["k"] == 1) & (t["rule"] == "oracle")].iloc[0]
    assert row["passes"] == pytest.approx((2 + 4) / 2 / 2)  # puzzle 0 halts at 2, puzzle 1 runs 4
    front = pareto(t)
    assert (~front["uses_label"]).all() and front["within_budget"].all()
    assert front["accuracy"].is_monotonic_increasing and front["flops"].is_monotonic_increasing


def test_grids():
    assert ks_for(6) == [1, 2, 4, 6]
    assert depths_for(32, 16) == [1, 2, 4, 8, 16, 32]
    assert depths_for(12, 6) == [1, 2, 4, 6, 8, 12]
