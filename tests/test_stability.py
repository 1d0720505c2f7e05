"""Stability analysis: FTLE on maps with known exponents, JVP vs finite differences, step maps, AUC, end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from interp.stability.lyapunov import flat, ftle, jvp_step, random_tangents
from interp.stability.run import stability
from interp.stability.step_maps import model_step_map
from interp.stability.summary import failure_auc, outcome_split, roc_auc, stability_markdown
from models import HRMConfig, TRMConfig, UniTFConfig, build_model

V, L, D = 6, 8, 16
COMMON = dict(vocab_size=V, seq_len=L, hidden_size=D, num_heads=2, expansion=2.0)
TINY = {
    "hrm": HRMConfig(**COMMON, H_layers=1, L_layers=1, halt_max_steps=2),
    "trm_mlp": TRMConfig(**COMMON, H_cycles=2, L_cycles=2, num_layers=1, mlp_t=True, halt_max_steps=2),
    "trm_attn": TRMConfig(**COMMON, H_cycles=2, L_cycles=2, num_layers=1, mlp_t=False, halt_max_steps=2),
    "unitf": UniTFConfig(**COMMON, num_layers=1, depth=2, halt_max_steps=2),
}


class LinearStep(nn.Module):
    """z -> A z on a dict state, A symmetric with the given eigenvalues."""

    def __init__(self, eigenvalues: list[float], seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=g, dtype=torch.float64))
        self.register_buffer("A", q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T)

    def forward(self, s: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"z": s["z"] @ self.A.T}


@pytest.mark.parametrize("top", [0.5, 2.0])
def test_linear_map_exponents_are_log_eigenvalues(top):
    eig = [top, 0.8 * top, 0.5 * top, 0.3 * top, 0.1 * top, 0.05 * top]
    f = LinearStep(eig)
    z0 = {"z": torch.randn(3, len(eig), dtype=torch.float64)}
    res = ftle(f, z0, n_steps=60, k=3)
    assert res.log_stretch.shape == (3, 60, 3)
    np.testing.assert_allclose(res.largest.numpy(), math.log(top), atol=0.03)
    np.testing.assert_allclose(res.exponents.numpy(), np.log(eig[:3])[None].repeat(3, 0), atol=0.05)
    assert (res.largest < 0).all() if top < 1 else (res.largest > 0).all()
    # drift is ||z_{t+1} - z_t||
    d = (flat(res.states[1]) - flat(res.states[0])).norm(dim=1)
    np.testing.assert_allclose(res.drift[:, 0].numpy(), d.numpy(), rtol=1e-10)


def test_ftle_rejects_bad_arguments():
    f = LinearStep([0.5, 0.25])
    z0 = {"z": torch.randn(1, 2, dtype=torch.float64)}
    with pytest.raises(ValueError):
        ftle(f, z0, n_steps=0)
    with pytest.raises(ValueError):
        ftle(f, z0, n_steps=2, k=3)
    with pytest.raises(ValueError):
        ftle(f, z0, n_steps=2, burn_in=2)


@pytest.mark.parametrize("name", ["hrm", "trm_mlp", "trm_attn", "unitf"])
def test_jvp_matches_finite_differences(name):
    torch.manual_seed(0)
    model = build_model(TINY[name]).double().eval()
    x = torch.randint(1, V, (2, L))
    sm = model_step_map(model, x)
    z = {k: v + 0.1 * torch.randn_like(v) for k, v in sm.init.items()}
    tangents = random_tangents(z, 2)
    out, jv = jvp_step(sm.step, z, tangents)
    names = sorted(z)
    eps = 1e-3  # rotary embedding and RMS norm compute in float32 even in a float64 model
    for j in range(2):
        dz = tangents[:, :, j]
        plus = flat(sm.step({n: z[n] + eps * v for n, v in _split(dz, z, names).items()}))
        minus = flat(sm.step({n: z[n] - eps * v for n, v in _split(dz, z, names).items()}))
        fd = (plus - minus) / (2 * eps)
        err = (jv[:, :, j] - fd).norm(dim=1) / fd.norm(dim=1)
        assert (err < 1e-2).all(), err  # a wrong JVP is off by O(1)
    np.testing.assert_allclose(flat(out).detach().numpy(), flat(sm.step(z)).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_jvp_matches_finite_differences_in_float64():
    """A nonlinear two-state map computed wholly in float64: JVP and central difference agree to 1e-8."""
    g = torch.Generator().manual_seed(3)
    W1, W2 = (torch.randn(5, 5, generator=g, dtype=torch.float64) for _ in range(2))

    def f(s):
        return {"a": torch.tanh(s["a"] @ W1 + s["b"]), "b": torch.sin(s["a"] * s["b"]) @ W2}

    z = {"a": torch.randn(3, 5, generator=g, dtype=torch.float64), "b": torch.randn(3, 5, generator=g, dtype=torch.float64)}
    t = random_tangents(z, 3)
    _, jv = jvp_step(f, z, t)
    eps = 1e-6
    for j in range(3):
        dz = _split(t[:, :, j], z, sorted(z))
        fd = (flat(f({n: z[n] + eps * dz[n] for n in z})) - flat(f({n: z[n] - eps * dz[n] for n in z}))) / (2 * eps)
        np.testing.assert_allclose(jv[:, :, j].numpy(), fd.numpy(), atol=1e-8)


def _split(vec, like, names):
    from interp.stability.lyapunov import unflat

    return unflat(vec, like, names)


@pytest.mark.parametrize("name", ["hrm", "trm_mlp", "trm_attn", "unitf"])
def test_step_map_reproduces_segment(name):
    torch.manual_seed(1)
    model = build_model(TINY[name]).eval()
    x = torch.randint(1, V, (3, L))
    sm = model_step_map(model, x)
    cyc = model_step_map(model, x, unit="cycle")
    with torch.no_grad():
        ref, _ = model.segment(model.init_states(3), x, seg=0)
        ref, _ = model.segment(ref, x, seg=1)
        mine = sm.step(sm.step(sm.init))
        by_cycle = cyc.init
        for _ in range(2 * cyc.cycles_per_segment):
            by_cycle = cyc.step(by_cycle)
    for k in ref:
        torch.testing.assert_close(mine[k], ref[k])
        torch.testing.assert_close(by_cycle[k], ref[k])
    assert cyc.steps_for(2, "cycle") == 2 * cyc.cycles_per_segment


def test_step_map_rejects_unknown_family_and_unit():
    from models import TransformerConfig

    model = build_model(TransformerConfig(**COMMON, num_layers=1))
    x = torch.randint(1, V, (1, L))
    with pytest.raises(ValueError, match="no step map"):
        model_step_map(model, x)
    with pytest.raises(ValueError, match="unit"):
        model_step_map(build_model(TINY["hrm"]), x, unit="bogus")


def test_auc_hand_computed():
    # failed scores 0.9, 0.4 vs solved 0.5, 0.1: pairs ranked right 3 of 4
    assert roc_auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.5, 0.1])) == pytest.approx(0.75)
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.1, 0.2])))
    df = pd.DataFrame({"ftle": [0.9, 0.4, 0.5, 0.1], "residual": [1.0, 1.0, 1.0, 1.0], "q_halt": [-0.9, -0.4, -0.5, -0.1],
                       "solved": [False, False, True, True]})
    auc = failure_auc(df).set_index("predictor")["auc"]
    assert auc["ftle"] == pytest.approx(0.75)
    assert auc["q_halt"] == pytest.approx(0.75)  # negated before scoring
    assert auc["residual"] == pytest.approx(0.5)  # all ties


def test_outcome_split_means_and_intervals():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"ftle": np.r_[rng.normal(-1, 0.1, 50), rng.normal(0.5, 0.1, 30)],
                       "residual": rng.random(80), "q_halt": rng.normal(size=80), "solved": np.r_[[True] * 50, [False] * 30]})
    s = outcome_split(df).set_index(["predictor", "outcome"])
    assert s.loc[("ftle", "solved"), "n"] == 50 and s.loc[("ftle", "failed"), "n"] == 30
    assert s.loc[("ftle", "solved"), "mean"] == pytest.approx(df["ftle"][:50].mean())
    assert s.loc[("ftle", "failed"), "median"] == pytest.approx(df["ftle"][50:].median())
    r = s.loc[("ftle", "failed")]
    assert r["ci_low"] < r["mean"] < r["ci_high"]
    md = stability_markdown(df, {"unit": "segment"})
    assert "| largest FTLE |" in md and "solved (n=50)" in md


@pytest.mark.parametrize("name", ["hrm", "trm_mlp"])
def test_stability_end_to_end_on_tiny_models(name, tmp_path):
    torch.manual_seed(2)
    model = build_model(TINY[name])
    x = torch.randint(1, V, (5, L))
    y = torch.randint(1, V, (5, L))
    y[0] = model(x[:1]).argmax(-1)[0]  # puzzle 0 is "solved" by construction
    res = stability(model, x, y, k=3, batch_size=2)
    pp, ps = res.per_puzzle, res.per_step
    assert list(pp["puzzle"]) == [0, 1, 2, 3, 4]
    assert {"ftle", "ftle_1", "ftle_2", "residual", "drift_final", "q_halt", "solved", "n_wrong"} <= set(pp.columns)
    assert len(ps) == 5 * model.cfg.halt_max_steps
    assert bool(pp.loc[0, "solved"]) and np.isfinite(pp["ftle"]).all()
    # the exponent is the mean per-step log stretch of the leading direction
    np.testing.assert_allclose(pp["ftle"], ps.groupby("puzzle")["log_stretch"].mean().to_numpy(), rtol=1e-9)
    # the halting logit at the end matches the model's own segment output
    with torch.no_grad():
        s = model.init_states(5)
        for seg in range(model.cfg.halt_max_steps):
            s, out = model.segment(s, x, seg=seg)
    np.testing.assert_allclose(pp["q_halt"], out.q_halt.numpy(), rtol=1e-4, atol=1e-5)
    cyc = stability(model, x, y, k=1, unit="cycle")
    assert cyc.per_step["step"].max() == model.cfg.halt_max_steps * model.cfg.H_cycles
    from interp.stability.report import write_stability_report

    paths = write_stability_report(res, tmp_path / "out")
    assert paths["figure"].exists() and "ROC AUC" in paths["report"].read_text()
    assert pd.read_csv(paths["per_puzzle"]).shape[0] == 5
