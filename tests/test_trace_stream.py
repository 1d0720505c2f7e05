"""``interp trace --puzzle-file`` without --limit streams the file: chunks are read and solved inside the tracer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from interp import load_trace
from interp.cli import main
from models.checkpoint import save_checkpoint
from tasks.puzzles import SudokuFileStream, read_puzzles, TaskInfo
from helpers.tiny_models import tiny_trm

REPO = Path(__file__).resolve().parents[1]
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def _pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (puzzle, solution) pairs from one solution: relabelled digits, 35-60% blanks."""
    rng = np.random.default_rng(seed)
    sol = np.array([int(c) for c in SOLUTION])
    out = []
    for _ in range(n):
        full = (rng.permutation(9) + 1)[sol - 1]
        g = np.where(rng.random(81) < rng.uniform(0.35, 0.6), 0, full)
        out.append(("".join("." if v == 0 else str(v) for v in g), "".join(map(str, full))))
    return out


def _puzzles(n: int, seed: int = 0) -> list[str]:
    return [p for p, _ in _pairs(n, seed)]


def test_stream_matches_reading_the_whole_file(tmp_path):
    f = tmp_path / "p.sdm"
    f.write_text("Title line\n# comment\n" + "\n".join(_puzzles(7)) + "\n")
    task = TaskInfo("sudoku", (9, 9), "test")
    whole = read_puzzles(task, None, str(f))
    s = SudokuFileStream(f)
    assert len(s) == 7 and s.names == whole.names and s.notes[0] == whole.notes[0]  # the skipped-lines note
    parts = [s.slice(a, min(7, a + 3)) for a in range(0, 7, 3)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole.inputs)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole.labels)
    x, y, _ = s.slice(3, 5)  # out of order (a resumed trace): reads forward from the start again
    np.testing.assert_array_equal(x, whole.inputs[3:5])


def test_cli_trace_streams_in_chunks(tmp_path, capsys):
    torch.manual_seed(0)
    trm = tiny_trm()
    save_checkpoint(tmp_path / "trm", trm, extra={"task": {"name": "sudoku", "grid_size": 9}})
    f = tmp_path / "p.sdm"
    f.write_text("\n".join(_puzzles(9)) + "\n")
    common = ["trace", "--ckpt", str(tmp_path / "trm"), "--puzzle-file", str(f), "--show", "0", "--chunk-size", "4",
              "--state-puzzles", "2", "--viewer-puzzles", "3"]
    assert main([*common, "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr()
    assert "the summaries below cover the first 4" in out.err and "p.sdm:2" in out.out
    man = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert man["complete"] and man["n_chunks"] == 3
    assert main([*common, "--limit", "9", "--out", str(tmp_path / "m")]) == 0  # --limit: read whole, as before
    a, b = load_trace(tmp_path / "s"), load_trace(tmp_path / "m")
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.metric("token_acc"), b.metric("token_acc"))
    html = (tmp_path / "s" / "viewer.html").read_text()
    assert html.count("<option ") == 3 and (tmp_path / "s" / "plotly-cartesian.gz.js").is_file()


_RSS_SCRIPT = r"""
import resource, sys
import numpy as np
from tasks.puzzles import SudokuFileStream
from tasks.sudoku.grid import encode_grid, iter_puzzle_file
from tasks.sudoku.solver import solve
path, chunk = sys.argv[1], int(sys.argv[2])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # after the imports, before the file is read
s = SudokuFileStream(path)  # one pass: count and hash
n = 0
for a in range(0, len(s), chunk):
    x, y, _ = s.slice(a, a + chunk)
    n += len(x)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(n, len(s), base, peak)
"""


@pytest.mark.parametrize("n, bound_mb", [(20_000, 8), pytest.param(200_000, 16, marks=pytest.mark.slow)])
def test_streaming_a_big_file_keeps_memory_bounded(tmp_path, n, bound_mb):
    """Puzzles with solutions (200k: 33 MB of CSV; its arrays alone would be ~150 MB): peak RSS grows by
    less than ``bound_mb`` while every chunk is read (the 200k case takes about a minute: marked slow)."""
    f = tmp_path / "big.csv"
    pairs = [f"{p},{q}\n" for p, q in _pairs(1000)]
    with open(f, "w") as fh:
        fh.write("puzzle,solution\n")
        for i in range(0, n, 1000):
            fh.writelines(pairs)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(f), "1024"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got, total, base_kb, peak_kb = map(int, r.stdout.split())
    assert got == total == n
    print(f"peak RSS growth {(peak_kb - base_kb) / 1024:.1f} MB")
    assert (peak_kb - base_kb) < bound_mb * 1024, f"peak RSS grew {(peak_kb - base_kb) / 1024:.0f} MB while streaming"
