"""Probes: targets against brute force, planted linear signals, puzzle-level splits, PCA vs SVD, UMAP."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from common.io import write_html
from probes.features import FeatureError, candidate_counts, cell_values, is_given, prediction_correct, sudoku_targets
from probes.linear import COLUMNS, ProbeError, group_splits, probe_curves, probe_step, probes_from_trace
from probes.projection import (
    ProjectionError,
    pca_from_trace,
    pca_trajectories,
    pool_states,
    trajectory_figure,
    umap_trajectories,
)
from tasks.sudoku.grid import encode_grid
from tasks.sudoku.generate import generate


@pytest.fixture(scope="module")
def sudoku4():
    recs = generate(30, size=4, seed=1)
    x = encode_grid(np.stack([r.puzzle for r in recs])).astype(np.int64)
    y = encode_grid(np.stack([r.solution for r in recs])).astype(np.int64)
    return x, y


# ----------------------------------------------------------------------------- features


def _brute_candidates(tokens: np.ndarray) -> np.ndarray:
    S = int(round(len(tokens) ** 0.5))
    n = int(round(S ** 0.5))
    g = tokens.reshape(S, S)
    out = np.zeros((S, S), int)
    for r in range(S):
        for c in range(S):
            if g[r, c] >= 2:
                out[r, c] = 1
                continue
            seen = set(g[r]) | set(g[:, c]) | set(g[r // n * n:(r // n + 1) * n, c // n * n:(c // n + 1) * n].reshape(-1))
            out[r, c] = sum(1 for d in range(2, S + 2) if d not in seen)
    return out.reshape(-1)


def test_features_against_brute_force(sudoku4):
    x, y = sudoku4
    recs = generate(3, size=9, seed=0)
    x9 = encode_grid(np.stack([r.puzzle for r in recs])).astype(np.int64)
    for arr in (x, x9):
        cc = candidate_counts(arr)
        for i in range(len(arr)):
            assert cc[i].tolist() == _brute_candidates(arr[i]).tolist()
    assert is_given(x).tolist() == (x >= 2).astype(int).tolist()
    assert cell_values(y).min() == 0 and cell_values(y).max() == 3
    assert np.array_equal(cell_values(y) + 2, y)
    preds = np.stack([x, y], axis=1)  # step 0 = the puzzle, step 1 = the solution
    corr = prediction_correct(preds, y)
    assert corr[:, 1].all() and np.array_equal(corr[:, 0], (x == y).astype(int))
    t = sudoku_targets(x, y, preds)
    assert set(t) == {"given", "candidates", "value", "correct"} and t["correct"].shape == (30, 2, 16)
    assert set(sudoku_targets(x)) == {"given", "candidates"}
    with pytest.raises(FeatureError, match="complete solutions"):
        cell_values(x)
    with pytest.raises(FeatureError, match="S\\*S cells"):
        candidate_counts(np.zeros((2, 10), np.int64))
    with pytest.raises(FeatureError, match="needs labels"):
        sudoku_targets(x, None, preds)


# ----------------------------------------------------------------------------- linear probes


def _planted(N=40, L=16, D=16, T=4, planted=(1, 3), n_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=(N, L))
    W = rng.normal(size=(n_classes, D)) * 3.0
    states = rng.normal(size=(N, T, L, D)).astype(np.float32)
    for t in planted:
        states[:, t] += W[y]
    return states, y


def test_probes_find_planted_signal_and_beat_control():
    states, y = _planted()
    df = probe_curves(states, {"value": y}, n_splits=4, max_iter=100)
    assert list(df.columns) == COLUMNS and len(df) == 4
    acc = df.set_index("step")
    for t in (1, 3):
        assert acc.loc[t, "accuracy"] > 0.95
        assert acc.loc[t, "control_accuracy"] < 0.4
    for t in (0, 2):
        assert acc.loc[t, "accuracy"] < 0.4  # chance is 0.25
    assert (df["control_accuracy"] < 0.4).all()
    assert (df["n_test"] == 40 * 16).all() and (df["n_splits"] == 4).all()
    # list-of-steps and dict inputs give the same table; steps= picks a subset
    df_list = probe_curves([states[:, t] for t in range(4)], {"value": y}, n_splits=4, max_iter=100, steps=[1, 2],
                           control=False)
    df_dict = probe_curves({t: states[:, t] for t in (1, 2)}, {"value": y}, n_splits=4, max_iter=100, control=False)
    pd.testing.assert_frame_equal(df_list, df_dict)
    np.testing.assert_allclose(df_list["accuracy"], df.set_index("step").loc[[1, 2], "accuracy"].to_numpy())


def test_per_step_targets_masks_and_subsampling():
    states, y = _planted(T=3, planted=(0, 1, 2))
    per_step = np.stack([y, y, (y + 1) % 4], axis=1)  # step 2 target no longer matches the signal
    mask = np.zeros((40, 16), bool)
    mask[:, :8] = True
    df = probe_curves(states, {"v": per_step}, masks=mask, max_cells=200, n_splits=3, max_iter=100)
    assert (df["n_test"] == 200).all()
    a = df.set_index("step")["accuracy"]
    assert a[0] > 0.9 and a[1] > 0.9 and a[2] > 0.9  # a relabelled class is still linearly readable
    const = probe_curves(states[:, :1], {"c": np.zeros((40, 16), int)}, n_splits=3)
    assert const["accuracy"].iloc[0] == 1.0 and const["n_classes"].iloc[0] == 1


def test_group_kfold_never_splits_a_puzzle():
    groups = np.repeat(np.arange(12), 7)  # 12 puzzles x 7 cells
    splits = group_splits(groups, n_splits=5)
    assert len(splits) == 5
    seen_test = np.concatenate([te for _, te in splits])
    assert sorted(seen_test.tolist()) == list(range(len(groups)))  # each sample tested once
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
        assert len(set(train) & set(test)) == 0
    assert len(group_splits(np.array([0, 0, 1, 1]), n_splits=5)) == 2  # capped at the number of groups
    with pytest.raises(ProbeError, match="at least 2 puzzles"):
        group_splits(np.zeros(5))


def test_puzzle_split_prevents_leakage_between_augmented_copies():
    rng = np.random.default_rng(0)
    base, copies, L, D = 10, 4, 9, 256
    base_states = rng.normal(size=(base, L, D))
    base_y = rng.integers(0, 3, size=(base, L))  # arbitrary labels: nothing general to learn
    X = np.repeat(base_states, copies, axis=0) + 0.01 * rng.normal(size=(base * copies, L, D))
    y = np.repeat(base_y, copies, axis=0)
    puzzle = np.repeat(np.arange(base), copies)
    leaky = probe_step(X.reshape(-1, D), y.reshape(-1), np.repeat(np.arange(base * copies), L), n_splits=4, control=False)
    fair = probe_step(X.reshape(-1, D), y.reshape(-1), np.repeat(puzzle, L), n_splits=4, control=False)
    assert leaky["accuracy"] > 0.9  # copies of the test puzzle sat in training
    assert fair["accuracy"] < 0.6


def test_probe_errors():
    states, y = _planted(T=2, planted=(1,))
    with pytest.raises(ProbeError, match=r"must be \[N=40, L=16\]"):
        probe_curves(states, {"v": y[:, :3]})
    with pytest.raises(ProbeError, match="groups must have shape"):
        probe_curves(states, {"v": y}, groups=np.arange(3))
    with pytest.raises(ProbeError, match="steps"):
        probe_curves(states, {"v": y}, steps=[5])
    with pytest.raises(ProbeError, match=r"\[N, T, L, D\]"):
        probe_curves(states[0], {"v": y})
    bad = states.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ProbeError, match="NaN"):
        probe_curves(bad, {"v": y}, steps=[0])


# ----------------------------------------------------------------------------- trace adapter


def _sudoku_trace(x, y, T=4, planted=(2, 3), D=12):
    from interp.tracing.synthetic import synthetic_trace

    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, D)) * 3
    states = rng.normal(size=(len(x), T, 16, D)).astype(np.float32)
    for t in planted:
        states[:, t] += W[y - 2]
    preds = np.stack([x] * (T - 1) + [y], axis=1)
    return synthetic_trace({"z_H": states}, predictions=preds, labels=y, inputs=x), states


def test_probes_and_pca_from_trace(sudoku4):
    x, y = sudoku4
    trace, states = _sudoku_trace(x, y)
    df = probes_from_trace(trace, state="z_H", targets=["value", "candidates"], n_splits=3, max_iter=100)
    v = df[df["target"] == "value"].set_index("step")["accuracy"]
    assert v[2] > 0.9 and v[3] > 0.9 and v[0] < 0.5
    blanks = int((x < 2).sum())
    assert (df["n_test"] == blanks).all()  # blanks only by default
    default = probes_from_trace(trace, state="z_H", steps=[3], n_splits=3, max_iter=50)
    assert set(default["target"]) == {"value", "candidates", "correct"}
    with pytest.raises(ProbeError, match="not available"):
        probes_from_trace(trace, targets=["colour"])
    p = pca_from_trace(trace, state="z_H")
    ref = pca_trajectories(states, correct=trace.metric("exact"))
    pd.testing.assert_frame_equal(p, ref)
    assert p.loc[p["step"] == 3, "correct"].all() and not p.loc[p["step"] == 0, "correct"].any()


# ----------------------------------------------------------------------------- projections


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Flip columns of ``a`` to match the sign of ``b``."""
    return a * np.sign((a * b).sum(axis=0))


@pytest.mark.parametrize("pool", ["mean", "flatten"])
def test_pca_matches_numpy_svd(pool):
    rng = np.random.default_rng(1)
    states = rng.normal(size=(6, 5, 4, 3)) + np.linspace(0, 3, 5)[None, :, None, None]
    df = pca_trajectories(states, pool=pool, n_components=2, correct=np.array([1, 0, 1, 0, 1, 0], bool))
    X = states.mean(axis=2) if pool == "mean" else states.reshape(6, 5, -1)
    X = X.reshape(30, -1)
    Xc = X - X.mean(axis=0)
    _, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    ref = Xc @ Vt[:2].T
    got = df[["pc1", "pc2"]].to_numpy()
    np.testing.assert_allclose(_align(got, ref), ref, atol=1e-8)
    np.testing.assert_allclose(df.attrs["explained_variance_ratio"], (S[:2] ** 2) / (S ** 2).sum(), rtol=1e-8)
    assert df["puzzle"].tolist()[:6] == [0] * 5 + [1] and df["step"].tolist()[:6] == [0, 1, 2, 3, 4, 0]
    assert df.loc[df["puzzle"] == 0, "correct"].all() and not df.loc[df["puzzle"] == 1, "correct"].any()


def test_pool_and_pca_errors():
    with pytest.raises(ProjectionError, match="pool must be"):
        pool_states(np.zeros((2, 2, 2, 2)), "max")
    with pytest.raises(ProjectionError, match=r"\[N puzzles, T steps"):
        pca_trajectories(np.zeros((2, 2, 2)))
    with pytest.raises(ProjectionError, match="n_components"):
        pca_trajectories(np.random.default_rng(0).normal(size=(2, 2, 2, 2)), n_components=5)
    with pytest.raises(ProjectionError, match="correct must be"):
        pca_trajectories(np.random.default_rng(0).normal(size=(2, 3, 2, 2)), correct=np.ones(5, bool))


def test_trajectory_figure(tmp_path):
    rng = np.random.default_rng(0)
    df = pca_trajectories(rng.normal(size=(4, 6, 3, 5)), correct=rng.random((4, 6)) > 0.5)
    import plotly.graph_objects as go

    fig = trajectory_figure(df)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert names == ["trajectory", "step", "correct", "wrong", "unknown"]
    assert [t.visible for t in fig.data] == [True, True, False, False, False]
    lines = fig.data[0]
    assert sum(v is None for v in lines.x) == 4 and len(lines.x) == 4 * 7  # one break per puzzle
    n_corr = len(fig.data[2].x) + len(fig.data[3].x)
    assert n_corr == 24 and len(fig.data[4].x) == 0
    fig2 = trajectory_figure(df, color_by="correct")
    assert [t.visible for t in fig2.data] == [True, False, True, True, True]
    assert "%" in fig.layout.xaxis.title.text  # explained variance in the axis title
    html = write_html(fig, tmp_path / "traj.html").read_text()
    assert '<script src="https://cdn.plot.ly' not in html and 'src="plotly.min.js"' in html  # offline, one copy
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000 and len(html) < 1_000_000
    with pytest.raises(ProjectionError, match="color_by"):
        trajectory_figure(df, color_by="norm")


def test_umap_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` raise ImportError
    with pytest.raises(ImportError, match=r"pip install recurse-interp\[umap\]"):
        umap_trajectories(np.zeros((3, 4, 2, 2)))


@pytest.mark.slow
def test_umap_projection_runs():
    pytest.importorskip("umap")
    states, _ = _planted(N=10, T=4, D=8, L=4)
    df = umap_trajectories(states, n_neighbors=5, seed=0)
    assert list(df.columns) == ["puzzle", "step", "umap1", "umap2", "correct"]
    assert len(df) == 40 and np.isfinite(df[["umap1", "umap2"]].to_numpy()).all()
    fig = trajectory_figure(df)
    assert fig.layout.xaxis.title.text == "umap1"
