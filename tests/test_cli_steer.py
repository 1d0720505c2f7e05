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
    from interp.tracing.model_hash import model_sha256
    from probes.sae_files import save_sae

    hooks = [h for h in other.hook_names() if h.endswith(".hook_y")]
    return save_sae(SparseAutoencoder(32, 8), tmp_path / "sae", {"hook_names": hooks, "state": "y",
                                                                 "model_sha256": model_sha256(other)})


@pytest.mark.parametrize("extra, message", [
    (["--feature", "99", "--sae-features", "8"], "unknown feature 99"),
    (["--direction", "user", "--vector", "WRONG"], "width 5"),
    (["--scale", "nan"], "--scale"),
    (["--scale", "1,inf"], "--scale"),
    (["--sae", "OTHER"], "another model"),
    (["--steps", "0"], "does not update"),
    (["--direction", "mean_diff,bogus"], "bogus"),
    (["--direction", "user"], "--vector"),
    (["--attribution"], "--sae FOLDER"),
    (["--sae", "WRONG"], "not a dictionary folder"),
    (["--attribution", "--sae", "OTHER"], "another model"),
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


def test_direction_kinds_match_the_experiment():
    from interp.cli.steer import KINDS
    from interp.steering.experiment import KINDS as EXPERIMENT_KINDS

    assert KINDS == EXPERIMENT_KINDS


@pytest.mark.slow  # about 25 s on a loaded 2-core machine
def test_steer_takes_an_sae_or_crosscoder_folder_written_in_the_saelens_layout(ckpt, tmp_path, capsys):
    from interp.cli.common import load_model
    from interp.tracing.model_hash import model_sha256
    from probes.crosscoder import StepCrosscoder
    from probes.sae_files import save_crosscoder, save_sae

    model, _ = load_model(str(ckpt))
    hooks = [h for h in model.hook_names() if h.endswith(".hook_y")]
    info = {"hook_names": hooks, "state": "y", "model_sha256": model_sha256(model)}
    cc = StepCrosscoder(len(hooks), 32, 8, seed=3)
    folders = {"sae": save_sae(SparseAutoencoder(32, 8, seed=1), tmp_path / "sae", info),
               "cc": save_crosscoder(cc, tmp_path / "cc", info)}
    for name, folder in folders.items():
        out = tmp_path / f"out-{name}"
        rc = interp_main(["steer", "--ckpt", str(ckpt), "--puzzle-file", PUZZLES, "--limit", "4", "--direction", "sae",
                          "--sae", str(folder), "--feature", "3", "--scale", "1", "--on", "all", "--out", str(out)])
        assert rc == 0, capsys.readouterr().err
        t = pd.read_csv(out / "steering.csv")
        steered, control = t[t["control"] == 0], t[t["control"] == 1]
        want = "sae[3]" if name == "sae" else f"crosscoder[3]@{hooks[0]}"
        assert set(steered["direction"]) == {want} and len(control) == len(steered) > 0
        np.testing.assert_allclose(steered["norm"].to_numpy(), control["norm"].to_numpy(), rtol=1e-5)
    capsys.readouterr()
    out = tmp_path / "out-bad"
    rc = interp_main(["steer", "--ckpt", str(ckpt), "--puzzle-file", PUZZLES, "--limit", "4", "--direction", "sae",
                      "--sae", str(folders["cc"]), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--feature" in err and err.count("\n") == 1 and not out.exists()


def test_steer_attribution_csv_equals_the_api(ckpt, tmp_path, capsys):
    from interp.cli.common import checkpoint_task, load_model
    from interp.steering.feature_attribution import feature_attribution, sae_dictionary
    from interp.tracing.model_hash import model_sha256
    from probes.sae_files import load_dictionary, save_sae
    from tasks.puzzles import read_puzzles

    model, _ = load_model(str(ckpt))
    hooks = [h for h in model.hook_names() if h.endswith(".hook_y")]
    folder = save_sae(SparseAutoencoder(32, 8, seed=4), tmp_path / "sae",
                      {"hook_names": hooks, "state": "y", "model_sha256": model_sha256(model)})
    out = tmp_path / "attr"
    rc = interp_main(["steer", "--ckpt", str(ckpt), "--puzzle-file", PUZZLES, "--limit", "2", "--attribution",
                      "--sae", str(folder), "--top", "5", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    got = pd.read_csv(out / "attribution.csv")
    batch = read_puzzles(checkpoint_task(str(ckpt), None, command="steer"), None, PUZZLES, 2)
    sae, _ = load_dictionary(folder)
    encode, decoder = sae_dictionary(sae)
    want = feature_attribution(model, np.asarray(batch.inputs), np.asarray(batch.labels), encode, decoder,
                               state="y").frame()
    assert len(got) == len(want) > 0 and not (out / "steering.csv").exists()
    np.testing.assert_array_equal(got[["puzzle", "step", "cell", "feature"]].to_numpy(),
                                  want[["puzzle", "step", "position", "feature"]].to_numpy())
    np.testing.assert_allclose(got["attribution"], want["score"], rtol=1e-6, atol=1e-9)
    assert got["attribution"].abs().max() > 0
    one = save_sae(SparseAutoencoder(32, 8, seed=4), tmp_path / "sae-one", {"hook_names": [hooks[2]], "state": "y",
                                                                           "model_sha256": model_sha256(model)})
    assert interp_main(["steer", "--ckpt", str(ckpt), "--puzzle-file", PUZZLES, "--limit", "2", "--attribution",
                        "--sae", str(one), "--out", str(tmp_path / "attr-one")]) == 0
    only = pd.read_csv(tmp_path / "attr-one" / "attribution.csv")
    mine = want[want["hook"] == hooks[2]]
    assert set(only["hook"]) == {hooks[2]} and len(only) == len(mine) > 0  # only the step the SAE was trained on
    np.testing.assert_allclose(only["attribution"], mine["score"], rtol=1e-6, atol=1e-9)
    lines = cap.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["puzzle", "segment"])
    printed = [line.split() for line in lines[header + 1:header + 6]]
    top = got.reindex(got["attribution"].abs().sort_values(ascending=False).index).head(5)
    assert [int(r[4]) for r in printed] == top["cell"].tolist()  # the 5 largest |attribution| rows, in order


@pytest.mark.slow  # about 40 s on a loaded 2-core machine
def test_interp_features_dictionaries_feed_interp_steer(ckpt, tmp_path, capsys):
    """The folder `interp features` writes (SAE or crosscoder) is what `interp steer --sae` reads."""
    for kind in ("sae", "crosscoder"):
        feats = tmp_path / f"feat-{kind}"
        assert interp_main(["features", "--ckpt", str(ckpt), "--puzzle-file", PUZZLES, "--limit", "3", "--kind", kind,
                            "--features", "8", "--train-steps", "20", "--threads", "1", "--quiet",
                            "--out", str(feats)]) == 0, capsys.readouterr().err
        out = tmp_path / f"steer-{kind}"
        rc = interp_main(["steer", "--ckpt", str(ckpt), "--puzzle-file", PUZZLES, "--limit", "4", "--direction", "sae",
                          "--sae", str(feats / "dictionary"), "--feature", "1", "--scale", "1", "--on", "all",
                          "--quiet", "--out", str(out)])
        assert rc == 0, capsys.readouterr().err
        names = set(pd.read_csv(out / "steering.csv")["direction"])
        assert ("sae[1]" if kind == "sae" else "crosscoder[1]@seg0.") in " ".join(names)
    capsys.readouterr()
