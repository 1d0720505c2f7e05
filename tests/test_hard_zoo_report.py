"""scripts/hard_zoo_report.py end to end on tiny random HRM/TRM checkpoints and 4 puzzles."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from models import HRMConfig, TRMConfig, build_model
from models.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # the module fixture runs the whole report script (~15 s)
SECTIONS = ("## Accuracy", "## Failure taxonomy", "## Jump steps by outcome", "## One-unknown-cell probe",
            "## Stability", "## Test-time scaling strategies")


def _script():
    spec = importlib.util.spec_from_file_location("hard_zoo_report", ROOT / "scripts" / "hard_zoo_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("hard_zoo")
    torch.manual_seed(0)
    extra = {"task": {"name": "sudoku", "grid_size": 9}}
    small = dict(vocab_size=11, seq_len=81, hidden_size=16, num_heads=2, H_cycles=2, L_cycles=1, halt_max_steps=2,
                 expansion=2.0)
    save_checkpoint(root / "trm-tiny", build_model(TRMConfig(num_layers=1, **small)), extra=extra)
    save_checkpoint(root / "hrm-tiny", build_model(HRMConfig(H_layers=1, L_layers=1, **small)), extra=extra)
    out = root / "report"
    mod = _script()
    assert mod.main(["--hrm", str(root / "hrm-tiny"), "--trm", str(root / "trm-tiny"), "--n", "4", "--probe-n", "2",
                     "--scaling-n", "4", "--scaling-k", "2", "--scaling-strategies", "perturb,ptrm",
                     "--n-boot", "50", "--threads", "1", "--out", str(out), "--work", str(root / "work")]) == 0
    return mod, out


def test_files_and_sections(report):
    _, out = report
    for name in ("report.md", "summary.csv", "provenance.json", "scaling.csv", "hrm-tiny_per_puzzle.csv",
                 "trm-tiny_per_puzzle.csv", "hrm-tiny_one_cell_probe.csv", "trm-tiny_stability.png",
                 "hrm-tiny_taxonomy.png", "trm-tiny_jumps.png"):
        assert (out / name).exists(), name
    md = (out / "report.md").read_text()
    for s in SECTIONS:
        assert s in md, s
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["n_puzzles"] == 4 and prov["thresholds"]["convergence_tol"] == 1e-3
    assert prov["versions"]["torch"] == torch.__version__
    for m in ("hrm-tiny", "trm-tiny"):
        assert len(prov["models"][m]["checkpoint_sha256"]) == 64
        assert prov["models"][m]["stability_solved_agrees_with_trace"]
    assert [p["file"] for p in prov["puzzles"]] == ["data/sudoku/top1465.sdm", "data/sudoku/sudoku17_first1000.sdm"]
    assert all(len(p["sha256"]) == 64 for p in prov["puzzles"])


def test_markdown_numbers_match_csvs(report):
    mod, out = report
    md = (out / "report.md").read_text()
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["section"]) >= {"accuracy", "taxonomy", "jumps", "one_cell", "stability"}
    lines = md.splitlines()
    for _, r in summary.iterrows():
        row = next(l for l in lines if l.startswith(f"| {r['metric']} |"))
        cols = [c.strip() for c in row.strip("|").split("|")]
        header = next(l for l in reversed(lines[:lines.index(row)]) if l.startswith("| metric |"))
        models = [c.strip() for c in header.strip("|").split("|")][1:]
        assert cols[1 + models.index(r["model"])] == mod.fmt_row(r), (r["metric"], r["model"])
    scal = pd.read_csv(out / "scaling.csv")
    assert set(scal["strategy"]) == {"perturb", "ptrm"} and set(scal["k"]) == {1, 2}
    for _, r in scal.iterrows():
        row = next(l for l in lines if l.startswith(f"| {r['strategy']} | {r['rule']} |"))
        cell = row.strip("|").split("|")[2 + sorted(scal["k"].unique()).index(r["k"])].strip()
        assert cell.startswith(f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")


def test_summary_agrees_with_per_puzzle(report):
    _, out = report
    summary = pd.read_csv(out / "summary.csv").set_index(["model", "metric"])
    for m in ("hrm-tiny", "trm-tiny"):
        pp = pd.read_csv(out / f"{m}_per_puzzle.csv")
        assert len(pp) == 4 and list(pp["set"].unique()) == ["top1465.sdm", "sudoku17_first1000.sdm"]
        failed = ~pp["final_exact"].astype(bool)
        assert summary.loc[(m, "exact after all segments"), "successes"] == (~failed).sum()
        settled = summary.loc[(m, "failed: settled on a wrong fixed point")]
        wandering = summary.loc[(m, "failed: still wandering at the end")]
        assert settled["n"] == wandering["n"] == failed.sum()
        assert settled["successes"] == (pp["converged"] & failed).sum()
        assert settled["successes"] + wandering["successes"] == failed.sum()
        assert np.isclose(summary.loc[(m, "mean ftle, failed"), "value"], pp.loc[failed, "ftle"].mean())
        probe = pd.read_csv(out / f"{m}_one_cell_probe.csv")
        assert len(probe) == 2 and summary.loc[(m, "grid restored (whole output = solution)"), "n"] == 2


def test_fmt_row():
    mod = _script()
    assert mod.fmt_row({"value": 0.5, "ci_low": 0.2, "ci_high": 0.8, "n": 10, "successes": 5}) == \
        "0.500 [0.200, 0.800] (5/10)"
    assert mod.fmt_row({"value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0,
                        "successes": float("nan")}) == "n/a (n=0)"
