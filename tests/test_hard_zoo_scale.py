"""``scripts/hard_zoo_scale.py``: the hardest-puzzle selection and the tables it writes from ``interp scale`` output."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from interp.cli import main
from models.checkpoint import save_checkpoint
from tasks.sudoku.solver import solve
from helpers.tiny_models import tiny_trm

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("hard_zoo_scale", REPO / "scripts" / "hard_zoo_scale.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_select_keeps_the_puzzles_with_the_most_guesses(tmp_path):
    mod = _script()
    src = REPO / "data" / "sudoku" / "top1465.sdm"
    lines = src.read_text().splitlines()[:12]
    (tmp_path / "src.sdm").write_text("\n".join(lines) + "\n")
    mod.select_hardest(tmp_path, n=4, source=tmp_path / "src.sdm")
    picked = pd.read_csv(tmp_path / "hardest500.csv")
    from tasks.sudoku.grid import parse_puzzle

    guesses = [solve(parse_puzzle(line.split()[0])).guesses for line in lines]
    assert sorted(picked["guesses"], reverse=True) == sorted(guesses, reverse=True)[:4]
    assert min(picked["guesses"]) >= sorted(guesses, reverse=True)[3]
    chosen = (tmp_path / "sudocue_hardest500.sdm").read_text().split()
    assert [guesses[i - 1] for i in picked["line"]] == list(picked["guesses"]) and len(chosen) == 4


def test_tables_quote_the_scaling_csv(tmp_path):
    mod = _script()
    torch.manual_seed(0)
    model = tiny_trm(halt_max_steps=2)
    with torch.no_grad():
        model.q_head.weight.normal_(0, 0.1)
    save_checkpoint(tmp_path / "tiny", model, extra={"task": {"name": "sudoku", "grid_size": 9}})
    run = tmp_path / "trm_top1465"
    assert main(["scale", "--ckpt", str(tmp_path / "tiny"), "--puzzle-file", str(REPO / "data/sudoku/qqwing_easy.sdm"),
                 "--limit", "4", "--budget", "2", "--depth", "2", "--k", "2", "--strategies", "aug", "--out", str(run),
                 "-q"]) == 0
    text = mod.tables(tmp_path, ["trm_top1465"])
    t = pd.read_csv(run / "scaling.csv")
    plain = t[(t["k"] == 1) & (t["depth"] == 2) & (t["halting"] == "off") & (t["rule"] == "majority")].iloc[0]
    line = next(s for s in text.splitlines() if s.startswith("| plain model"))
    assert f"({plain['solved']}/4)" in line and f"{100 * plain['hi']:.1f}]" in line
    front = pd.read_csv(run / "pareto.csv")
    assert text.count("| aug |") >= len(front) and np.isfinite(front["flops"]).all()
