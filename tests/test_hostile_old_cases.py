"""The remaining old hostile cases of issue 26 (mechanism 8), each run through its command: one line, exit 2,
nothing written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from interp.cli import main as interp_main
from training.cli import main as train_main

REPO = Path(__file__).resolve().parents[1]
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


@pytest.fixture(scope="module")
def ck(tmp_path_factory) -> Path:
    from helpers.tiny_models import tiny_trm
    from models.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path_factory.mktemp("old") / "ck", tiny_trm(halt_max_steps=1, H_cycles=1, L_cycles=1),
                           extra={"task": {"name": "sudoku", "grid_size": 9}})


def _edited(ck: Path, dst: Path, edit) -> Path:
    shutil.copytree(ck, dst)
    meta = json.loads((dst / "config.json").read_text())
    edit(meta)
    (dst / "config.json").write_text(json.dumps(meta))
    return dst


def _one_line(capsys, *words: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err[-300:]
    for w in words:
        assert w in err, err


@pytest.mark.parametrize("where,value,word", [("model.vocab_size", [11], "vocab_size"),
                                               ("task.grid_size", [9], "grid_size"),
                                               ("task.grid_size", "nine", "grid_size")])
def test_a_list_where_a_number_belongs(ck, tmp_path, capsys, where, value, word):
    part, field = where.split(".")
    d = _edited(ck, tmp_path / "bad", lambda m: m[part].__setitem__(field, value))
    assert interp_main(["trace", "--ckpt", str(d), "--puzzle", PUZZLE, "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, word)
    assert not (tmp_path / "o").exists()


def test_official_dataset_json_seq_len_list(tmp_path, capsys):
    from models.official import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset.json").write_text(json.dumps({"seq_len": [81], "vocab_size": 11}))
    fixture = REPO / "tests" / "fixtures" / "checkpoint_formats" / "hrm_step"
    assert main(["info", str(fixture), "--dataset", str(data)]) == 2
    _one_line(capsys, "seq_len")


def test_eval_of_a_trm_whose_config_says_text(ck, tmp_path, capsys):
    d = _edited(ck, tmp_path / "txt", lambda m: m["task"].__setitem__("name", "text"))
    assert train_main(["eval", "--ckpt", str(d), "--n", "2"]) == 2
    _one_line(capsys, "task and model disagree")


def test_resume_when_last_is_a_symlink(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out / "last")
    assert train_main(["train", "--config", str(REPO / "zoo" / "configs" / "trm_sudoku9.yaml"), "--out", str(out),
                       "--resume"]) == 2
    _one_line(capsys, "symbolic link")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_puzzle_file_of_only_comments(ck, tmp_path, capsys):
    pf = tmp_path / "c.sdm"
    pf.write_text("# one\n# two\n")
    assert interp_main(["trace", "--ckpt", str(ck), "--puzzle-file", str(pf), "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, "no 9x9 Sudoku puzzle")
    assert not (tmp_path / "o").exists()


def test_big_puzzle_file_without_limit_says_so_first(monkeypatch, tmp_path, capsys):
    import interp.puzzle_inputs as pi

    monkeypatch.setattr(pi, "BIG_FILE_BYTES", 10)
    pf = tmp_path / "p.sdm"
    pf.write_text(PUZZLE + "\n")
    meta = {"model": {"family": "trm", "vocab_size": 11, "seq_len": 81}, "task": {"name": "sudoku"}}
    pi.load_puzzle_inputs(meta, puzzle_file=pf)
    assert "without --limit" in capsys.readouterr().err
    pi.load_puzzle_inputs(meta, puzzle_file=pf, limit=1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv,word", [
    (["stability", "--batch-size", "-2"], "--batch-size"), (["stability", "--segments", "0"], "--segments"),
    (["stability", "--threads", "-1"], "argument --threads"), (["trace", "--state-puzzles", "-1"], "--state-puzzles"),
    (["trace", "--show", "-1"], "--show"), (["trace", "--viewer-puzzles", "0"], "--viewer-puzzles"),
    (["guess-scale", "--n-boot", "0", "--ci", "bootstrap", "--out", "gs"], "--n-boot"),
])
def test_old_option_cases_refused_before_any_write(ck, tmp_path, capsys, monkeypatch, argv, word):
    monkeypatch.chdir(tmp_path)
    cmd, rest = argv[0], argv[1:]
    assert interp_main([cmd, "--ckpt", str(ck), "--puzzle-file", str(REPO / "data" / "sudoku" /
                        "generated_moderate.sdm"), "--limit", "1", *rest]) == 2
    _one_line(capsys, word)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,word", [(["--every", "0"], "--every"), (["--topk", "0"], "--topk"),
                                       (["--l1", "nan"], "--l1"), (["--steps", "-1"], "--steps"),
                                       (["--topk", "300", "--features", "256"], "--topk")])
def test_sae_demo_options(tmp_path, capsys, monkeypatch, argv, word):
    from tests.helpers.cli_walk import Entry

    monkeypatch.chdir(tmp_path)
    e = Entry(REPO / "scripts" / "sae_demo.py")
    assert e.main(["--puzzle-file", "p.sdm", *argv]) == 2
    _one_line(capsys, word)
    assert list(tmp_path.iterdir()) == []


def test_eval_n_huge_without_a_cached_dataset(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECURSE_INTERP_CACHE", str(tmp_path / "cache"))  # nothing cached: --n means fresh puzzles
    assert train_main(["eval", "--ckpt", str(REPO / "zoo" / "trm-sudoku9"), "--n", "100000000"]) == 2
    _one_line(capsys, "fresh puzzles")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.npy"))
