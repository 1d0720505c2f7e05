"""Helpers for the robustness suite: a code-executing pickle, directory snapshots, tiny data and configs."""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]

# a 9x9 Sudoku with a unique solution (the classic Wikipedia example)
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


class ExecOnLoad:
    """Unpickling this object runs ``os.system("touch <marker>")``: a stand-in for a malicious checkpoint."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def write_evil_pickles(directory: Path, marker: Path) -> dict[str, Path]:
    """The same payload as a ``torch.save`` zip file, a bare pickle, and a pickle named like our weights."""
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"lm_head.weight": torch.zeros(2, 2), "evil": ExecOnLoad(marker)}
    files = {"torch_save": directory / "step_100", "pickle": directory / "evil.pkl"}
    torch.save(payload, files["torch_save"])
    with open(files["pickle"], "wb") as f:
        pickle.dump(payload, f, protocol=2)
    return files


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (what a failed command must leave unchanged)."""
    if not root.exists():
        return {}
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir():
            out[str(p.relative_to(root)) + "/"] = "dir"
    return out


def one_error_line(err: str) -> str:
    """Assert ``err`` is exactly one ``error: ...`` line and return it."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env.pop("PYTHONWARNINGS", None)
    return env


PYTHON = sys.executable


def sudoku_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random 9x9-shaped token rows (inputs, labels); enough for tracing, no solver needed."""
    rng = np.random.default_rng(seed)
    y = rng.integers(2, 11, size=(n, 81))
    x = np.where(rng.random((n, 81)) < 0.5, 1, y)
    return x.astype(np.int64), y.astype(np.int64)


HRM = dict(family="hrm", hidden_size=32, num_heads=2, expansion=2, H_cycles=1, L_cycles=2, H_layers=1, L_layers=1,
           halt_max_steps=2)
TRM = dict(family="trm", hidden_size=32, num_heads=2, expansion=2, H_cycles=2, L_cycles=2, num_layers=1,
           halt_max_steps=2)


def write_shift_task(root: Path, n_train: int = 32, n_test: int = 8, L: int = 8, seed: int = 0) -> Path:
    """A tiny puzzle dataset (label = input digit + 1 mod 4, tokens 2..5) in the reference layout."""
    from tasks.puzzle_dataset import write_puzzle_split

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(2, 6, size=(n, L))
        y = (x - 2 + 1) % 4 + 2
        write_puzzle_split(root / split, x, y, np.zeros(n, np.int32), np.arange(n + 1), np.arange(n + 1),
                           {"vocab_size": 6, "task": "sudoku"})
    return root
