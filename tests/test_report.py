"""Report tables (mean ± t-interval) against independent computations, and ``interp report`` end to end."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import statistics

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from common.stats import mean_ci
from interp.report.tables import (
    PHASES,
    ReportError,
    cgar_table,
    gate_alignment_table,
    gate_phase_rows,
    grad_arch_table,
    slow_ablation_table,
    training_run_row,
)

CELL = re.compile(r"(-?\d+\.\d+)(?: \[(-?\d+\.\d+), (-?\d+\.\d+)\])? \(n=(\d+)\)")


def _expected(values) -> tuple[float, tuple[float, float], int]:
    """Mean, 95% interval, n: Wilson (written out here) for 0/1 values, else scipy's percentile bootstrap."""
    v = np.asarray([float(x) for x in values])
    n = len(v)
    m = statistics.fmean(v)
    if n < 2:
        return m, (float("nan"), float("nan")), n
    if set(v.tolist()) <= {0.0, 1.0}:
        z = stats.norm.ppf(0.975)
        c = (m + z * z / (2 * n)) / (1 + z * z / n)
        h = z * math.sqrt(m * (1 - m) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return m, (max(0.0, c - h) if m > 0 else 0.0, min(1.0, c + h) if m < 1 else 1.0), n
    if (v == v[0]).all():
        return m, (m, m), n
    r = stats.bootstrap((v,), np.mean, n_resamples=2000, method="percentile", random_state=np.random.default_rng(0))
    return m, (max(r.confidence_interval.low, v.min()), min(r.confidence_interval.high, v.max())), n


def _cell(text: str) -> tuple[float, tuple[float, float], int]:
    m = CELL.fullmatch(text.strip())
    assert m, f"not a 'mean [low, high] (n=k)' cell: {text!r}"
    ci = (float(m.group(2)), float(m.group(3))) if m.group(2) else (float("nan"), float("nan"))
    return float(m.group(1)), ci, int(m.group(4))


def _md_rows(md: str) -> list[list[str]]:
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in rows[2:]]


def _check_cell(text: str, values, digits: int = 3) -> None:
    m, half, n = _cell(text)
    em, eh, en = _expected(values)
    assert n == en
    assert m == pytest.approx(em, abs=0.6 * 10 ** -digits)
    if en > 1:
        assert half == pytest.approx(eh, abs=0.6 * 10 ** -digits)
        assert eh[0] >= min(map(float, values)) - 1e-9  # inside the data: a cross-entropy interval stays >= 0


# ----------------------------------------------------------------------------- statistics
def test_mean_ci_is_the_student_t_interval():
    rng = np.random.default_rng(1)
    v = rng.normal(3.0, 2.0, size=7)
    ci = mean_ci(np.r_[v, np.nan])  # NaN dropped
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    assert ci.n == 7 and ci.mean == pytest.approx(v.mean())
    assert (ci.low, ci.high) == (pytest.approx(lo), pytest.approx(hi))
    one = mean_ci([2.5])
    assert one.n == 1 and one.mean == 2.5 and math.isnan(one.low)
    assert mean_ci([]).n == 0


# ----------------------------------------------------------------------------- builders
def _ablation_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for N, T in ((2, 2), (3, 1)):
        for s in range(4):
            for puzzle in range(5):
                clean = 1.0 + rng.random()
                rows.append({"N": N, "T": T, "seed": s, "mode": "freeze_init", "puzzle": puzzle,
                             "ce_clean": clean, "ce_ablated": clean + N * 0.3 + rng.normal(0, 0.1)})
    return pd.DataFrame(rows)


def test_slow_ablation_table_averages_within_seed_then_intervals_across_seeds():
    df = _ablation_frame()
    t = slow_ablation_table(df)
    rows = _md_rows(t.markdown())
    assert [r[:3] for r in rows] == [["2", "2", "freeze_init"], ["3", "1", "freeze_init"]]
    for r, (N, T) in zip(rows, ((2, 2), (3, 1))):
        part = df[(df["N"] == N) & (df["T"] == T)]
        per_seed = part.groupby("seed")[["ce_clean", "ce_ablated"]].mean()
        _check_cell(r[3], per_seed["ce_clean"])
        _check_cell(r[4], per_seed["ce_ablated"])
        _check_cell(r[5], per_seed["ce_ablated"] - per_seed["ce_clean"])
    # the same numbers in LaTeX, with \pm and escaped underscores
    tex = t.latex()
    first = _md_rows(t.markdown())[0][5].replace(" ± ", r" $\pm$ ")
    assert first in tex and r"freeze\_init" in tex and r"\toprule" in tex
    # without a unit every row (puzzle) is a replicate
    t2 = slow_ablation_table(df, unit=None)
    part = df[(df["N"] == 2) & (df["T"] == 2)]
    _check_cell(_md_rows(t2.markdown())[0][5], part["ce_ablated"] - part["ce_clean"])
    with pytest.raises(ReportError, match="none of the setting columns"):
        slow_ablation_table(df.drop(columns=["N", "T"]))


def test_grad_arch_table_is_2x2_with_labelled_gradients():
    rng = np.random.default_rng(2)
    rows = [{"arch": a, "grad_mode": g, "seed": s, "exact_accuracy": rng.random()}
            for a, gs in (("HRM", ("one_step", "full_bptt")), ("TRM", ("last_recursion", "full_bptt")))
            for g in gs for s in range(3)]
    df = pd.DataFrame(rows)
    t = grad_arch_table(df)
    md = t.markdown()
    header = [c.strip() for c in md.splitlines()[2].strip("|").split("|")]
    assert header == ["architecture", "1-step gradient", "full BPTT"]
    body = _md_rows(md)
    assert [r[0] for r in body] == ["HRM", "TRM"]
    for r, (a, one) in zip(body, (("HRM", "one_step"), ("TRM", "last_recursion"))):
        _check_cell(r[1], df[(df.arch == a) & (df.grad_mode == one)]["exact_accuracy"])
        _check_cell(r[2], df[(df.arch == a) & (df.grad_mode == "full_bptt")]["exact_accuracy"])


def test_cgar_table_speedup_is_ratio_of_mean_wall_times():
    rows = []
    for v, t0 in (("both", 50.0), ("HSW", 95.0), ("baseline", 100.0), ("PDC", 60.0)):
        for s in range(3):
            rows.append({"variant": v, "seed": s, "exact_accuracy": 0.5 + 0.01 * s, "wall_time_s": t0 + s})
    df = pd.DataFrame(rows)
    t = cgar_table(df)
    body = _md_rows(t.markdown())
    assert [r[0] for r in body] == ["baseline", "PDC", "HSW", "both"]
    for r in body:
        part = df[df.variant == r[0]]
        _check_cell(r[1], part["exact_accuracy"])
        _check_cell(r[2], part["wall_time_s"], digits=1)
        want = df[df.variant == "baseline"]["wall_time_s"].mean() / part["wall_time_s"].mean()
        assert r[3] == f"{want:.2f}×"
    assert r"$\times$" in t.latex()
    num = t.numbers[(t.numbers.metric == "speedup") & (t.numbers.variant == "both")]
    assert float(num["mean"].iloc[0]) == pytest.approx(101.0 / 51.0)


def test_gate_alignment_table_from_an_hrm_lm_trace():
    import interp
    from models.registry import build_model

    m = build_model({"family": "hrm_lm", "vocab_size": 256, "seq_len": 16, "hidden_size": 32, "num_heads": 2,
                     "slow_period": 3, "slow_updates": 2}).eval()
    tr = interp.trace(m, torch.randint(0, 256, (3, 16)), states="summary")
    rows = gate_phase_rows(tr, N=3, T=2)
    assert set(rows["phase"]) <= set(PHASES) and len(rows) == 3 * rows["phase"].nunique()
    t = gate_alignment_table(rows, unit=None)
    slow = tr.steps["is_slow"].to_numpy(bool)
    g = tr.metric("mean.gate_fast").astype(float)
    per_seq = np.nanmean(np.where(slow[None], g, np.nan), axis=1)  # independent: mean over the slow-firing steps
    body = _md_rows(t.markdown())
    fires = [r for r in body if r[2] == "Slow fires"][0]
    _check_cell(fires[3], per_seq)


def test_training_run_row_reads_last_eval_and_wall_time(tmp_path):
    recs = [{"step": 0, "time": 100.0, "loss": 2.0}, {"step": 10, "split": "eval", "exact_accuracy": 0.1, "time": 130.0},
            {"step": 20, "split": "eval", "exact_accuracy": 0.4, "time": 160.5}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    row = training_run_row(str(tmp_path), variant="PDC", seed=1)
    assert row["exact_accuracy"] == 0.4 and row["wall_time_s"] == 60.5 and row["variant"] == "PDC"
    with pytest.raises(ReportError, match="no metrics.jsonl"):
        training_run_row(str(tmp_path / "nope"))


# ----------------------------------------------------------------------------- the command
@pytest.fixture
def fixture_dir(tmp_path):
    """A tiny TRM checkpoint, a 5-puzzle Sudoku dataset directory and a report config."""
    from models.checkpoint import save_checkpoint
    from models.registry import build_model

    m = build_model({"family": "trm", "vocab_size": 11, "seq_len": 81, "hidden_size": 32, "num_heads": 2,
                     "H_cycles": 2, "L_cycles": 2, "num_layers": 1, "halt_max_steps": 2})
    save_checkpoint(tmp_path / "ckpt", m, extra={"task": {"name": "sudoku", "grid": [9, 9]}})
    rng = np.random.default_rng(0)
    x = rng.integers(1, 11, (5, 81)).astype(np.uint8)
    y = rng.integers(2, 11, (5, 81)).astype(np.uint8)
    y[x >= 2] = x[x >= 2]
    d = tmp_path / "sudoku" / "test"
    d.mkdir(parents=True)
    np.save(d / "all__inputs.npy", x)
    np.save(d / "all__labels.npy", y)
    (d / "dataset.json").write_text(json.dumps({"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0,
                                                "vocab_size": 11, "seq_len": 81, "num_puzzle_identifiers": 1,
                                                "total_groups": 5, "mean_puzzle_examples": 1, "sets": ["all"],
                                                "task": "sudoku"}))
    pd.DataFrame([{"variant": v, "seed": s, "exact_accuracy": 0.1 * (i + 1) + 0.01 * s, "wall_time_s": 10.0 * (i + 1)}
                  for i, v in enumerate(("baseline", "PDC", "HSW", "both")) for s in range(2)]).to_csv(
        tmp_path / "cgar.csv", index=False)
    (tmp_path / "report.yaml").write_text(
        "title: Test report\n"
        "runs:\n"
        "  - {name: tiny, checkpoint: ckpt, data: sudoku, limit: 4, labels: {seed: 0}}\n"
        "analyses: [summary, jumps, ablation, viewer]\n"
        "ablation: {target: slow, modes: [freeze_init]}\n"
        "viewer: {puzzles: [1], strip_frames: 3}\n"
        "tables:\n"
        "  - {kind: summary, options: {unit: null}}\n"
        "  - {kind: slow_ablation, options: {unit: null, settings: [run]}}\n"
        "  - {kind: cgar, source: cgar.csv}\n"
    )
    return tmp_path, m, x[:4].astype(np.int64), y[:4].astype(np.int64)


def test_report_command_writes_tables_figures_html_and_provenance(fixture_dir, capsys):
    import interp
    from interp.cli.report import main

    root, model, x, y = fixture_dir
    out = root / "out"
    assert main(["--config", str(root / "report.yaml"), "--out", str(out)]) == 0
    assert "report written to" in capsys.readouterr().out
    for rel in ("report.md", "commands.txt", "provenance.json", "tables/summary.md", "tables/summary.tex",
                "tables/summary.csv", "tables/slow_ablation.md", "tables/cgar.tex", "data/tiny/puzzles.csv",
                "figures/tiny_jumps.png", "figures/tiny_jumps.svg", "figures/tiny_steps_p1.png",
                "html/tiny_viewer.html", "html/tiny_jumps.html"):
        assert (out / rel).is_file(), rel
    assert (out / "figures/tiny_jumps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "figures/tiny_jumps.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    # the numbers: recompute the final per-puzzle accuracy and loss with an independent trace
    tr = interp.trace(model, x, y, states="summary")
    md = (out / "report.md").read_text()
    summary = (out / "tables/summary.md").read_text()
    assert summary.split("\n\n")[1] in md  # the table is embedded in report.md
    row = _md_rows(summary)[0]
    assert row[0] == "tiny"
    _check_cell(row[1], tr.metric("exact")[:, -1].astype(float))
    _check_cell(row[2], tr.metric("token_acc")[:, -1])
    _check_cell(row[3], tr.metric("ce")[:, -1])
    tex = (out / "tables/summary.tex").read_text()
    assert row[3].replace(" ± ", r" $\pm$ ") in tex
    # slow ablation: freezing TRM's y at its initial value; delta = ablated - clean per puzzle
    res = interp.ablate(model, x, y, target="slow", mode="freeze_init")
    abl = _md_rows((out / "tables/slow_ablation.md").read_text())[0]
    _check_cell(abl[-1], res.table()["delta_ce"])
    # provenance: hashes of the checkpoint files, versions, the command
    prov = json.loads((out / "provenance.json").read_text())
    ck = prov["checkpoints"]["tiny"]
    assert ck["model.safetensors_sha256"] == hashlib.sha256((root / "ckpt/model.safetensors").read_bytes()).hexdigest()
    assert ck["config.json_sha256"] == hashlib.sha256((root / "ckpt/config.json").read_bytes()).hexdigest()
    assert prov["versions"]["torch"] and prov["versions"]["numpy"] == np.__version__
    assert prov["table_sources_sha256"][str(root / "cgar.csv")] == hashlib.sha256(
        (root / "cgar.csv").read_bytes()).hexdigest()
    cmds = (out / "commands.txt").read_text()
    assert f"--config {root / 'report.yaml'} --out {out}" in cmds and cmds.startswith("# rebuild")
    # a second run refuses to clobber without --overwrite, then replaces the report with it
    assert main(["--config", str(root / "report.yaml"), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_report_config_errors_are_one_line(tmp_path, capsys):
    from interp.cli.report import main

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("title: x\nrunz: []\n")
    assert main(["--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown config key(s) ['runz']") and err.count("\n") == 1
    cfg.write_text("tables:\n  - {kind: cgar}\n")
    assert main(["--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "needs a source file or training_runs" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing half-written
    cfg.write_text("runs:\n  - {name: a, checkpoint: nowhere, data: nodata}\n")
    assert main(["--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_add_report_parser_registers_the_subcommand():
    from interp.cli.report import add_report_parser, cmd_report

    parser = argparse.ArgumentParser(prog="interp")
    add_report_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", "--config", "c.yaml", "--out", "o"])
    assert args.func is cmd_report and args.config == "c.yaml" and not args.overwrite
    from interp.cli import build_parser

    sub = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)][0]
    if "report" not in sub.choices:
        pytest.skip("interp/cli/trace.py does not register `report` yet (add_report_parser(sub) in build_parser)")
    assert sub.choices["report"].get_default("func") is cmd_report
