"""``interp features``: the outputs, a saved dictionary evaluated again, and bad input (one line, nothing written)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from helpers.tiny_models import tiny_trm
from interp.cli import main
from models.checkpoint import save_checkpoint
from probes.sae import SparseAutoencoder
from probes.sae_files import save_sae

PUZZLES = "data/sudoku/generated_moderate.sdm"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    return str(save_checkpoint(tmp_path_factory.mktemp("ck") / "trm", tiny_trm(), extra={"task": {"name": "sudoku"}}))


def _args(ckpt: str, out: Path, *extra: str) -> list[str]:
    return ["features", "--ckpt", ckpt, "--puzzle-file", str(ROOT / PUZZLES), "--limit", "3", "--features", "8",
            "--train-steps", "30", "--threads", "1", "--quiet", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def run(ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("feat") / "out"
    assert main(_args(ckpt, out)) == 0
    return out


def test_outputs_and_dictionary_config(run, ckpt):
    names = {p.name for p in run.iterdir()}
    assert {"features.csv", "comparison.csv", "summary.md", "features.html", "viewer.html", "dictionary",
            "provenance.json", "plotly.min.js"} <= names
    cfg = json.loads((run / "dictionary" / "cfg.json").read_text())
    meta = cfg["metadata"]
    assert cfg["architecture"] == "step_crosscoder" and cfg["d_in"] == 32 and cfg["d_sae"] == 8
    assert meta["hook_name"] == "*.hook_y" and len(meta["recurse_interp"]["hook_names"]) == cfg["n_steps"]
    from interp.tracing.model_hash import model_sha256
    from models.load import load_any

    assert meta["recurse_interp"]["model_sha256"] == model_sha256(load_any(ckpt)[0])
    table = pd.read_csv(run / "features.csv")
    assert table["feature"].tolist() == list(range(8))
    cmp = pd.read_csv(run / "comparison.csv")
    assert cmp["dictionary"].tolist() == ["crosscoder", "per-step SAEs", "SAE pooled over steps"]
    assert ((cmp["fve"] > -1) & (cmp["fve"] <= 1)).all()
    html = (run / "viewer.html").read_text()
    assert "var featuresHref = \"features.html\";" in html


def test_rerun_into_its_own_output_folder(ckpt, run, tmp_path):
    prov = json.loads((run / "provenance.json").read_text())
    assert {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()} - {"provenance.json"} <= set(prov["files"])
    out = tmp_path / "again"
    for _ in range(2):  # the second run finds its own earlier output and replaces it
        assert main(_args(ckpt, out, "--no-compare", "--kind", "sae", "--train-steps", "5")) == 0


def test_saved_dictionary_evaluates_to_the_same_fit(run, ckpt, tmp_path):
    out = tmp_path / "eval"
    assert main(_args(ckpt, out, "--dictionary", str(run / "dictionary"))) == 0
    first = pd.read_csv(run / "comparison.csv").iloc[0]
    again = pd.read_csv(out / "comparison.csv").iloc[0]
    assert again["dictionary"] == "crosscoder (loaded)"
    assert again["fve"] == pytest.approx(first["fve"], abs=2e-4)
    assert again["active_per_trajectory"] == pytest.approx(first["active_per_trajectory"], abs=0.02)
    assert not (out / "dictionary").exists()


def test_sae_kind_feature_pages_for_chosen_features(ckpt, tmp_path):
    out = tmp_path / "sae"
    assert main(_args(ckpt, out, "--kind", "sae", "--feature", "1,3", "--no-compare")) == 0
    data = json.loads(re.search(r'id="feature-data">(.*?)</script>', (out / "features.html").read_text(), re.S).group(1))
    assert [f["id"] for f in data["features"]] == [1, 3]
    cfg = json.loads((out / "dictionary" / "cfg.json").read_text())
    assert cfg["architecture"] == "standard"
    # the answer-head push: digit rows of lm_head times the unit decoder direction, centred over the digits
    import torch

    from models.load import load_any
    from probes.sae_files import load_dictionary

    sae, _ = load_dictionary(out / "dictionary")
    head = load_any(ckpt)[0].lm_head.weight.detach()[2:11]
    d = torch.nn.functional.normalize(sae.W_dec.detach()[3], dim=0)
    want = (head @ d).numpy()
    assert data["features"][1]["push"] == pytest.approx((want - want.mean()).tolist(), abs=1e-3)


def _foreign_dictionary(path: Path, d_in: int = 32, hook: str | None = None, sha: str | None = None) -> Path:
    info = {"hook_names": ["seg0.t0.hook_y", "seg0.t1.hook_y"], "model_sha256": sha}
    if hook:
        info["hook_name"] = hook
    return save_sae(SparseAutoencoder(d_in, 8), path, info)


@pytest.mark.parametrize("case, message", [
    ("feature", "--feature 99 is out of range"),
    ("width", "does not match the state's width 32"),
    ("model", "trained on another model"),
    ("hook", "names none of this model's step hooks"),
    ("dict_feature", "--feature 8 is out of range"),
    ("topk", "--topk 9 is larger than --features 8"),
    ("nan", "--l1"),
    ("foreign_out", "refusing"),
])
def test_bad_input_is_one_line_and_writes_nothing(ckpt, tmp_path, capsys, case, message):
    out = tmp_path / "out"
    extra: list[str] = []
    if case == "feature":
        extra = ["--feature", "99"]
    elif case == "width":
        extra = ["--dictionary", str(_foreign_dictionary(tmp_path / "d", d_in=16))]
    elif case == "model":
        extra = ["--dictionary", str(_foreign_dictionary(tmp_path / "d", sha="0" * 64))]
    elif case == "hook":
        extra = ["--dictionary", str(_foreign_dictionary(tmp_path / "d", hook="seg0.h0.hook_z_H"))]
    elif case == "dict_feature":
        extra = ["--dictionary", str(_foreign_dictionary(tmp_path / "d")), "--feature", "8"]
    elif case == "topk":
        extra = ["--topk", "9"]
    elif case == "nan":
        extra = ["--l1", "nan"]
    elif case == "foreign_out":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    assert main(_args(ckpt, out, *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    if case == "foreign_out":
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    else:
        assert not out.exists()


@pytest.mark.slow
def test_from_a_trace_directory(ckpt, tmp_path, capsys):
    tr = tmp_path / "trace"
    assert main(["trace", "--ckpt", ckpt, "--puzzle-file", str(ROOT / PUZZLES), "--limit", "3", "--states", "y",
                 "--quiet", "--out", str(tr)]) == 0
    out = tmp_path / "out"
    assert main(["features", str(tr), "--features", "8", "--train-steps", "20", "--no-compare", "--quiet",
                 "--out", str(out)]) == 0
    cfg = json.loads((out / "dictionary" / "cfg.json").read_text())
    assert cfg["metadata"]["model_name"] == ckpt and cfg["metadata"]["recurse_interp"]["state"] == "y"
    data = json.loads(re.search(r'id="feature-data">(.*?)</script>', (out / "features.html").read_text(), re.S).group(1))
    assert len(data["features"][0]["push"]) == 9  # the model named by the trace gives the answer-head push
    bare = tmp_path / "bare"
    assert main(["trace", "--ckpt", ckpt, "--puzzle-file", str(ROOT / PUZZLES), "--limit", "2", "--states", "summary",
                 "--quiet", "--out", str(bare)]) == 0
    capsys.readouterr()
    assert main(["features", str(bare), "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no full states" in err[0] and not (tmp_path / "none").exists()
