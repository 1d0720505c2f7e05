"""Sparse autoencoders per step: planted features recovered, feature tracking shapes, naming, clashes, viewer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.analyses.sudoku_conflicts import sudoku_conflicts
from probes.sae import SparseAutoencoder, encode_array, train_sae
from probes.sae_features import (cell_clashes, cell_targets, decided_cells, feature_trajectories, name_features,
                                 sae_inputs_from_trace, selectivity)
from helpers.tiny_models import tiny_trm

SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def _planted(n=20000, d=32, m=16, seed=0):
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(m, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    act = (rng.random((n, m)) < 2 / m) * rng.uniform(0.5, 1.5, (n, m))
    return act @ dirs + 0.01 * rng.normal(size=(n, d)) + 3.0, dirs


@pytest.mark.parametrize("kw", [{"l1": 1e-2}, {"k": 3}])
def test_sae_recovers_planted_directions(kw):
    torch.manual_seed(0)
    x, dirs = _planted()
    res = train_sae(x, 32, steps=1500, **kw)
    W = res.sae.W_dec.detach().numpy()
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 1.0, atol=1e-5)  # decoder-norm constraint
    best = np.abs(dirs @ W.T).max(1)
    assert (best > 0.9).mean() >= 0.8, np.sort(best)
    assert res.stats["fve"] > 0.9 and res.stats["l0"] < 10
    assert res.history[-1]["mse"] < res.history[0]["mse"]


def test_sae_encode_shapes_and_topk():
    sae = SparseAutoencoder(8, 12, k=2)
    a = encode_array(sae, np.random.default_rng(0).normal(size=(3, 4, 5, 8)))
    assert a.shape == (3, 4, 5, 12) and a.dtype == np.float32
    assert ((a > 0).sum(-1) <= 2).all()
    with pytest.raises(ValueError):
        SparseAutoencoder(8, 4, k=5)
    with pytest.raises(ValueError):
        train_sae(np.zeros(5), 4)


def test_feature_trajectories_shapes():
    acts = np.random.default_rng(0).random((3, 5, 81, 7)).astype(np.float32)
    df = feature_trajectories(acts, [1, 4])
    assert len(df) == 3 * 5 * 2 and set(df.columns) == {"puzzle", "step", "feature", "mean", "max", "n_active"}
    row = df[(df.puzzle == 2) & (df.step == 3) & (df.feature == 4)].iloc[0]
    assert row["mean"] == pytest.approx(acts[2, 3, :, 4].mean())
    assert len(feature_trajectories(acts)) == 3 * 5 * 7


def test_naming_finds_planted_feature():
    rng = np.random.default_rng(1)
    N, T, L, F = 6, 4, 81, 10
    target = rng.random((N, T, L)) < 0.3
    acts = rng.random((N, T, L, F)) * (rng.random((N, T, L, F)) < 0.5)
    acts[..., 7] = target * rng.uniform(0.5, 1.0, (N, T, L))  # feature 7 fires exactly on the target
    mask = np.ones((N, T, L), bool)
    named = name_features(acts, {"planted": (target, mask)})
    r = named.iloc[0]
    assert r["target"] == "planted" and r["feature"] == 7 and r["auc"] == pytest.approx(1.0)
    s = selectivity(acts.reshape(-1, F), target.reshape(-1))
    assert s.loc[7, "corr"] > 0.8 and abs(s.loc[0, "auc"] - 0.5) < 0.05
    # hand-checked AUC: positives 3, 1 vs negatives 2, 0 -> 3 of 4 pairs
    s2 = selectivity(np.array([[3.0], [1.0], [2.0], [0.0]]), np.array([True, True, False, False]))
    assert s2.loc[0, "auc"] == pytest.approx(0.75)


def test_cell_clashes_agree_with_conflict_counts():
    sol = np.array([int(c) + 1 for c in SOLUTION])
    assert not cell_clashes(sol).any()
    bad = sol.copy()
    bad[0] = bad[1]  # row 0 now repeats a digit: cells 0 and 1 clash (and column/box mates of the new digit)
    c = cell_clashes(bad)
    assert c[0] and c[1] and c.sum() >= 2
    rng = np.random.default_rng(0)
    grids = rng.integers(1, 11, size=(50, 81))
    assert ((sudoku_conflicts(grids, count_non_digits=False) > 0) == cell_clashes(grids).any(-1)).all()


def test_cell_targets_and_decided():
    p = np.array([[[2, 3], [4, 3], [4, 3]]])  # [N=1, T=3, L=2]
    np.testing.assert_array_equal(decided_cells(p)[0], [[False, True], [True, True], [True, True]])
    x = np.full((1, 81), 1)
    x[0, :40] = np.array([int(c) + 1 for c in SOLUTION])[:40]
    preds = np.broadcast_to(np.array([int(c) + 1 for c in SOLUTION]), (1, 3, 81))
    t = cell_targets(x, preds, preds[:, 0])
    assert {"given", "decided", "clash", "correct", "digit_1", "digit_9"} <= set(t)
    target, mask = t["decided"]
    assert target.shape == mask.shape == (1, 3, 81) and mask[0, 0, 40] and not mask[0, 0, 0]
    assert t["correct"][0].all() and not t["clash"][0].any()


def test_sae_inputs_from_trace_and_viewer(tmp_path):
    from common.io import write_html
    from interp.tracing.tracer import trace
    from interp.views.sae_viewer import feature_trajectory_figure

    torch.manual_seed(0)
    model = tiny_trm(hidden_size=16, L_cycles=1)
    x = np.random.default_rng(0).integers(1, 11, size=(3, 81))
    tr = trace(model, x)
    states, steps = sae_inputs_from_trace(tr, "answer")
    assert states.shape == (3, 4, 81, 16) and len(steps) == 4  # y updated once per cycle: 2 segments x 2 cycles
    res = train_sae(states.reshape(-1, 16), 24, steps=50)
    acts = encode_array(res.sae, states)
    assert acts.shape == (3, 4, 81, 24)
    fig = feature_trajectory_figure(acts, [0, 5], names={0: "test"}, predictions=tr.predictions[:, steps], steps=steps)
    assert len(fig.frames) == 4
    path = write_html(fig, tmp_path / "sae.html")
    assert path.stat().st_size > 10_000
    with pytest.raises(ValueError):
        feature_trajectory_figure(acts, [99])
