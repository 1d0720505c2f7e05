"""Ablation, patching and the model-based fixed-point probes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp import TraceError, ablate, fixed_point_residual, multiple_fixed_points, one_unknown_cell_probe, patch
from interp.interventions.fixed_point import cluster_by_distance
from interp.interventions.ablation import final_outputs, slow_ablation_table
from helpers.tiny_models import tiny_hrm, tiny_hrm_lm


@pytest.fixture(scope="module")
def hrm():
    torch.manual_seed(0)
    return tiny_hrm(H_cycles=2, L_cycles=2, halt_max_steps=2).eval()


@pytest.fixture(scope="module")
def puzzles():
    g = torch.Generator().manual_seed(5)
    y = torch.randint(2, 6, (6, 16), generator=g)
    x = torch.where(torch.rand(6, 16, generator=g) < 0.5, torch.ones_like(y), y)
    return x, y


def _manual_hrm_logits(model, x, freeze_H=False):
    """HRM written out by hand; with ``freeze_H`` z_H stays at H_init (the H-module never fires)."""
    rot, emb = model.rotary_tables(), model.embed(x)
    st = model.init_states(x.shape[0])
    z_H, z_L = st["z_H"], st["z_L"]
    with torch.no_grad():
        for _ in range(model.cfg.halt_max_steps):
            for _i in range(model.cfg.H_cycles):
                for _j in range(model.cfg.L_cycles):
                    z_L = model.L_level(z_L, z_H + emb, rot)
                if not freeze_H:
                    z_H = model.H_level(z_H, z_L, rot)
    return model.decode(z_H)


def test_freezing_the_slow_module_equals_a_run_without_H_updates(hrm, puzzles):
    x, y = puzzles
    res = ablate(hrm, x, y, target="slow", mode="freeze_init")
    assert len(res.hooks) == 2 * 2 and all("hook_z_H" in h for h in res.hooks)
    manual = _manual_hrm_logits(hrm, x, freeze_H=True)
    np.testing.assert_array_equal(final_outputs(res.ablated)["pred"], manual.argmax(-1).numpy())
    np.testing.assert_array_equal(final_outputs(res.clean)["pred"], _manual_hrm_logits(hrm, x).argmax(-1).numpy())
    t = res.table()
    assert t["answer_changed"].any()  # the ablation changes the output
    assert (t["ce_ablated"] != t["ce_clean"]).all()
    s = res.summary()
    assert s["delta_ce"] == pytest.approx(float((t["ce_ablated"] - t["ce_clean"]).mean()))
    # the ablated trace shows z_H pinned at H_init after every step
    assert (res.ablated.metric("delta.z_H") == 0).all()


def test_zero_mean_and_skip_modes(hrm, puzzles):
    x, y = puzzles
    zero = ablate(hrm, x, y, target="z_H", mode="zero")
    assert (zero.ablated.metric("norm.z_H")[:, 2:] == 0).all()
    # mean mode replaces each hook by its clean mean over the puzzles
    _, cache = hrm.run_with_cache(x)
    mean = ablate(hrm, x, y, target="z_H", mode="mean", steps=[2])
    assert mean.hooks == ["seg0.h0.hook_z_H"]
    clean_mean = cache["seg0.h0.hook_z_H"].mean(0)
    with torch.no_grad():
        ref = hrm.run_with_hooks(x, fwd_hooks=[("seg0.h0.hook_z_H", lambda t, hook: clean_mean.expand_as(t))])
    np.testing.assert_array_equal(final_outputs(mean.ablated)["pred"], ref.argmax(-1).numpy())
    # skipping every H update is the same as freezing it at its initial value
    skip = ablate(hrm, x, y, target="slow", mode="skip")
    freeze = ablate(hrm, x, y, target="slow", mode="freeze_init")
    np.testing.assert_array_equal(skip.ablated.metric("ce"), freeze.ablated.metric("ce"))
    # skipping only the last update leaves everything before it untouched
    last = ablate(hrm, x, y, target="slow", mode="skip", steps=[11])
    np.testing.assert_array_equal(last.ablated.metric("ce")[:, :11], last.clean.metric("ce")[:, :11])
    table = slow_ablation_table(hrm, x, y)
    assert list(table["mode"]) == ["freeze_init", "zero", "mean"] and "delta_ce" in table
    with pytest.raises(TraceError, match="mode"):
        ablate(hrm, x, y, mode="nope")
    with pytest.raises(TraceError, match="neither a state"):
        ablate(hrm, x, y, target="nonsense")
    with pytest.raises(TraceError, match="carried state"):
        ablate(hrm, x, y, target="seg0.*.hook_z_L", mode="freeze_init")


def test_patching(hrm, puzzles):
    x, y = puzzles
    a, b = x[:3], x[3:]
    same = patch(hrm, a, a, "seg1.h0.hook_z_H", target_labels=y[:3])
    np.testing.assert_array_equal(same.patched.metric("ce"), same.target.metric("ce"))  # A into A: no-op
    assert not same.table()["answer_changed"].any()
    # the full final answer state of A copied into B: B answers exactly what A answers
    final = patch(hrm, a, b, "seg1.h1.hook_z_H", target_labels=y[3:])
    np.testing.assert_array_equal(final_outputs(final.patched)["pred"], final_outputs(final.source)["pred"])
    assert final.table()["equals_source"].all() and final.summary()["equals_source"] == 1.0
    # a mid-run patch of one position: the step-0 state is a mix of target and source
    part = patch(hrm, a, b, "seg0.h0.l0.hook_z_L", positions=[3])
    assert part.positions == [3]
    cos = "cos.z_H.z_L"  # (states are RMS-normed at every position, so norms cannot tell them apart)
    full = patch(hrm, a, b, "seg0.h0.l0.hook_z_L")
    np.testing.assert_allclose(full.patched.metric(cos)[:, 0], full.source.metric(cos)[:, 0], rtol=1e-6)
    p0, t0, f0 = part.patched.metric(cos)[:, 0], part.target.metric(cos)[:, 0], full.patched.metric(cos)[:, 0]
    assert (p0 != t0).all() and (p0 != f0).all()  # one position replaced: neither the target's nor the source's
    # a single source is broadcast to every target
    one = patch(hrm, a[:1], b, "seg1.h1.hook_z_H")
    assert (final_outputs(one.patched)["pred"] == final_outputs(one.source)["pred"][0]).all()
    with pytest.raises(TraceError, match="no hook point"):
        patch(hrm, a, b, "seg9.nothing")
    with pytest.raises(TraceError, match="pair up"):
        patch(hrm, a, x, "seg1.h1.hook_z_H")


def test_hrm_lm_slow_freeze_equals_closed_slow_gate():
    model = tiny_hrm_lm().eval()
    tokens = torch.randint(0, 256, (3, 10), generator=torch.Generator().manual_seed(0))
    frozen = ablate(model, tokens, target="slow", mode="freeze_init")
    gate = ablate(model, tokens, target="gate_slow", mode="zero")  # slow = (1-g) slow + g cand = slow
    np.testing.assert_allclose(frozen.ablated.segment_metric("ce"), gate.ablated.segment_metric("ce"), rtol=1e-6)
    assert frozen.summary()["answer_changed"] > 0
    res = fixed_point_residual(model, tokens)
    assert {"residual.fast", "residual.slow"} <= set(res.columns)


def test_fixed_point_residual_matches_one_more_segment(hrm, puzzles):
    x, y = puzzles
    df = fixed_point_residual(hrm, x, y)
    st = hrm.init_states(x.shape[0])
    with torch.no_grad():
        for s in range(2):
            st, out = hrm.segment(st, x, seg=s)
        nxt, out2 = hrm.segment(st, x, seg=2)
    expect = (nxt["z_H"] - st["z_H"]).flatten(1).norm(dim=1) / st["z_H"].flatten(1).norm(dim=1)
    np.testing.assert_allclose(df["residual.z_H"], expect.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(df["answer_changed"], (out.logits.argmax(-1) != out2.logits.argmax(-1)).any(1).numpy())
    assert df["exact"].dtype == bool


def test_multiple_fixed_points(hrm, puzzles):
    x, y = puzzles
    none = multiple_fixed_points(hrm, x[:2], y[:2], n_inits=3, noise=0.0)
    assert (none.per_puzzle()["n_fixed_points"] == 1).all()  # identical starts -> one end point
    some = multiple_fixed_points(hrm, x[:2], y[:2], n_inits=4, noise=2.0, tol=1e-6)
    assert len(some.runs) == 8 and set(some.runs["init"]) == {0, 1, 2, 3}
    assert (some.per_puzzle()["n_fixed_points"] > 1).all()  # untrained model: noisy starts end apart
    assert "exact" in some.clusters and some.clusters["size"].sum() == 8
    pts = np.array([[1, 0], [1.01, 0], [0, 5], [0, 5.02], [1.005, 0]])
    assert list(cluster_by_distance(pts, 0.05)) == [0, 0, 1, 1, 0]


def test_one_unknown_cell_probe_end_to_end(hrm):
    g = torch.Generator().manual_seed(2)
    solutions = torch.randint(2, 6, (3, 16), generator=g)
    probe = one_unknown_cell_probe(hrm, solutions, cells=2, seed=0)
    t = probe.table
    assert len(t) == 6 and (t.groupby("puzzle").size() == 2).all()
    # independent check: rebuild each probe puzzle and run the model directly
    for _, r in t.iterrows():
        x = solutions[r["puzzle"]].clone()
        x[r["cell"]] = 1
        with torch.no_grad():
            pred = hrm(x[None]).argmax(-1)[0]
        assert r["predicted_token"] == pred[r["cell"]].item()
        assert r["solved"] == bool((pred == solutions[r["puzzle"]]).all())
        assert r["true_token"] == solutions[r["puzzle"], r["cell"]].item()
    assert 0.0 <= probe.solved_fraction <= 1.0 and probe.summary()["n_probes"] == 6
    every = one_unknown_cell_probe(hrm, solutions[:1], cells="all")
    assert sorted(every.table["cell"]) == list(range(16))
    with pytest.raises(TraceError, match="complete grids"):
        one_unknown_cell_probe(hrm, torch.ones(1, 16, dtype=torch.long))
