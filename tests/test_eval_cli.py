"""``python -m training eval``: --n without building the dataset, puzzle files, honest headlines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CKPT = REPO / "zoo" / "trm-sudoku9"
FIX = REPO / "tests" / "fixtures" / "puzzles"

pytestmark = pytest.mark.skipif(not (CKPT / "config.json").exists(), reason="zoo/trm-sudoku9 not present")


def _eval(*args: str, env_cache: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "RECURSE_INTERP_CACHE": str(env_cache), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "training", "eval", "--ckpt", str(CKPT), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


@pytest.mark.slow
def test_eval_puzzle_file_headline(tmp_path):
    r = _eval("--puzzle-file", str(FIX / "title_and_comments.sdm"), env_cache=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "on title_and_comments.sdm (2 puzzles): n = 2, blanks per puzzle 51..64" in out
    for head in ("exact at halt (q_halt > 0):", "exact after all 6 segments:", "blank-cell accuracy:",
                 "mean segments to halt:", "Wilson"):
        assert head in out, out
    assert "skipped 4 line(s)" in r.stderr and "\r" not in r.stderr  # no progress bar when not a terminal
    # --data may point at a puzzle file too
    r = _eval("--data", str(FIX / "bom.sdm"), "--json", env_cache=tmp_path)
    res = json.loads(r.stdout)
    assert res["n"] == 2 and 0 <= res["blank_accuracy_ci"][0] <= res["blank_accuracy"] <= res["blank_accuracy_ci"][1]
    assert res["exact_accuracy_ci"][0] <= res["exact_accuracy"] <= res["exact_accuracy_ci"][1]


@pytest.mark.slow
def test_eval_n_does_not_build_the_dataset(tmp_path):
    r = _eval("--n", "3", "--json", env_cache=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["n"] == 3 and "3 fresh generated puzzles (seed [0, 1]" in res["set"]
    assert not any(tmp_path.iterdir())  # nothing was built into the cache
    lo, hi = res["blanks_range"]
    assert 30 <= lo <= hi <= 45  # the checkpoint's blank range
    # the same command gives the same puzzles (deterministic seed)
    assert json.loads(_eval("--n", "3", "--json", env_cache=tmp_path).stdout)["blanks_range"] == [lo, hi]


def test_language_model_eval_shows_no_exact_accuracy():
    from training.cli import eval_headline

    text = eval_headline({"ckpt": "zoo/hrm-lm-pydoc", "val_loss": 1.5, "val_ppl": 4.48, "set": "val"})
    assert "exact" not in text and "nats/token" in text


def _eval_json(capsys, *args: str) -> dict:
    from training.cli import main

    assert main(["eval", "--ckpt", str(CKPT), "--json", "--quiet", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_drops_puzzles_equivalent_to_training(tmp_path, capsys, monkeypatch):
    import numpy as np

    from tasks.sudoku.augment import SudokuTransform
    from tasks.sudoku.generate import generate
    from tasks.sudoku.grid import grid_to_line

    monkeypatch.setenv("RECURSE_INTERP_CACHE", str(tmp_path / "cache"))
    recs = generate(6, size=9, min_blanks=30, max_blanks=40, seed=99)
    held = tmp_path / "held.sdm"
    held.write_text("".join(grid_to_line(r.puzzle) + "\n" for r in recs))
    rng = np.random.default_rng(3)
    train = tmp_path / "train.sdm"  # transformed solutions of puzzles 1 and 4 plus an unrelated grid
    other = generate(1, size=9, seed=123)[0].solution
    train.write_text("".join(grid_to_line(g) + "\n" for g in
                             (SudokuTransform.random(rng, 9).apply(recs[1].solution),
                              SudokuTransform.random(rng, 9).apply(recs[4].solution), other)))
    res = _eval_json(capsys, "--puzzle-file", str(held), "--train-set", str(train))
    assert res["dedup"]["dropped"] == 2 and res["dedup"]["dropped_indices"] == [1, 4]
    assert res["dedup"]["considered"] == 6 and res["n"] == 4
    kept = tmp_path / "kept.sdm"  # the same numbers as scoring the kept puzzles directly
    kept.write_text("".join(grid_to_line(recs[i].puzzle) + "\n" for i in (0, 2, 3, 5)))
    ref = _eval_json(capsys, "--puzzle-file", str(kept))
    assert "dedup" not in ref
    for key in ("exact_accuracy", "exact_accuracy_at_halt", "blank_accuracy", "n"):
        assert res[key] == ref[key]
    assert any((tmp_path / "cache" / "canonical").iterdir())  # the training keys are cached
    # --n limits the puzzles considered before dropping
    res = _eval_json(capsys, "--puzzle-file", str(held), "--train-set", str(train), "--n", "3")
    assert res["dedup"]["considered"] == 3 and res["dedup"]["dropped"] == 1 and res["n"] == 2
    from training.cli import eval_headline

    assert "dropped 1 of the 3 puzzles: solution grid equivalent (up to symmetry)" in eval_headline(
        {**res, "ckpt": "x"})


def test_eval_train_set_is_for_sudoku_only(capsys):
    from training.cli import main

    assert main(["eval", "--ckpt", str(REPO / "zoo" / "trm-maze9"), "--puzzle-file", str(REPO / "data" / "maze" / "maze9.txt"),
                 "--train-set", str(REPO / "data" / "maze" / "maze9.txt"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--train-set deduplicates Sudoku sets" in err[0]
