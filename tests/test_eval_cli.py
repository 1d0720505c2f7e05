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
