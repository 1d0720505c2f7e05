"""``interp scale`` end to end on a tiny checkpoint: the CSV, numbers against an independent pass, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from interp.cli import main
from models.checkpoint import load_checkpoint, save_checkpoint
from tasks.puzzles import read_puzzles, resolve_task
from helpers.tiny_models import tiny_trm

REPO = Path(__file__).resolve().parents[1]
PUZZLES = REPO / "data" / "sudoku" / "qqwing_easy.sdm"
COLUMNS = {"strategy", "rule", "depth", "k", "passes", "flops", "n", "solved", "lo", "hi"}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    torch.manual_seed(0)
    model = tiny_trm(halt_max_steps=2)
    save_checkpoint(root / "nohead", model, extra={"task": {"name": "sudoku", "grid_size": 9}})
    with torch.no_grad():
        model.q_head.weight.normal_(0, 0.1)  # a halting head that says something
    save_checkpoint(root / "tiny", model, extra={"task": {"name": "sudoku", "grid_size": 9}})
    return root


def _args(ckpt, out, *extra):
    return ["scale", "--ckpt", str(ckpt), "--puzzle-file", str(PUZZLES), "--limit", "6", "--budget", "4",
            "--depth", "4", "--k", "2", "--chunk", "4", "--out", str(out), "-q", *extra]


def test_scale_writes_the_table_and_resumes(ckpts, capsys):
    out = ckpts / "out"
    assert main(_args(ckpts / "tiny", out, "--strategies", "aug,ptrm,eqr")) == 0
    for name in ("scaling.csv", "pareto.csv", "scaling.html", "pareto.png", "depth.png", "summary.md", "provenance.json"):
        assert (out / name).stat().st_size > 0, name
    t = pd.read_csv(out / "scaling.csv")
    assert COLUMNS <= set(t.columns)
    assert set(t["strategy"]) == {"aug", "ptrm", "eqr"} and set(t["depth"]) == {1, 2, 4} and set(t["k"]) == {1, 2}
    assert set(t["halting"]) == {"off", "q_head", "fixed_point"}
    # the plain row (k=1, depth 2 = the training depth, halting off) against the model's own forward
    model, meta = load_checkpoint(ckpts / "tiny")
    batch = read_puzzles(resolve_task(meta["model"], meta.get("task"), None), None, str(PUZZLES), 6)
    with torch.no_grad():
        pred = model.eval()(torch.as_tensor(batch.inputs).long(), n_segments=2).argmax(-1).numpy()
    plain = t[(t["k"] == 1) & (t["depth"] == 2) & (t["halting"] == "off") & (t["rule"] == "majority")]
    assert len(plain) == 3 and (plain["solved"] == int((pred == batch.labels).all(1).sum())).all()
    assert (plain["passes"] == 1.0).all() and (t["n"] == 6).all()
    row = t[(t["k"] == 2) & (t["depth"] == 4) & (t["halting"] == "off") & (t["rule"] == "oracle")].iloc[0]
    assert row["passes"] == 4.0 and row["flops"] == pytest.approx(2 * 4 * json.loads(
        (out / "provenance.json").read_text())["flops_per_segment"])
    assert (t["lo"] <= t["accuracy"]).all() and (t["accuracy"] <= t["hi"]).all()
    printed = capsys.readouterr()
    assert "N = 6 puzzles, seed 0" in printed.out and "Pareto front" in printed.out
    chunks = sorted((out / "chunks").glob("*.npz"))
    stamps = [c.stat().st_mtime_ns for c in chunks]
    assert main(_args(ckpts / "tiny", out, "--strategies", "aug,ptrm,eqr")) == 0  # rerun: every chunk reused
    assert [c.stat().st_mtime_ns for c in chunks] == stamps
    pd.testing.assert_frame_equal(pd.read_csv(out / "scaling.csv").drop(columns="wall_s"), t.drop(columns="wall_s"))


@pytest.mark.parametrize("extra, message", [
    (["--depth", "0"], "--depth"),
    (["--k", "0"], "--k"),
    (["--k", "-3"], "--k"),
    (["--depth", "5000", "--budget", "100000"], "above the cap of 1024 segments (this run would keep"),
    (["--k", "4"], "budget of 4 passes cannot pay for k=4"),
    (["--strategies", "aug,magic"], "unknown magic"),
    (["--strategies", "bootstrap"], "needs 2 --ckpt"),
])
def test_bad_input_is_one_line_and_writes_nothing(ckpts, capsys, extra, message):
    out = ckpts / "bad"
    assert main(_args(ckpts / "tiny", out) + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not [e for e in err if e.startswith("error")][1:]
    assert not out.exists()


def test_halting_rules_need_a_halting_head(ckpts, capsys):
    out = ckpts / "nohead_out"
    assert main(_args(ckpts / "nohead", out, "--rules", "q_head,majority")) == 2
    assert "need halting logits" in capsys.readouterr().err
    assert not out.exists()
    assert main(_args(ckpts / "nohead", out, "--strategies", "eqr")) == 0  # defaults: left out, with a note
    t = pd.read_csv(out / "scaling.csv")
    assert not set(t["rule"]) & {"q_head", "weighted_majority"} and "q_head" not in set(t["halting"])
    assert "no trained halting head" in capsys.readouterr().err


def test_help_and_the_deprecated_alias(ckpts, capsys):
    with pytest.raises(SystemExit):
        main(["scale", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--budget" in text and "cap 1024" in text
    out = ckpts / "gs"
    assert main(["guess-scale", "--ckpt", str(ckpts / "tiny"), "--puzzle-file", str(PUZZLES), "--limit", "2", "--k", "1",
                 "--strategies", "aug", "--out", str(out), "-q"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "deprecated" in line]
    assert notes == ["note: `interp guess-scale` is deprecated, use `interp scale` (depth x breadth x selection rules "
                     "against FLOPs, resumable; docs/scaling.md)"]


def test_both_weights_are_loaded_and_named(capsys):
    from interp.cli.scale import load_models

    fixture = REPO / "tests" / "fixtures" / "checkpoint_formats" / "eqr_trm" / "eqr.pth"
    got = load_models([str(fixture)], "both", "cpu", seq_len=16)
    assert list(got) == ["ema", "raw"]
    ema, raw = got["ema"][0], got["raw"][0]
    diff = max((a - b).abs().max().item() for a, b in zip(ema.parameters(), raw.parameters()))
    assert diff > 1e-3  # really two sets of weights
    err = capsys.readouterr().err
    assert "weights ema (available: ema, raw)" in err and "weights raw (available: ema, raw)" in err
    only = load_models([str(fixture)], "raw", "cpu", seq_len=16)
    assert list(only) == ["raw"]


def test_a_run_killed_before_its_first_chunk_resumes(ckpts, monkeypatch):
    import interp.guess_scaling.scale_run as scale_run

    out = ckpts / "killed"

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(scale_run, "collect_depth", boom)
    with pytest.raises(KeyboardInterrupt):
        main(_args(ckpts / "tiny", out, "--strategies", "eqr"))
    assert (out / "chunks" / "settings.json").is_file() and not list((out / "chunks").glob("*.npz"))
    monkeypatch.undo()
    assert main(_args(ckpts / "tiny", out, "--strategies", "eqr")) == 0  # the folder is still ours: resumed
    assert (out / "scaling.csv").is_file()
