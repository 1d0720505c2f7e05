"""Output folders owned by a manifest (name + SHA-256 of every file written), per command class; a complete trace
verified when reused; manifest values validated whatever the hash says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from common.outputs import check_replaceable, record_outputs, recorded_files, remove_owned
from helpers.tiny_models import tiny_trm
from interp.cli import main
from models.checkpoint import save_checkpoint

PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    save_checkpoint(root / "trm", tiny_trm(hidden_size=16, L_cycles=1), extra={"task": {"name": "sudoku", "grid_size": 9}})
    return root / "trm"


@pytest.fixture()
def puzzles(tmp_path):
    f = tmp_path / "p.sdm"
    f.write_text(f"{PUZZLE}\n{PUZZLE}\n")
    return f


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ----------------------------------------------------------------------------- the helper
def test_record_then_replace_only_unchanged_recorded_files(tmp_path):
    out = tmp_path / "o"
    (out / "sub").mkdir(parents=True)
    (out / "a.csv").write_text("1,2\n")
    (out / "sub" / "b.png").write_bytes(b"\x89PNG")
    record_outputs(out, {"command": "x"})
    rec = recorded_files(out)
    assert rec == {"a.csv": _sha(b"1,2\n"), "sub/b.png": _sha(b"\x89PNG")}  # independent hashes
    assert check_replaceable(out) is True
    (out / "a.csv").write_text("1,3\n")  # the user edited it
    with pytest.raises(ValueError, match=r"a\.csv \(changed since this tool wrote it\)"):
        check_replaceable(out)
    (out / "a.csv").write_text("1,2\n")
    (out / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match=r"thesis\.tex \(not written by this tool\)"):
        remove_owned(out)
    assert (out / "thesis.tex").read_text() == "mine" and (out / "a.csv").exists()
    (out / "thesis.tex").unlink()
    (out / "sub" / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match=r"sub/link \(a link"):
        check_replaceable(out)
    (out / "sub" / "link").unlink()
    remove_owned(out)
    assert list(out.iterdir()) == []
    (tmp_path / "ln").symlink_to(out)
    with pytest.raises(ValueError, match="symbolic link"):
        check_replaceable(tmp_path / "ln")


def _sha(b: bytes) -> str:
    import hashlib

    return hashlib.sha256(b).hexdigest()


# ----------------------------------------------------------------------------- models.hub export
def test_hub_export_overwrite_keeps_a_users_file(ckpt, tmp_path, capsys):
    from models.hub import main as hub_main

    dst = tmp_path / "hub"
    assert hub_main(["export", str(ckpt), str(dst)]) == 0
    assert set(recorded_files(dst)) == {"model.safetensors", "config.json", "README.md"}
    assert hub_main(["export", str(ckpt), str(dst), "--overwrite"]) == 0  # its own export: replaced
    capsys.readouterr()
    (dst / "thesis.tex").write_text("three years of work")
    assert hub_main(["export", str(ckpt), str(dst), "--overwrite"]) == 2
    assert "thesis.tex (not written by this tool)" in one_error_line(capsys)
    assert (dst / "thesis.tex").read_text() == "three years of work"
    (dst / "thesis.tex").unlink()
    (dst / "README.md").write_text("my own card")
    assert hub_main(["export", str(ckpt), str(dst), "--overwrite"]) == 2
    assert "README.md (changed since" in one_error_line(capsys)
    assert (dst / "README.md").read_text() == "my own card"


# ----------------------------------------------------------------------------- stability
def test_stability_never_replaces_a_users_report_or_follows_a_link(ckpt, puzzles, tmp_path, capsys):
    out = tmp_path / "stab"
    out.mkdir()
    (out / "report.md").write_text("my notes")
    args = ["stability", "--ckpt", str(ckpt), "--puzzle-file", str(puzzles), "--tangents", "1", "--threads", "1"]
    assert main([*args, "--out", str(out)]) == 2
    assert "report.md (not written by this tool)" in one_error_line(capsys)
    assert [p.name for p in out.iterdir()] == ["report.md"] and (out / "report.md").read_text() == "my notes"
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert main([*args, "--out", str(tmp_path / "link")]) == 2
    assert "symbolic link" in one_error_line(capsys) and not any(real.iterdir())
    fresh = tmp_path / "fresh"
    assert main([*args, "--out", str(fresh)]) == 0
    assert "report.md" in recorded_files(fresh) and "per_puzzle.csv" in recorded_files(fresh)
    assert main([*args, "--out", str(fresh)]) == 0  # a re-run replaces its own files


# ----------------------------------------------------------------------------- trace
@pytest.mark.parametrize("name", ["viewer.html", "attention_mass.csv", "plotly.min.js"])
def test_trace_never_replaces_a_users_file_by_name(ckpt, puzzles, tmp_path, capsys, name):
    out = tmp_path / "t"
    out.mkdir()
    (out / name).write_text("user's")
    assert main(["trace", "--ckpt", str(ckpt), "--puzzle-file", str(puzzles), "--out", str(out), "--overwrite"]) == 2
    assert f"{name} (not written by this tool)" in one_error_line(capsys)
    assert (out / name).read_text() == "user's" and [p.name for p in out.iterdir()] == [name]


def test_trace_records_its_files_and_refuses_an_edited_viewer(ckpt, puzzles, tmp_path, capsys):
    out = tmp_path / "t"
    cmd = ["trace", "--ckpt", str(ckpt), "--puzzle-file", str(puzzles), "--out", str(out)]
    assert main(cmd) == 0
    rec = recorded_files(out)
    assert {"manifest.json", "chunk_00000.safetensors", "viewer.html"} <= set(rec)
    man = json.loads((out / "manifest.json").read_text())
    assert rec["chunk_00000.safetensors"] == man["chunks"][0]["sha256"]
    assert main(cmd) == 0  # re-run: verified, viewer rewritten
    assert "already complete, verified" in capsys.readouterr().err
    (out / "viewer.html").write_text("<html>my edits</html>")
    assert main([*cmd, "--overwrite"]) == 2
    assert "viewer.html (changed since" in one_error_line(capsys)
    assert (out / "viewer.html").read_text() == "<html>my edits</html>"


# ----------------------------------------------------------------------------- a complete trace, reused
@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    from interp.tracing.stream import trace_to_disk

    torch.manual_seed(0)
    model = tiny_trm(hidden_size=16, L_cycles=1).eval()
    x = np.random.default_rng(0).integers(2, 11, (6, 81))
    out = tmp_path_factory.mktemp("tr") / "t"
    trace_to_disk(model, (x, x), out, chunk_size=2, progress=False, task={"name": "sudoku", "grid": [9, 9]})
    return model, x, out


def _retrace(traced, tmp_path, capsys, damage) -> tuple[str, Path]:
    from interp.tracing.store import load_trace
    from interp.tracing.stream import trace_to_disk

    model, x, src = traced
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    damage(out)
    capsys.readouterr()
    trace_to_disk(model, (x, x), out, chunk_size=2, progress=False, task={"name": "sudoku", "grid": [9, 9]})
    err = capsys.readouterr().err
    ref, again = load_trace(src), load_trace(out)  # verified reads
    for k in ref.arrays:
        np.testing.assert_array_equal(again.arrays[k], ref.arrays[k])
    return err, out


def _flip(p: Path) -> None:
    b = bytearray(p.read_bytes())
    b[-5] ^= 1
    p.write_bytes(bytes(b))


def test_complete_trace_verified_when_reused(traced, tmp_path, capsys):
    err, _ = _retrace(traced, tmp_path, capsys, lambda out: None)
    assert "already complete, verified (3 chunk(s)" in err


@pytest.mark.parametrize("how", ["delete", "flip"])
def test_complete_trace_with_a_damaged_chunk_is_resumed(traced, tmp_path, capsys, how):
    chunk = "chunk_00001.safetensors"
    sha_before = json.loads((traced[2] / "manifest.json").read_text())["chunks"][1]["sha256"]

    def damage(out: Path) -> None:
        (out / chunk).unlink() if how == "delete" else _flip(out / chunk)

    err, out = _retrace(traced, tmp_path, capsys, damage)
    assert "was marked complete but" in err and "tracing the missing or damaged chunks again" in err
    assert "verified" not in err.split("again")[-1]
    man = json.loads((out / "manifest.json").read_text())
    assert man["complete"] and man["chunks"][1]["sha256"] == sha_before  # the same bytes, traced again


def test_forged_manifest_values_are_refused_whatever_the_hash(traced, tmp_path, capsys):
    from interp.tracing.store import load_trace, write_manifest
    from interp.tracing.trace import TraceError

    out = tmp_path / "forged"
    shutil.copytree(traced[2], out)
    man = json.loads((out / "manifest.json").read_text())
    for field, value, match in ((("task", "grid"), [1_000_000, 1_000_000], "grid must be"),
                                (("task", "grid"), [3, 3], "not a Sudoku grid"),
                                (("seq_len",), 10**9, "seq_len"),
                                (("n_steps",), 999, "n_steps")):
        forged = json.loads(json.dumps(man))
        target = forged["meta"]
        for k in field[:-1]:
            target = target[k]
        target[field[-1]] = value
        write_manifest(out, forged)  # a forger recomputes the metadata hash
        with pytest.raises(TraceError, match=match) as e:
            load_trace(out)
        assert "\n" not in str(e.value)
    assert main(["show", str(out), "--puzzle", "1"]) == 2
    one_error_line(capsys)


# ----------------------------------------------------------------------------- training run folders, influence
def test_training_run_refuses_a_folder_with_a_users_file(tmp_path):
    from training.config import ConfigError, TrainConfig
    from training.trainer import Trainer

    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    cfg = TrainConfig.from_dict({"model": {"family": "trm", "hidden_size": 16, "num_heads": 1, "num_layers": 1},
                                 "task": {"name": "sudoku", "data": str(tmp_path / "no-data")}, "steps": 1})
    with pytest.raises(ConfigError, match=r"notes\.md \(not written by this tool\)"):
        Trainer(cfg, out, progress=False)
    assert [p.name for p in out.iterdir()] == ["notes.md"]


def test_training_run_records_its_files(tmp_path):
    from tasks.puzzle_dataset import write_puzzle_split
    from training.config import ConfigError, TrainConfig
    from training.trainer import Trainer

    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("test", 4)):
        x = rng.integers(2, 6, size=(n, 8))
        write_puzzle_split(tmp_path / "data" / split, x, (x - 1) % 4 + 2, np.zeros(n, np.int32), np.arange(n + 1),
                           np.arange(n + 1), {"vocab_size": 6, "task": "sudoku"})
    cfg = TrainConfig.from_dict({"model": {"family": "trm", "hidden_size": 16, "num_heads": 1, "num_layers": 1,
                                           "H_cycles": 1, "L_cycles": 1, "halt_max_steps": 1},
                                 "task": {"name": "sudoku", "data": str(tmp_path / "data")}, "steps": 2,
                                 "batch_size": 4})
    out = tmp_path / "run"
    Trainer(cfg, out, progress=False).train()
    rec = recorded_files(out)
    assert "metrics.jsonl" in rec and "last/model.safetensors" in rec
    assert rec["last/model.safetensors"] == _sha((out / "last" / "model.safetensors").read_bytes())
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(cfg, out, progress=False)


def test_influence_refuses_a_users_file_before_any_work(ckpt, puzzles, tmp_path, capsys):
    out = tmp_path / "inf"
    out.mkdir()
    (out / "influence_share.csv").write_text("mine")
    assert main(["influence", "--ckpt", str(ckpt), "--puzzle-file", str(puzzles), "--segments", "1",
                 "--out", str(out)]) == 2
    assert "influence_share.csv (not written by this tool)" in one_error_line(capsys)
    assert (out / "influence_share.csv").read_text() == "mine"


def test_demo_records_its_files_and_refuses_a_users_file(tmp_path, capsys):
    out = tmp_path / "demo"
    cmd = ["demo", "--n", "1", "--out", str(out), "--quiet"]
    assert main(cmd) == 0
    rec = recorded_files(out)
    assert "puzzles.sdm" in rec and "trace/viewer.html" in rec and "trace/manifest.json" in rec
    assert main(cmd) == 0  # a re-run replaces its own files
    capsys.readouterr()
    (out / "trace" / "viewer.html").write_text("edited")
    assert main(cmd) == 2
    assert "viewer.html (changed since" in one_error_line(capsys)
    (out / "trace" / "viewer.html").unlink()
    (out / "notes.md").write_text("mine")
    assert main(cmd) == 2
    assert "notes.md (not written by this tool)" in one_error_line(capsys)
    assert (out / "notes.md").read_text() == "mine"
