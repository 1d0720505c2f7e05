"""Test-time scaling strategies: PTRM noise, EqR random starts, selection rules, pass-budget accounting."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from interp.guess_scaling.candidates import Candidates, collect_noisy, collect_random_starts
from interp.guess_scaling.curves import StrategyRun, budget_table, guess_scaling_curve, single_columns
from interp.guess_scaling.errors import GuessScalingError
from interp.guess_scaling.recursion import NoiseSpec, run_pass
from interp.guess_scaling.voting import (
    select_max_q, select_min_residual, solved_by_rule, vote_majority, vote_majority_first,
)
from tasks.sudoku.generate import generate
from tasks.sudoku.grid import encode_grid


def _model(family: str, seed: int = 0):
    from models.config import HRMConfig, TRMConfig
    from models.registry import build_model

    torch.manual_seed(seed)
    common = dict(vocab_size=6, seq_len=16, hidden_size=32, num_heads=2, expansion=2.0, halt_max_steps=2)
    cfg = (HRMConfig(**common, H_layers=1, L_layers=1, H_cycles=2, L_cycles=2) if family == "hrm"
           else TRMConfig(**common, H_cycles=2, L_cycles=2, num_layers=1))
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.q_head.weight.normal_(0, 0.5)  # make q_halt depend on the state
    return model


@pytest.fixture(scope="module")
def sudoku4():
    recs = generate(6, size=4, seed=1)
    x = encode_grid(np.stack([r.puzzle for r in recs])).astype(np.int64)
    y = encode_grid(np.stack([r.solution for r in recs])).astype(np.int64)
    return x, y


def _plain(model, x):
    with torch.no_grad():
        logits, cache = model.run_with_cache(torch.from_numpy(x), names_filter="seg*.hook_q")
    return logits.numpy(), cache[f"seg{model.cfg.halt_max_steps - 1}.hook_q"][:, 0].numpy()


# ----------------------------------------------------------------------------- PTRM noise


@pytest.mark.parametrize("family", ["hrm", "trm"])
@pytest.mark.parametrize("where", ["step", "segment"])
def test_noise_of_scale_zero_reproduces_the_plain_run_exactly(family, where, sudoku4):
    x, _ = sudoku4
    model = _model(family)
    logits, q = _plain(model, x)
    out = run_pass(model, x, noise=NoiseSpec(0.0, where, seed=3))
    assert np.array_equal(out.logits, logits) and np.array_equal(out.q_halt, q)
    c = collect_noisy(model, x, 3, scale=0.0, where=where, include_plain=False)
    assert all(np.array_equal(c.grids[:, g], logits.argmax(-1)) for g in range(3))
    # real noise changes the run, and is reproducible from its seed
    a = run_pass(model, x, noise=NoiseSpec(0.5, where, seed=1))
    b = run_pass(model, x, noise=NoiseSpec(0.5, where, seed=1))
    assert not np.allclose(a.logits, logits) and np.array_equal(a.logits, b.logits)
    assert not any(p._forward_hooks for p in model.hook_dict.values())  # the noise hooks are gone


def test_step_noise_touches_every_state_update_but_the_final_answer(sudoku4):
    x, _ = sudoku4
    model = _model("trm")
    seen = []
    with model.hooks([("seg*.hook_*", lambda t, hook: seen.append((hook.name, t.clone())) or None)]):
        run_pass(model, x, noise=NoiseSpec(0.3, "step", seed=0))
    names = [n for n, _ in seen]
    assert "seg1.t1.hook_y" in names and "seg0.t0.n0.hook_z" in names
    # the clean view of the last y equals what the answer head decoded
    logits = run_pass(model, x, noise=NoiseSpec(0.3, "step", seed=0)).logits
    last_y = dict(seen)["seg1.t1.hook_y"]
    with torch.no_grad():
        assert np.allclose(model.decode(last_y).numpy(), logits, atol=1e-5)


def test_noise_spec_checks():
    with pytest.raises(GuessScalingError, match="noise scale"):
        NoiseSpec(-1.0)
    with pytest.raises(GuessScalingError, match="per 'step' or 'segment'"):
        NoiseSpec(0.1, "cycle")


# ----------------------------------------------------------------------------- EqR random starts


@pytest.mark.parametrize("family", ["hrm", "trm"])
def test_eqr_with_own_init_and_one_guess_is_the_plain_run(family, sudoku4):
    x, _ = sudoku4
    model = _model(family)
    logits, q = _plain(model, x)
    c = collect_random_starts(model, x, 1)
    assert np.array_equal(c.grids[:, 0], logits.argmax(-1))
    np.testing.assert_array_equal(c.q_halt[:, 0], q)
    # random starts differ from the own start; deeper runs are accepted
    r = collect_random_starts(model, x, 3, n_segments=4, seed=5)
    assert r.perturb_names == ["own-init", "start1", "start2"]
    assert not np.array_equal(r.residual[:, 1], r.residual[:, 0])


def test_residual_is_the_relative_change_over_the_last_segment(sudoku4):
    x, _ = sudoku4
    model = _model("hrm")
    xt = torch.from_numpy(x)
    with torch.no_grad():
        s0 = model.init_states(len(x))
        s1, _ = model.segment(s0, xt, seg=0)
        s2, _ = model.segment(s1, xt, seg=1)
    num = sum((s2[k] - s1[k]).flatten(1).pow(2).sum(1) for k in s2).sqrt()
    den = sum(s1[k].flatten(1).pow(2).sum(1) for k in s2).sqrt()
    np.testing.assert_allclose(run_pass(model, x).residual, (num / den).numpy(), rtol=1e-5)


# ----------------------------------------------------------------------------- selection and tie-break rules

A, B, C = [2, 3], [3, 2], [4, 4]


def G(*rows):
    return np.array([rows], dtype=np.int64)


def test_q_selection_picks_the_highest_q():
    grids = G(A, B, C, A)
    assert select_max_q(grids, np.array([[0.1, 2.0, -1.0, 1.9]])).tolist() == [B]
    assert select_max_q(grids, np.array([[5.0, 5.0, 1.0, 1.0]])).tolist() == [A]  # tie -> earlier
    assert select_max_q(grids, np.array([[np.nan, 0.0, -3.0, np.nan]])).tolist() == [B]  # NaN never wins


def test_residual_selection_picks_the_smallest_residual():
    grids = G(A, B, C)
    assert select_min_residual(grids, np.array([[0.3, 0.2, 0.01]])).tolist() == [C]
    assert select_min_residual(grids, np.array([[0.1, 0.1, 0.5]])).tolist() == [A]


def test_majority_tie_breaks_first_come_vs_confidence():
    grids = G(A, B, B, A)  # 2-2 tie
    conf = np.array([[0.2, 0.9, 0.8, 0.1]])
    assert vote_majority_first(grids).tolist() == [A]  # A appeared first
    assert vote_majority(grids, conf).tolist() == [B]  # B has the higher mean confidence
    assert vote_majority_first(G(B, A, A)).tolist() == [A]  # plurality still wins over order
    y = np.array([B])
    assert not solved_by_rule("majority_first", grids, y, conf)[0]
    assert solved_by_rule("majority", grids, y, conf)[0]
    assert solved_by_rule("q_select", grids, y, conf, q_halt=np.array([[0, 3.0, 1, 0]]))[0]
    with pytest.raises(ValueError, match="needs q_halt"):
        solved_by_rule("q_select", grids, y, conf)


# ----------------------------------------------------------------------------- budget accounting


def _cands(n_guesses: int, n: int = 30, seed: int = 0) -> tuple[Candidates, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(2, 6, size=(n, 4))
    grids = np.repeat(y[:, None], n_guesses, axis=1).copy()
    wrong = rng.random((n, n_guesses)) < 0.6
    grids[wrong, 0] = np.where(grids[wrong, 0] == 2, 3, 2)
    return Candidates(grids, rng.normal(size=(n, n_guesses)), np.zeros((n, n_guesses)), np.zeros(n_guesses, np.int64),
                      np.arange(n_guesses), [], None, rng.random((n, n_guesses))), y


def test_budget_accounting():
    c8, y = _cands(8)
    c4, _ = _cands(4, seed=1)
    deep = StrategyRun("eqr", c4, single_columns(4), passes_per_guess=2)
    assert [deep.guesses_for(k) for k in (1, 2, 3, 4, 8, 16)] == [None, 1, 1, 2, 4, None]
    runs = [StrategyRun("ptrm", c8, single_columns(8)), deep]
    with pytest.warns(UserWarning, match="'eqr': k=\\[1\\] skipped"):
        df = budget_table(runs, y, ks=(1, 2, 4, 8), rules=("majority_first", "q_select", "residual_select", "oracle_any"))
    assert (df["n_passes"] == df["guesses"] * df["passes_per_guess"]).all() and (df["n_passes"] <= df["k"]).all()
    e = df[df.strategy == "eqr"].set_index(["rule", "k"])
    assert e.loc[("oracle_any", 8), "guesses"] == 4 and e.loc[("oracle_any", 8), "n_passes"] == 8
    # accuracy is the direct computation on the first k // cost guesses
    direct = (c4.grids[:, :2] == y[:, None]).all(-1).any(-1).mean()
    assert e.loc[("oracle_any", 4), "accuracy"] == pytest.approx(direct)
    res_pick = c4.grids[np.arange(len(y)), c4.residual[:, :2].argmin(1)]
    assert e.loc[("residual_select", 4), "accuracy"] == pytest.approx((res_pick == y).all(-1).mean())
    assert ((df.ci_low <= df.accuracy) & (df.accuracy <= df.ci_high)).all()


# ----------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("family", ["hrm", "trm"])
def test_end_to_end_on_a_tiny_random_model(family, sudoku4):
    x, y = sudoku4
    model = _model(family)
    rules = ("majority_first", "majority", "q_select", "residual_select", "oracle_any")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eqr cannot fill k = 1 at depth 2
        df = guess_scaling_curve(model, x, y, strategies=("aug", "ptrm", "eqr"), ks=(1, 2, 4), rules=rules,
                                 noise=0.2, eqr_depth=2)
    assert set(df.strategy) == {"perturb", "ptrm", "eqr"}
    assert sorted(df[df.strategy == "eqr"]["k"].unique()) == [2, 4]
    k1 = df[df.k == 1].set_index(["strategy", "rule"])["accuracy"]
    assert k1[("perturb", "majority_first")] == k1[("ptrm", "majority_first")]  # guess 0 is the plain pass
    for (s, k), g in df.groupby(["strategy", "k"]):
        assert (g[~g.uses_label]["accuracy"] <= g[g.rule == "oracle_any"]["accuracy"].iloc[0] + 1e-9).all()
    assert (df["n"] == len(x)).all()
