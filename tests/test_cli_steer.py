"""``interp steer``: the table's columns and controls on a checkpoint, and bad input refused in one line with
nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from interp.cli import main as interp_main
from interp.steering.dictionary import save_dictionary
from models.checkpoint import save_checkpoint
from probes.sae import SparseAutoencoder
from tests.helpers.tiny_models import tiny_trm

ROOT = Path(__file__).resolve().parents[1]
PUZZLES = str(ROOT / "data" / "sudoku" / "generated_moderate.sdm")
REQUIRED = ["direction", "control", "segment", "step", "scale", "n", "solved_before", "solved_after", "after_lo",
            "after_hi"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("steer") / "ckpt"
    save_checkpoint(path, tiny_trm(halt_max_steps=4), extra={"task": {"name": "sudoku"}})
    return path


@pytest.mark.slow  # about 25 s on a loaded 2-core machine
def test_steer_writes_one_row_per_setting_beside_its_control(ckpt, tmp_path, capsys):
    vec = tmp_path / "v.npy"
    np.save(vec, np.random.default_rng(0).normal(size=32).astype(np.float32))
    out = tmp_path / "out"
    args = ["steer", "--ckpt", str(ckpt), "--puzzle-file", PUZZLES, "--limit", "4", "--direction", "user,clamp",
            "--vector", str(vec), "--scale", "0.5,2", "--on", "all", "--out", str(out)]
    rc = interp_main(args)
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    t = pd.read_csv(out / "steering.csv")
    assert set(REQUIRED) <= set(t.columns)
    # 2 start steps x (user at 2 scales + clamp), each with its control
    assert len(t) == 2 * 3 * 2 and t["control"].sum() == 6
    steered, control = t[t["control"] == 0].reset_index(drop=True), t[t["control"] == 1].reset_index(drop=True)
    assert list(steered["direction"].unique()) == ["user", "clamp_decided"]
    assert set(control["direction"]) == {"random(user)", "random_cells(clamp_decided)"}
    np.testing.assert_allclose(steered["norm"].dropna(), control["norm"].dropna(), rtol=1e-5)
    assert sorted(t["scale"].dropna().unique()) == [0.5, 2.0]
    assert (t["n"] == 2).all() and (t["after_lo"] <= t["after_hi"]).all()
    assert {"steering.csv", "puzzles.csv", "settings.json", "provenance.json"} <= {p.name for p in out.iterdir()}
    assert "random(user)" in cap.out
    rerun = [a for a in args if a not in ("user,clamp", "0.5,2")]
    rerun[rerun.index("--direction") + 1:rerun.index("--direction") + 1] = ["clamp"]
    rerun[rerun.index("--scale") + 1:rerun.index("--scale") + 1] = ["1"]
    assert interp_main(rerun) == 0  # our own output folder is replaced
    assert len(pd.read_csv(out / "steering.csv")) == 4
    capsys.readouterr()


def _other_dictionary(tmp_path: Path) -> Path:
    other = tiny_trm()
    with torch.no_grad():
        other.lm_head.weight.add_(1.0)
    return save_dictionary(tmp_path / "sae.safetensors", SparseAutoencoder(32, 8), other, "y")


@pytest.mark.parametrize("extra, message", [
    (["--feature", "99", "--sae-features", "8"], "unknown feature 99"),
    (["--direction", "user", "--vector", "WRONG"], "width 5"),
    (["--scale", "nan"], "--scale"),
    (["--scale", "1,inf"], "--scale"),
    (["--sae", "OTHER"], "another model"),
    (["--steps", "0"], "does not update"),
    (["--direction", "mean_diff,bogus"], "bogus"),
    (["--direction", "user"], "--vector"),
])
def test_steer_bad_input_is_one_line_and_writes_nothing(ckpt, tmp_path, capsys, extra, message):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones(5, dtype=np.float32))
    extra = [str(wrong) if a == "WRONG" else str(_other_dictionary(tmp_path)) if a == "OTHER" else a for a in extra]
    out = tmp_path / "out"
    rc = interp_main(["steer", "--ckpt", str(ckpt), "--puzzle-file", PUZZLES, "--limit", "4", *extra,
                      "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1 and err.startswith("error:")
    assert not out.exists()


@pytest.mark.slow  # about 30 s on a loaded 2-core machine
def test_steer_on_a_language_model_reads_a_text_file(tmp_path, capsys):
    from tests.helpers.tiny_models import tiny_hrm_lm

    torch.manual_seed(0)
    ck = tmp_path / "lm"
    save_checkpoint(ck, tiny_hrm_lm(passes=3), extra={"task": {"name": "text", "tokenizer": "bytes", "vocab_size": 256}})
    text = tmp_path / "t.txt"
    text.write_text("aaaaaaaaaaaaaaab" * 40)
    out = tmp_path / "out"
    rc = interp_main(["steer", "--ckpt", str(ck), "--puzzle-file", str(text), "--limit", "6", "--context", "8",
                      "--direction", "clamp", "--on", "all", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    info = json.loads((out / "settings.json").read_text())
    assert info["n_puzzles"] == 6 and info["cells"] == "all" and info["state"] == "fast"
    t = pd.read_csv(out / "steering.csv")
    assert len(t) == 2 * len(info["steps"]) and (t["n"] == 3).all()
