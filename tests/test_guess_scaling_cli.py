"""``interp guess-scale`` and ``python -m training data`` end to end on small real inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from interp.cli import main
from models.checkpoint import load_checkpoint, save_checkpoint
from tasks.sudoku.build import build_sudoku_dataset
from helpers.tiny_models import tiny_hrm

REPO = Path(__file__).resolve().parents[1]
ZOO_TRM = REPO / "zoo" / "trm-sudoku9"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if not (ZOO_TRM / "config.json").exists():
        pytest.skip("zoo/trm-sudoku9 is not in the checkout")
    root = tmp_path_factory.mktemp("gs")
    build_sudoku_dataset(root / "data", n_train=0, n_test=24, seed=5, min_blanks=30, max_blanks=40, progress=False)
    torch.manual_seed(0)
    untrained = tiny_hrm(vocab_size=11, seq_len=81, halt_max_steps=2, mlp_t=True)
    save_checkpoint(root / "untrained", untrained, extra={"task": {"name": "sudoku", "grid_size": 9}})
    small = tiny_hrm()
    save_checkpoint(root / "four", small, extra={"task": {"name": "sudoku", "grid_size": 4}})
    return root


def _exact(ckpt: Path, data: Path) -> np.ndarray:
    """Independent single-pass exact-correct flags: the model's own forward, argmax, compared on every cell."""
    model, _ = load_checkpoint(ckpt)
    x = np.load(data / "test" / "all__inputs.npy")
    y = np.load(data / "test" / "all__labels.npy")
    with torch.no_grad():
        pred = model.eval()(torch.as_tensor(x).long()).argmax(-1).numpy()
    return (pred == y).all(axis=1)


@pytest.mark.slow
def test_guess_scale_writes_tables_that_match_independent_passes(setup, capsys):
    out = setup / "out"
    code = main(["guess-scale", "--ckpt", str(ZOO_TRM), "--ckpt", str(setup / "untrained"), "--data", str(setup / "data"),
                 "--k", "1,2,4", "--out", str(out), "--no-progress", "--n-boot", "200"])
    assert code == 0
    for name in ("guess_scaling.csv", "guess_scaling.md", "guess_scaling.png", "guess_scaling.html", "models.csv",
                 "provenance.json"):
        assert (out / name).stat().st_size > 0, name
    trained = _exact(ZOO_TRM, setup / "data")
    untrained = _exact(setup / "untrained", setup / "data")
    assert trained.mean() > 0.5 and untrained.mean() == 0.0  # a real contrast, not two zeros
    models = pd.read_csv(out / "models.csv")
    np.testing.assert_allclose(models["exact_accuracy"], [trained.mean(), untrained.mean()], atol=1e-4)
    t = pd.read_csv(out / "guess_scaling.csv")

    def acc(strategy: str, rule: str, k: int) -> float:
        row = t[(t.strategy == strategy) & (t.rule == rule) & (t.k == k)]
        assert len(row) == 1, (strategy, rule, k)
        return float(row["accuracy"].iloc[0])

    assert acc("perturb", "majority", 1) == pytest.approx(trained.mean(), abs=1e-4)
    assert acc("bootstrap", "majority", 1) == pytest.approx(trained.mean(), abs=1e-4)
    # two checkpoints: any-correct is the union of the two single-pass flags
    assert acc("bootstrap", "oracle_any", 2) == pytest.approx((trained | untrained).mean(), abs=1e-4)
    # the oracle bounds every label-free rule at every k
    for (strategy, k), g in t.groupby(["strategy", "k"]):
        best = g[g.rule == "oracle_any"]["accuracy"].iloc[0]
        assert (g[~g.uses_label]["accuracy"] <= best + 1e-9).all(), (strategy, k)
    assert ((t.ci_low <= t.accuracy + 1e-9) & (t.accuracy <= t.ci_high + 1e-9)).all()
    # same pass budget: a combined guess is one perturbation on both checkpoints (2 passes), so k=1 does not fit
    comb = t[t.strategy == "combined"]
    assert sorted(comb["k"].unique()) == [2, 4] and (comb["n_passes"] == comb["k"]).all()
    assert (comb["guesses"] * comb["passes_per_guess"] == comb["n_passes"]).all()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["puzzles"]["n"] == 24 and len(prov["checkpoints"]) == 2
    assert all(len(c["sha256"]) == 64 for c in prov["checkpoints"])
    assert "bootstrap" in capsys.readouterr().out


@pytest.mark.slow
def test_guess_scale_ptrm_and_eqr_at_equal_budget(setup, capsys):
    out = setup / "strat"
    code = main(["guess-scale", "--ckpt", str(ZOO_TRM), "--data", str(setup / "data"), "--limit", "8",
                 "--strategies", "aug", "ptrm", "eqr", "--k", "1", "2", "4", "--out", str(out), "--no-progress",
                 "--eqr-depth", "2", "--noise", "0.1"])
    assert code == 0, capsys.readouterr().err
    t = pd.read_csv(out / "guess_scaling.csv")
    assert set(t.strategy) == {"perturb", "ptrm", "eqr"}
    assert (t["n_passes"] <= t["k"]).all()
    eqr = t[t.strategy == "eqr"]
    assert sorted(eqr["k"].unique()) == [2, 4] and (eqr["passes_per_guess"] == 2).all()
    assert sorted(eqr["guesses"].unique()) == [1, 2]
    ptrm = t[t.strategy == "ptrm"]
    assert sorted(ptrm["guesses"].unique()) == [1, 2, 4]
    plain = _exact(ZOO_TRM, setup / "data")[:8].mean()
    for rule in ("majority_first", "q_select", "residual_select"):  # guess 0 is the plain pass
        assert float(ptrm[(ptrm.rule == rule) & (ptrm.k == 1)]["accuracy"].iloc[0]) == pytest.approx(plain, abs=1e-4)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["strategies"]["eqr"]["passes_per_guess"] == 2 and prov["eqr"]["depth"] == 2


@pytest.mark.parametrize("extra, expect", [
    (["--k", "1,x"], "argument --k: expected a whole number"),  # refused by the parser's bounded type
    (["--k", "0,2"], "argument --k: must be >= 1"),
    (["--k", "2000"], "argument --k: must be <= 1024"),
    (["--rules", "majority,psychic"], "unknown psychic"),
    (["--strategies", "perturb,dream"], "unknown dream"),
])
def test_guess_scale_bad_options_one_line(setup, capsys, extra, expect):
    code = main(["guess-scale", "--ckpt", str(setup / "untrained"), "--data", str(setup / "data"),
                 "--out", str(setup / "bad"), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert code == 2 and expect in err and err.count("\n") == 1, err


def test_guess_scale_refuses_checkpoints_of_different_tasks(setup, capsys):
    code = main(["guess-scale", "--ckpt", str(setup / "untrained"), "--ckpt", str(setup / "four"),
                 "--data", str(setup / "data"), "--out", str(setup / "mixed"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "every checkpoint must solve the same task" in err and err.count("\n") == 1


def test_training_data_command_builds_and_prints_the_dataset(tmp_path, monkeypatch, capsys):
    from training.cli import main as train_main

    monkeypatch.setenv("RECURSE_INTERP_CACHE", str(tmp_path / "cache"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {family: trm, hidden_size: 32, num_heads: 2}\nsteps: 1\n"
                   "task: {name: sudoku, grid_size: 4, data: {generate: sudoku, n_train: 6, n_test: 3, seed: 1}}\n")
    assert train_main(["data", "--config", str(cfg)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == tmp_path / "cache"
    assert json.loads((path / "test" / "dataset.json").read_text())["seq_len"] == 16
    assert np.load(path / "train" / "all__inputs.npy").shape[1] == 16
    assert train_main(["data", "--config", str(cfg)]) == 0  # second call finds the same directory
    assert Path(capsys.readouterr().out.strip()) == path
    assert train_main(["data", "--config", str(tmp_path / "missing.yaml")]) == 2
