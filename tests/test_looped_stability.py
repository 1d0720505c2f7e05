"""Stability of any looped model (``interp.stability.looped_map``, ``looped_run``): the replayed step map
reproduces the recorded states bit for bit (Universal Transformer, Huginn's random start, HRM-Text's two
stacks), the FTLE equals an independent Jacobian (``torch.autograd.functional.jacobian`` of a hand-written
step) + QR computation, and early-exit rows use only the steps that ran."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers.looped_models import TinyHuginn, TinyOuro, TinyUniversalTransformer

import interp
from interp.stability.looped_map import looped_step_map
from interp.stability.looped_run import looped_stability
from interp.stability.lyapunov import random_tangents
from interp.tracing.looped import wrap_looped
from models.looped import LoopError

V = 40


def tokens(n: int = 2, length: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (n, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("make", [TinyUniversalTransformer, TinyHuginn])
def test_replayed_map_reproduces_the_recorded_states_bit_for_bit(make):
    torch.manual_seed(0)
    m = make().eval()
    x = tokens(1)

    def seeded(model, t):  # Huginn draws its start state: the traced forward draws with seed 5
        torch.manual_seed(5)
        return model(t)

    tr = interp.trace_looped(m, x, states="all", call=seeded)
    w = wrap_looped(m, x)
    torch.manual_seed(5)  # the step map's recorded run draws the same start; every replay restores that draw
    sm = looped_step_map(w, x)
    (s,) = sm.init
    assert sm.first == 0 and sm.n_steps == tr.n_steps - 1
    for t in range(sm.n_steps + 1):
        assert np.array_equal(sm.states[t][s][0].numpy(), tr.states(s)[0, t])
    with torch.no_grad():
        for t in range(sm.n_steps):
            assert torch.equal(sm.exact[t](sm.states[t])[s], sm.states[t + 1][s])
            jvp_map = sm.maps[t](sm.states[t])[s]  # grad mode on: another attention kernel, same values to 1e-5
            assert torch.allclose(jvp_map, sm.states[t + 1][s], atol=1e-5, rtol=1e-5)
    w.release()


def hand_steps(m, first_call: int):
    """The step after call t (t >= first_call), written from the model's own submodules."""
    if isinstance(m, TinyUniversalTransformer):
        return lambda t: (lambda h: m.block(h + m.step_emb.weight[t + 1]))

    def ouro(h):
        for layer in m.model.layers:
            h = layer(h)[0]
        return m.model.norm(h)
    return lambda t: ouro


@pytest.mark.parametrize("make", [TinyUniversalTransformer, TinyOuro])
def test_ftle_equals_an_independent_jacobian_and_qr(make):
    torch.manual_seed(0)
    m = make().eval()
    x = tokens(1, length=5)
    k = 3
    res = looped_stability(m, x, k=k, seed=7)
    w = wrap_looped(m, x)
    sm = looped_step_map(w, x)
    w.release()
    (s,) = sm.init
    z = sm.init[s].double()
    step = hand_steps(m.double(), 0)
    q = random_tangents({s: z}, k, torch.Generator().manual_seed(7))[0]  # the run's tangents (seed + row 0)
    logs = []
    for t in range(sm.n_steps):
        f = step(t)
        jac = torch.autograd.functional.jacobian(lambda h: f(h.reshape(z.shape)).reshape(-1), z.reshape(-1))
        q, r = torch.linalg.qr(jac @ q)
        logs.append(torch.log(torch.diagonal(r).abs()))
        with torch.no_grad():
            z = f(z)
    logs = torch.stack(logs)  # [T, k]
    got = res.per_step[res.per_step.puzzle == 0]["log_stretch"].to_numpy()
    assert np.allclose(got, logs[:, 0].numpy(), atol=1e-6)
    row = res.per_puzzle.iloc[0]
    assert row["n_steps"] == sm.n_steps == 3 and row["calls"] == 4
    assert row["ftle"] == pytest.approx(float(logs[:, 0].mean()), abs=1e-6)
    for j in range(1, k):
        assert row[f"ftle_{j}"] == pytest.approx(float(logs[:, j].mean()), abs=1e-6)
    tr = interp.trace_looped(m.float(), x)  # the per-step lens cross-entropy is the trace's
    assert np.allclose(res.per_step["ce"], tr.metric("ce")[0, 1:], rtol=1e-4)
    m.double()
    with torch.no_grad():  # residual: the last step's map once more from the final state
        extra = step(sm.n_steps - 1)(z)
    assert row["residual"] == pytest.approx(float((extra - z).norm() / z.norm()), rel=1e-4)
    assert row["drift_final"] == pytest.approx(float((sm.states[-1][s] - sm.states[-2][s]).double().norm()), rel=1e-4)


def test_early_exit_rows_use_only_the_steps_that_ran():
    torch.manual_seed(0)
    m = TinyOuro(exit_threshold=0.6, ut_steps=5).eval()
    x = tokens(6, length=5, seed=3)
    ran = [len(m.hand_states(x[i:i + 1])) for i in range(6)]
    assert len(set(ran)) > 1 and max(ran) >= 3  # the planted variation: rows exit after different passes
    res = looped_stability(m, x, k=2, batch_size=3)
    assert res.per_puzzle["calls"].tolist() == ran
    assert res.per_puzzle["n_steps"].tolist() == [r - 1 for r in ran]
    for i, r in enumerate(ran):
        steps = res.per_step[res.per_step.puzzle == i]
        assert steps["call"].tolist() == list(range(1, r))
        assert math.isnan(res.per_puzzle["ftle"][i]) == (r == 1)
        if r > 1:
            assert res.per_puzzle["ftle"][i] == pytest.approx(steps["log_stretch"].mean(), abs=1e-9)


def test_hrm_text_two_stacks_replay_bit_for_bit():
    from test_looped import HRM_LOOP, tiny_hrm_text

    hf = tiny_hrm_text()
    x = tokens(1, length=6)
    tr = interp.trace_looped(hf, x, loop=HRM_LOOP, states="all")
    w = wrap_looped(hf, x, loop=HRM_LOOP)
    sm = looped_step_map(w, x)
    assert sm.calls == ["z_L"] * 3 + ["z_H"] + ["z_L"] * 3 + ["z_H"] and sm.first == 3 and sm.n_steps == 4
    with torch.no_grad():
        for t in range(sm.n_steps):
            nxt = sm.exact[t](sm.states[t])
            for s in ("z_H", "z_L"):
                assert torch.equal(nxt[s], sm.states[t + 1][s])
                assert np.array_equal(sm.states[t + 1][s][0].numpy(), tr.states(s)[0, sm.first + t + 1])
    w.release()
    res = looped_stability(hf, x, loop={"z_L": HRM_LOOP["z_L"], "z_H": HRM_LOOP["z_H"]}, k=2)  # unsorted names
    assert res.per_step["state"].tolist() == ["z_L", "z_L", "z_L", "z_H"]
    assert np.isfinite(res.per_puzzle[["ftle", "ftle_1", "residual"]].to_numpy()).all()


def test_bad_settings_are_one_line_errors():
    m = TinyUniversalTransformer().eval()
    with pytest.raises(LoopError, match=r"burn_in 3 leaves no step to average \(3 steps"):
        looped_stability(m, tokens(1), k=1, burn_in=3)
    with pytest.raises(LoopError, match="does not exist"):
        looped_stability(m, tokens(1), loop="nope")
    with pytest.raises(LoopError, match=r"the loop ran 5 calls; a step needs two calls after every loop state "
                                        r"\(block, norm\) has been written"):
        looped_stability(m, tokens(1), loop="block,norm")  # the final norm runs once, after the loop


def test_cli_matches_the_python_api_and_bad_input_is_one_line(tmp_path, capsys):
    import pandas as pd

    from interp.cli import main
    from test_looped import HRM_LOOP, tiny_hrm_text

    folder = tmp_path / "hrm-text"
    hf = tiny_hrm_text(3)
    hf.save_pretrained(folder)
    out = tmp_path / "out"
    loop = ",".join(f"{s}={p}" for s, p in HRM_LOOP.items())
    argv = ["stability", "--ckpt", str(folder), "--tokens", "1 2 3 4 5", "--tangents", "2", "--out", str(out)]
    assert main([*argv, "--loop-module", loop]) == 0
    printed = capsys.readouterr().out
    assert "8 calls, 4 steps measured" in printed
    got = pd.read_csv(out / "per_puzzle.csv")
    want = looped_stability(hf, torch.tensor([[1, 2, 3, 4, 5]]), loop=HRM_LOOP, k=2).per_puzzle
    assert np.allclose(got[["ftle", "ftle_1", "residual"]].to_numpy(), want[["ftle", "ftle_1", "residual"]].to_numpy(),
                       rtol=1e-6, atol=1e-9)
    assert len(pd.read_csv(out / "per_step.csv")) == 4
    bad = tmp_path / "bad"
    cases = [
        (["--loop-module", "model.nope"], "loop module 'model.nope' does not exist in HrmTextForCausalLM"),
        (["--loop-module", loop, "--segments", "2"], "--segments and --unit do not apply to --loop-module"),
        (["--loop-module", loop, "--burn-in", "4"], r"burn_in 4 leaves no step to average"),
        ([], "--text/--tokens need --loop-module"),
    ]
    for extra, msg in cases:
        argv = ["stability", "--ckpt", str(folder), "--tokens", "1 2 3 4 5", "--out", str(bad), *extra]
        assert main(argv) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and msg in err, err
        assert not bad.exists()
