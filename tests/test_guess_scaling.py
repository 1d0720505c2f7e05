"""Guess scaling: perturbation round trips, equivariant oracles, voting gains, the runner and its figures."""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest
import torch
from torch import nn

from common.io import write_html
from common.stats import bootstrap_ci, wilson_interval
from interp.guess_scaling.candidates import Candidates, collect_candidates
from interp.guess_scaling.curves import COLUMNS, guess_scaling_curve, scaling_table
from interp.guess_scaling.errors import GuessScalingError
from interp.guess_scaling.perturbations import make_perturbations, maze_perturbations, sudoku_perturbations
from interp.guess_scaling.plots import guess_scaling_figure, plot_guess_scaling
from interp.guess_scaling.voting import ALL_RULES
from tasks.dihedral import dihedral_transform
from tasks.maze import GOAL, START, generate_maze, solve_maze
from tasks.sudoku.grid import decode_tokens, encode_grid
from tasks.sudoku.generate import generate
from tasks.sudoku.solver import solve



@pytest.fixture(scope="module")
def sudoku9():
    recs = generate(12, seed=3)
    x = encode_grid(np.stack([r.puzzle for r in recs])).astype(np.int64)
    y = encode_grid(np.stack([r.solution for r in recs])).astype(np.int64)
    return x, y


@pytest.fixture(scope="module")
def mazes():
    pairs = [generate_maze(11, rng=i, min_path_length=8) for i in range(4)]
    x = np.stack([p.reshape(-1) for p, _ in pairs]).astype(np.int64)
    y = np.stack([lab.reshape(-1) for _, lab in pairs]).astype(np.int64)
    return x, y


def _onehot_logits(tokens: np.ndarray, vocab: int) -> torch.Tensor:
    return torch.from_numpy(np.eye(vocab, dtype=np.float32)[tokens] * 10.0)


class SudokuSolverModel(nn.Module):
    """An exact, hence perfectly equivariant, 'model': the project's solver behind logits."""

    def __init__(self, vocab: int = 11):
        super().__init__()
        self.vocab = vocab

    def forward(self, x: torch.Tensor, n_segments: int | None = None):
        grids = decode_tokens(x.numpy())
        sol = np.stack([solve(g, max_solutions=1).solution for g in grids])
        tokens = encode_grid(sol).astype(np.int64)
        return _onehot_logits(tokens, self.vocab), torch.full((x.shape[0],), 2.0)


class NoisySolverModel(SudokuSolverModel):
    """Right answer, but corrupted on ~half of the inputs it sees (decided by a hash of the input)."""

    def forward(self, x: torch.Tensor, n_segments: int | None = None):
        logits, q = super().forward(x)
        tokens = logits.argmax(-1).numpy()
        for i, row in enumerate(x.numpy()):
            h = zlib.crc32(row.astype(np.uint8).tobytes())
            if h % 2:  # corrupt one cell with another digit
                cell, shift = (h >> 1) % 81, 1 + (h >> 8) % 8
                tokens[i, cell] = (tokens[i, cell] - 2 + shift) % 9 + 2
        return _onehot_logits(tokens, self.vocab), torch.zeros(x.shape[0])


class MazeSolverModel(nn.Module):
    def forward(self, x: torch.Tensor, n_segments: int | None = None):
        side = int(round(x.shape[1] ** 0.5))
        out = np.stack([solve_maze(r.reshape(side, side)).reshape(-1) for r in x.numpy()]).astype(np.int64)
        return _onehot_logits(out, 6)


# ----------------------------------------------------------------------------- perturbations


@pytest.mark.parametrize("preset", ["random", "cyclic", "digits", "geometric"])
def test_sudoku_perturbation_round_trip_and_maps(sudoku9, preset):
    x, y = sudoku9
    perts = sudoku_perturbations(6, preset, seed=1)
    assert perts[0].name in ("identity", "shift0")
    assert np.array_equal(perts[0].forward_tokens(x), x)
    for p in perts:
        xt = p.forward_tokens(x)
        assert np.array_equal(p.inverse_tokens(xt), x)
        assert np.array_equal(p.inverse_tokens(p.forward_tokens(y)), y)
        # independent check against the Sudoku helper's own token transform
        assert np.array_equal(xt, p.transform.apply_tokens(x))
        # probabilities: a one-hot of the transformed grid maps back to a one-hot of the original
        probs = np.eye(11, dtype=np.float32)[xt] * 0.7 + 0.3 / 11
        assert np.array_equal(p.inverse_probs(probs).argmax(-1), x)
        # random probabilities: mapped-back argmax == the helper's own inverse of the argmax
        rnd = np.random.default_rng(0).random((len(x), 81, 11))
        pred = rnd.argmax(-1)
        assert np.array_equal(p.inverse_tokens(pred), p.transform.apply_inverse_tokens(pred))
        assert np.array_equal(p.inverse_probs(rnd).argmax(-1), p.inverse_tokens(pred))
        assert np.array_equal(np.sort(p.inverse_probs(rnd).reshape(-1)), np.sort(rnd.reshape(-1)))
        # a transformed solution is still a valid solution of the transformed puzzle
        g = decode_tokens(p.forward_tokens(y))
        assert all(solve(decode_tokens(xt)[i], 1).solution.tolist() == g[i].tolist() for i in range(2))


def test_cyclic_preset_is_the_nine_shifts(sudoku9):
    x, _ = sudoku9
    perts = make_perturbations("sudoku", "cyclic", k=3)
    assert len(perts) == 9
    digits = x[x >= 2]
    for s, p in enumerate(perts):
        moved = p.forward_tokens(x)
        assert np.array_equal(moved[x >= 2], (digits - 2 + s) % 9 + 2)
        assert np.array_equal(moved[x < 2], x[x < 2])


def test_sudoku_4x4_perturbations():
    recs = generate(3, size=4, seed=0)
    x = encode_grid(np.stack([r.puzzle for r in recs])).astype(np.int64)
    for p in sudoku_perturbations(5, "random", seed=2, size=4):
        assert np.array_equal(p.inverse_tokens(p.forward_tokens(x)), x)
        probs = np.eye(6)[p.forward_tokens(x)]
        assert np.array_equal(p.inverse_probs(probs).argmax(-1), x)


def test_maze_perturbations_round_trip(mazes):
    x, y = mazes
    perts = maze_perturbations("dihedral+swap")
    assert len(perts) == 16 and perts[0].name == "identity"
    for p in perts:
        xt = p.forward_tokens(x)
        assert np.array_equal(p.inverse_tokens(xt), x)
        assert np.array_equal(p.inverse_probs(np.eye(6)[xt]).argmax(-1), x)
        # independent: per-row dihedral transform, then S/G exchange
        for i in range(len(x)):
            ref = dihedral_transform(x[i].reshape(11, 11), p.tid).reshape(-1)
            if p.swap:
                ref = np.where(ref == START, GOAL, np.where(ref == GOAL, START, ref))
            assert np.array_equal(xt[i], ref)


# ----------------------------------------------------------------------------- equivariant oracles


def test_equivariant_sudoku_oracle_gives_identical_answers(sudoku9):
    x, y = sudoku9
    model = SudokuSolverModel()
    perts = sudoku_perturbations(6, "random", seed=0)
    cands = collect_candidates([model, model], x, perts)
    assert cands.grids.shape == (len(x), 12, 81)
    assert (cands.grids == y[:, None]).all()  # every pass maps back to the label
    assert np.array_equal(cands.probs.argmax(-1), cands.grids)
    np.testing.assert_allclose(cands.confidence, 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    for rule in ALL_RULES:
        assert cands.solved(rule, y).all(), rule
    df = guess_scaling_curve([model, model], x, y, ks=(1, 2), perturbations="cyclic", n_boot=50)
    assert (df["accuracy"] == 1.0).all()


def test_equivariant_maze_oracle_gives_identical_answers(mazes):
    x, y = mazes
    cands = collect_candidates(MazeSolverModel(), x, maze_perturbations("dihedral+swap"))
    assert (cands.grids == y[:, None]).all()
    assert np.allclose(cands.confidence, 0.5)  # no halting head -> q_halt 0
    df = guess_scaling_curve(MazeSolverModel(), x, y, task="maze", perturbations="dihedral", strategies=("perturb",),
                             ks=(1, 8), rules=("majority", "oracle_any"), ci="wilson")
    assert (df["accuracy"] == 1.0).all() and df["n_passes"].tolist() == [1, 1, 8, 8]


def test_non_equivariant_model_gains_from_perturbation_voting(sudoku9):
    x, y = sudoku9
    df = guess_scaling_curve(NoisySolverModel(), x, y, strategies=("perturb",), ks=(1, 9),
                             perturbations="random", rules=("majority", "cell_majority", "oracle_any"), n_boot=200)
    acc = df.set_index(["rule", "k"])["accuracy"]
    assert acc[("majority", 1)] < 0.8  # the identity pass alone is often wrong
    assert acc[("majority", 9)] > acc[("majority", 1)]
    assert acc[("cell_majority", 9)] > acc[("majority", 1)]
    assert acc[("oracle_any", 9)] >= acc[("majority", 9)]
    # k=1 of every label-free rule is the identity pass itself
    single = collect_candidates(NoisySolverModel(), x, sudoku_perturbations(1))
    assert acc[("majority", 1)] == pytest.approx(float((single.grids[:, 0] == y).all(-1).mean()))


# ----------------------------------------------------------------------------- real models


@pytest.mark.parametrize("family", ["hrm", "trm"])
def test_candidates_from_real_models_match_forward_and_hooks(family):
    from models.config import HRMConfig, TRMConfig
    from models.registry import build_model

    common = dict(vocab_size=6, seq_len=16, hidden_size=32, num_heads=2, expansion=2.0, halt_max_steps=2)
    cfg = (HRMConfig(**common, H_layers=1, L_layers=1, H_cycles=1, L_cycles=1) if family == "hrm"
           else TRMConfig(**common, H_cycles=1, L_cycles=2, num_layers=1))
    model = build_model(cfg)
    with torch.no_grad():
        model.q_head.weight.normal_(0, 0.5)  # make q_halt depend on the input
    recs = generate(3, size=4, seed=0)
    x = encode_grid(np.stack([r.puzzle for r in recs])).astype(np.int64)
    perts = sudoku_perturbations(3, "random", seed=0, size=4)
    cands = collect_candidates(model, x, perts)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        logits, cache = model.run_with_cache(xt, names_filter="seg*.hook_q")
    assert np.array_equal(cands.grids[:, 0], logits.argmax(-1).numpy())
    np.testing.assert_allclose(cands.q_halt[:, 0], cache["seg1.hook_q"][:, 0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cands.q_continue[:, 0], cache["seg1.hook_q"][:, 1].numpy(), rtol=1e-5, atol=1e-6)
    # a perturbed pass: run the model on the disguised puzzle yourself and map back by hand
    p = perts[2]
    with torch.no_grad():
        lt = model(torch.from_numpy(p.forward_tokens(x))).numpy()
    back = np.empty_like(x)
    back[:, :] = np.argsort(p.token_map)[lt.argmax(-1)[:, p.target]]
    assert np.array_equal(cands.grids[:, 2], back)
    assert model.training  # mode restored
    assert cands.probs.shape == (3, 3, 16, 6)


# ----------------------------------------------------------------------------- runner, CIs


def _fake_candidates(n=40, seed=0):
    rng = np.random.default_rng(seed)
    M, P, L = 3, 8, 5
    y = rng.integers(2, 5, size=(n, L))
    grids = np.repeat(y[:, None], M * P, axis=1).copy()
    wrong = rng.random((n, M * P)) < 0.45
    grids[wrong, 0] = np.where(grids[wrong, 0] == 2, 3, 2)
    probs = np.eye(6, dtype=np.float32)[grids]
    return Candidates(grids, rng.normal(size=(n, M * P)).astype(np.float32), np.zeros((n, M * P), np.float32),
                      np.repeat(np.arange(M), P), np.tile(np.arange(P), M), [str(i) for i in range(P)], probs,
                      rng.random((n, M * P))), y


def test_scaling_table_columns_shape_and_ci():
    cands, y = _fake_candidates()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = scaling_table(cands, y, strategies=("perturb", "bootstrap"), ks=(1, 2, 3), ci="bootstrap", n_boot=300)
        comb = scaling_table(cands, y, strategies=("combined",), ks=(3, 6), n_boot=300)
    assert list(df.columns) == COLUMNS
    assert len(df) == 2 * 3 * len(ALL_RULES)
    assert (df["n"] == 40).all()
    assert ((df["ci_low"] <= df["accuracy"]) & (df["accuracy"] <= df["ci_high"])).all()
    assert df.loc[df["rule"].isin(["oracle_any", "augmented_hrm"]), "uses_label"].all()
    assert not df.loc[~df["rule"].isin(["oracle_any", "augmented_hrm"]), "uses_label"].any()
    row = df.set_index(["strategy", "rule", "k"])
    # combined: one guess = one perturbation on each of the 3 checkpoints, 3 passes
    c = comb.set_index(["rule", "k"])
    assert c.loc[("majority", 6), "n_passes"] == 6 and c.loc[("majority", 6), "guesses"] == 2
    assert c.loc[("majority", 3), "passes_per_guess"] == 3
    assert row.loc[("bootstrap", "majority", 3), "n_passes"] == 3
    # accuracy equals a direct computation on the chosen passes
    cols = cands.columns([(0, 0), (0, 1), (0, 2)])
    direct = (cands.grids[:, cols] == y[:, None]).all(-1).any(-1).mean()
    assert row.loc[("perturb", "oracle_any", 3), "accuracy"] == pytest.approx(direct)
    wil = scaling_table(cands, y, ks=(1, 2), ci="wilson")
    assert ((wil["ci_low"] <= wil["accuracy"]) & (wil["accuracy"] <= wil["ci_high"])).all()


def test_scaling_table_skips_and_warns_for_k_out_of_range():
    cands, y = _fake_candidates()
    with pytest.warns(UserWarning, match="bootstrap"):
        df = scaling_table(cands, y, strategies=("bootstrap",), ks=(1, 2, 4), rules=("majority",))
    assert df["k"].tolist() == [1, 2]


def test_interval_helpers():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 20)[0] == 0.0
    assert bootstrap_ci(np.ones(30)) == (1.0, 1.0)
    lo, hi = bootstrap_ci(np.r_[np.ones(50), np.zeros(50)], n_boot=2000)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(2 * 1.96 * 0.05, abs=0.03)


def test_bad_arguments(sudoku9):
    x, y = sudoku9
    model = SudokuSolverModel()
    with pytest.raises(GuessScalingError, match="unknown task"):
        guess_scaling_curve(model, x, y, task="chess")
    with pytest.raises(GuessScalingError, match="unknown sudoku preset"):
        guess_scaling_curve(model, x, y, perturbations="spin")
    with pytest.raises(GuessScalingError, match="cyclic preset has 9"):
        sudoku_perturbations(10, "cyclic")
    with pytest.raises(GuessScalingError, match="unknown strategy"):
        guess_scaling_curve(model, x, y, strategies=("vote",))
    with pytest.raises(GuessScalingError, match=r"inputs must be token ids \[N"):
        guess_scaling_curve(model, x[0], y)
    with pytest.raises(GuessScalingError, match="labels must have shape"):
        guess_scaling_curve(model, x, y[:3], ks=(1,), strategies=("perturb",))
    with pytest.raises(GuessScalingError, match="unknown voting rule"):
        scaling_table(_fake_candidates()[0], _fake_candidates()[1], rules=("best",))
    with pytest.raises(GuessScalingError, match="models must be"):
        guess_scaling_curve([], x, y)


# ----------------------------------------------------------------------------- figures


def test_figures(tmp_path):
    cands, y = _fake_candidates()
    df = scaling_table(cands, y, ks=(1, 2, 3), n_boot=50)
    png = plot_guess_scaling(df, tmp_path / "gs.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plot_guess_scaling(df, tmp_path / "sub" / "gs.svg")
    assert "<svg" in svg.read_text()
    with pytest.raises(GuessScalingError, match="must end in"):
        plot_guess_scaling(df, tmp_path / "gs.txt")
    with pytest.raises(GuessScalingError, match="empty"):
        plot_guess_scaling(df.iloc[:0], tmp_path / "gs.png")
    fig = guess_scaling_figure(df)
    import plotly.graph_objects as go

    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 3 * len(ALL_RULES)
    html = write_html(fig, tmp_path / "gs.html").read_text()
    assert "<script src=\"https://cdn.plot.ly" not in html and 'src="plotly.min.js"' in html  # beside, offline
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    assert not list(tmp_path.glob(".gs*"))  # no temp files left
