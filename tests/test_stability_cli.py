"""``interp stability`` on a tiny checkpoint: files written, report printed, one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from interp.cli import main
from models.checkpoint import save_checkpoint
from helpers.tiny_models import tiny_trm

PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
HARD = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    trm = tiny_trm(hidden_size=16, L_cycles=1)
    save_checkpoint(root / "trm", trm, extra={"task": {"name": "sudoku", "grid_size": 9}})
    return root / "trm"


def test_stability_command(ckpt, tmp_path, capsys):
    f = tmp_path / "p.sdm"
    f.write_text(f"{PUZZLE}\n{HARD}\n{PUZZLE}\n")
    out = tmp_path / "stab"
    assert main(["stability", "--ckpt", str(ckpt), "--puzzle-file", str(f), "--tangents", "2", "--unit", "cycle",
                 "--out", str(out), "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "ROC AUC for predicting failure" in text and "largest FTLE" in text
    for name in ("per_puzzle.csv", "per_step.csv", "settings.json", "report.md", "stability.png"):
        assert (out / name).exists(), name
    pp = pd.read_csv(out / "per_puzzle.csv")
    assert len(pp) == 3 and {"ftle", "ftle_1", "residual", "q_halt", "solved"} <= set(pp.columns)
    assert pd.read_csv(out / "per_step.csv")["step"].max() == 4  # 2 segments x 2 cycles


def test_stability_command_errors(ckpt, capsys):
    assert main(["stability", "--ckpt", str(ckpt), "--puzzle", PUZZLE, "--tangents", "0"]) == 2
    assert "argument --tangents: must be >= 1" in capsys.readouterr().err
    assert main(["stability", "--ckpt", str(ckpt), "--puzzle", "123"]) == 2
    assert capsys.readouterr().err.startswith("error:")
