"""Analyses on synthetic traces with known answers, and on real tiny-model traces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp import TraceError, synthetic_trace, trace
from interp.analyses import (
    alignment_by_phase,
    convergence,
    critical_step_histogram,
    critical_steps,
    distance_to_final,
    gate_statistics,
    hl_alignment,
    jump_distribution,
    jump_statistic,
    linear_cka,
    relative_changes,
    sudoku_conflicts,
)
from helpers.tiny_models import tiny_hrm, tiny_hrm_lm


# ----------------------------------------------------------------------------- fixed points
def _contraction(N=3, T=40, D=6, rho=0.7, seed=0):
    """x_{t+1} = A x_t + b with A = rho * Q (Q orthogonal): the unique fixed point is (I - A)^-1 b."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    A = rho * Q
    b = rng.normal(size=(N, D))
    x0 = rng.normal(size=(N, D)) * 5
    xs, x = [], x0
    for _ in range(T):
        x = x @ A.T + b
        xs.append(x)
    fixed = np.linalg.solve(np.eye(D) - A, b.T).T
    states = np.stack(xs, 1)[:, :, None, :]  # [N, T, 1, D]
    return states, x0[:, None, :], fixed


def test_convergence_of_a_contraction_matches_closed_form():
    states, x0, fixed = _contraction()
    tr = synthetic_trace({"h": states}, init={"h": x0})
    # independent per-step relative change
    prev = np.concatenate([x0[:, None], states[:, :-1]], 1)
    rel = np.linalg.norm((states - prev).reshape(3, 40, -1), axis=-1) / np.linalg.norm(prev.reshape(3, 40, -1), axis=-1)
    rc = relative_changes(tr, "h")
    np.testing.assert_allclose(rc["delta"].to_numpy().reshape(3, 40), rel, rtol=1e-4, atol=1e-7)  # float32 storage
    tol = 1e-3
    conv = convergence(tr, "h", tol=tol)
    for i in range(3):
        below = rel[i] < tol
        expected = next(t for t in range(40) if below[t:].all())
        assert conv.loc[i, "convergence_step"] == expected
    assert conv["converged"].all()
    # a contraction: the change shrinks by ~rho per step, so the last change is tiny, and the end point is the
    # analytic fixed point
    np.testing.assert_allclose(conv["final_delta"], rel[:, -1], rtol=1e-4, atol=1e-7)
    assert np.allclose(states[:, -1, 0], fixed, atol=1e-4)
    ratios = rel[:, 11:] / rel[:, 10:-1]
    assert np.allclose(ratios, 0.7, atol=0.05)
    # distance to the end point decays geometrically too
    d = distance_to_final(tr, "h")
    dist = d["distance"].to_numpy().reshape(3, 40)
    assert (np.diff(dist, axis=1)[:, :30] < 0).all() and (dist[:, -1] == 0).all()
    # with a tolerance it never reaches, nothing converges
    assert (convergence(tr, "h", tol=1e-12)["convergence_step"] == -1).all()


def test_convergence_uses_only_the_states_own_updates():
    # two states, "slow" written every third step; its deltas are read only there
    N, T, D = 2, 9, 4
    rng = np.random.default_rng(1)
    fast = rng.normal(size=(N, T, 1, D))
    slow = np.repeat(rng.normal(size=(N, 3, 1, D)), 3, axis=1)  # changes at steps 0, 3, 6
    updated = ["slow" if t % 3 == 0 else "fast" for t in range(T)]
    tr = synthetic_trace({"fast": fast, "slow": slow}, updated=updated, slow_state="slow",
                         init={"fast": fast[:, 0], "slow": slow[:, 0]})
    rc = relative_changes(tr, "slow")
    assert list(rc["step"][:3]) == [0, 3, 6]
    assert (rc["delta"][rc["update"] > 0] > 0).all()


# ----------------------------------------------------------------------------- jumps
def test_planted_jump_and_gradual_decline():
    T, k = 12, 7
    L = 10
    labels = np.full((3, L), 2)
    inputs = np.ones((3, L), int)
    pred = np.full((3, T, L), 3)
    pred[0, k:] = 2  # puzzle 0: all wrong until step k, then all right: a pure jump
    for t in range(T):  # puzzle 1: one more cell right per step (gradual), solved at step 10
        pred[1, t, : min(L, t)] = 2
    pred[2, 3:5] = 2  # puzzle 2: right at steps 3-4, wrong again after: not solved
    tr = synthetic_trace({"h": np.zeros((3, T, 1, 2))}, predictions=pred, labels=labels, inputs=inputs)
    df = critical_steps(tr, error="token_error")
    assert df.loc[0, "critical_step"] == k and df.loc[0, "jump"] == 1.0
    assert df.loc[0, "largest_drop_step"] == k and df.loc[0, "largest_drop"] == L
    assert df.loc[1, "critical_step"] == L and df.loc[1, "jump"] == pytest.approx(1 / L)
    assert df.loc[2, "critical_step"] == -1 and not df.loc[2, "final_exact"]
    assert df.loc[2, "jump"] == pytest.approx(1.0)  # one drop of 10 (then a rise)
    dist = jump_distribution(df)
    assert dist["frac_solved"] == pytest.approx(2 / 3) and dist["critical_step_lower_median"] == min(k, L)
    assert (dist["critical_step_q1"], dist["critical_step_q3"]) == (min(k, L), max(k, L))
    hist = critical_step_histogram(df, T)
    assert hist.set_index("critical_step").loc[k, "n_puzzles"] == 1
    assert hist.set_index("critical_step").loc[-1, "n_puzzles"] == 1


def test_jump_statistic_edge_cases():
    e = np.array([[5, 5, 5, 5], [4, 3, 2, 1], [1, 2, 3, 4]], float)
    jump, largest, where = jump_statistic(e)
    assert np.isnan(jump[0]) and where[0] == -1
    assert jump[1] == pytest.approx(1 / 3)
    assert np.isnan(jump[2])


def test_sudoku_conflicts_against_the_task_code():
    sudoku = pytest.importorskip("tasks.sudoku.grid")
    solution = sudoku.parse_puzzle(
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179")
    tok = sudoku.encode_grid(solution)
    assert sudoku_conflicts(tok) == 0
    rng = np.random.default_rng(0)
    grids = rng.integers(1, 10, size=(20, 9, 9)).astype(np.int8)
    np.testing.assert_array_equal(sudoku_conflicts(sudoku.encode_grid(grids), count_non_digits=False),
                                  sudoku.count_conflicts(grids))
    swapped = tok.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # swap two cells of row 0: two column clashes, no row/box clash
    assert sudoku_conflicts(swapped) == 2
    blank = tok.copy()
    blank[5] = 1
    assert sudoku_conflicts(blank) == 1 and sudoku_conflicts(blank, count_non_digits=False) == 0
    with pytest.raises(TraceError, match="not a Sudoku"):
        sudoku_conflicts(np.zeros(10, int))


# ----------------------------------------------------------------------------- alignment
def test_alignment_reports_known_cosines():
    N, T, P, D = 4, 6, 5, 8
    rng = np.random.default_rng(0)
    slow = rng.normal(size=(N, T, P, D))
    ortho = rng.normal(size=(N, T, P, D))
    ortho -= (ortho * slow).sum(-1, keepdims=True) / (slow * slow).sum(-1, keepdims=True) * slow
    angles = np.linspace(0, np.pi / 2, T)  # cos goes 1 -> 0 over the steps
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    fast = np.cos(angles)[None, :, None, None] * unit(slow) + np.sin(angles)[None, :, None, None] * unit(ortho)
    updated = ["fast", "fast", "slow", "fast", "fast", "slow"]
    tr = synthetic_trace({"slow": slow, "fast": fast}, updated=updated, slow_state="slow")
    df = hl_alignment(tr, cka=True)
    np.testing.assert_allclose(df["cos_mean"], np.cos(angles), atol=1e-5)
    assert list(df["after_slow"]) == [False, False, False, True, False, False]
    for t in range(T):  # all 20 (puzzle, position) rows are used, so CKA equals the direct computation
        assert df["cka"].iloc[t] == pytest.approx(linear_cka(slow[:, t].reshape(-1, D), fast[:, t].reshape(-1, D)), rel=1e-5)
    rot, _ = np.linalg.qr(rng.normal(size=(D, D)))
    tr2 = synthetic_trace({"slow": slow, "fast": 3 * slow @ rot}, updated=updated, slow_state="slow")
    df2 = hl_alignment(tr2, cka=True)
    np.testing.assert_allclose(df2["cka"], 1.0, atol=1e-6)  # a rotated, rescaled copy: CKA 1 though cos != 1
    assert (df2["cos_mean"] < 0.9).all()
    phase = alignment_by_phase(df)
    assert phase.set_index("after_slow_update").loc[True, "cos_mean"] == pytest.approx(np.cos(angles[3]), abs=1e-5)


def test_linear_cka_against_the_gram_matrix_formula():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 6))
    Y = X @ rng.normal(size=(6, 4)) + 0.5 * rng.normal(size=(50, 4))
    H = np.eye(50) - 1 / 50
    K, Lm = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    expected = np.trace(K @ Lm) / np.sqrt(np.trace(K @ K) * np.trace(Lm @ Lm))
    assert linear_cka(X, Y) == pytest.approx(expected, rel=1e-9)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert linear_cka(X, 3 * X @ Q) == pytest.approx(1.0)
    assert linear_cka(X, rng.normal(size=(50, 6))) < 0.5


# ----------------------------------------------------------------------------- gates
def test_gate_statistics_on_synthetic_gates():
    N, T, P, D = 2, 4, 3, 2
    gate_fast = np.stack([np.full((N, P, D), 0.1 * (t + 1)) for t in range(T)], 1)
    gate_slow = np.full((N, T, P, D), np.nan)
    gate_slow[:, 1] = 0.5
    gate_slow[:, 3] = 0.7
    states = {"fast": np.ones((N, T, P, D)), "slow": np.ones((N, T, P, D))}
    updated = ["fast", "slow", "fast", "slow"]
    tr = synthetic_trace(states, updated=updated, slow_state="slow",
                         gates={"gate_fast": gate_fast, "gate_slow": gate_slow})
    g = gate_statistics(tr)
    np.testing.assert_allclose(g.per_step["gate_fast_mean"], [0.1, 0.2, 0.3, 0.4])
    assert np.isnan(g.per_step["gate_slow_mean"][0]) and g.per_step["gate_slow_mean"][3] == pytest.approx(0.7)
    ph = g.by_phase.set_index("after_slow_firing")
    assert ph.loc[True, "gate_fast_mean"] == pytest.approx(0.3)  # only step 2 follows a slow firing
    assert ph.loc[False, "gate_fast_mean"] == pytest.approx((0.1 + 0.2 + 0.4) / 3)


def test_gate_statistics_on_a_real_hrm_lm_trace():
    model = tiny_hrm_lm().eval()
    tokens = torch.randint(0, 256, (3, 10), generator=torch.Generator().manual_seed(0))
    tr = trace(model, tokens, states="summary")
    g = gate_statistics(tr)
    _, cache = model.run_with_cache(tokens)
    expect = np.mean([cache[f"pass0.step{m}.hook_gate_fast"].mean().item() for m in [0]])
    assert g.per_step["gate_fast_mean"][0] == pytest.approx(expect, rel=1e-5)
    outs = model.forward_passes(tokens)
    np.testing.assert_allclose(g.fusion[["fast", "slow", "encoded"]].to_numpy(),
                               np.stack([o.fusion_weights.mean((0, 1)).detach().numpy() for o in outs]), rtol=1e-5)
    assert len(g.table()) == model.cfg.steps_per_pass
    hrm = tiny_hrm()
    with pytest.raises(TraceError, match="no gates"):
        gate_statistics(trace(hrm, torch.ones(1, 16, dtype=torch.long), states="summary"))


def test_hl_alignment_on_real_hrm_trace_matches_states():
    model = tiny_hrm()
    x = torch.randint(1, 6, (3, 16), generator=torch.Generator().manual_seed(0))
    tr = trace(model, x)
    df = hl_alignment(tr)
    H, Lz = tr.states("z_H"), tr.states("z_L")
    cos = (H * Lz).sum(-1) / (np.linalg.norm(H, axis=-1) * np.linalg.norm(Lz, axis=-1))
    np.testing.assert_allclose(df["cos_mean"], cos.mean(-1).mean(0), rtol=1e-4)


def test_critical_step_quartiles_are_observed_steps():
    from interp.analyses.jumps import critical_step_quartiles

    # the case: 8 puzzles solved at step 3, 8 at step 7; no puzzle has step 5
    q = critical_step_quartiles(np.array([3] * 8 + [7] * 8))
    assert q == {"critical_step_q1": 3.0, "critical_step_lower_median": 3.0, "critical_step_q3": 7.0}
    q = critical_step_quartiles(np.array([1, 2, 3, 4, 5]))
    assert (q["critical_step_q1"], q["critical_step_lower_median"], q["critical_step_q3"]) == (2.0, 3.0, 4.0)
    assert all(np.isnan(v) for v in critical_step_quartiles(np.array([])).values())


def test_per_puzzle_table_stays_aligned_past_puzzle_nine(capsys):
    from interp.cli.trace import _print_many

    rng = np.random.default_rng(0)
    N, T, L = 12, 3, 4
    labels = rng.integers(2, 5, size=(N, L))
    pred = np.repeat(labels[:, None], T, axis=1)
    tr = synthetic_trace({"h": rng.normal(size=(N, T, L, 2))}, predictions=pred, labels=labels, inputs=np.ones((N, L), int))
    names = [f"some_long_collection_name.sdm:{i + 1}" for i in range(N)]
    _print_many(tr, names)
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ".sdm:" in ln]
    assert len(rows) == N and len({ln.index("solved") for ln in rows}) == 1 and len({len(ln) for ln in rows}) == 1
