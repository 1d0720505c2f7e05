"""The GPU check's dry run: every section's code path runs on CPU and the report says what it skipped."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_reports_every_section_and_what_it_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("RECURSE_INTERP_CACHE", str(tmp_path / "datasets"))
    out = tmp_path / "gpu.md"
    rc = _gpu_check().main(["--dry-run", "--out", str(out), "--train", "trm-sudoku9", "hrm-lm-pydoc",
                            "--cache-models", "hrm-sudoku9", "hrm-paper-27M"])
    assert rc == 0
    text = out.read_text()
    assert text.startswith("# GPU check: DRY RUN on CPU (no number below is a GPU measurement)")
    skipped = next(line for line in text.splitlines() if line.startswith("- Skipped: "))
    assert "SDPA flash / memory-efficient kernels (CUDA only)" in skipped
    assert "torch.compile" in skipped
    assert "sections done: env, attention, cache, train" in text
    assert "failed" not in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ")]
    trained = {(r[0].strip("| "), r[1]) for r in rows if "ok, warm-up" in r[-1]}
    assert trained == {("trm-sudoku9", "fp32"), ("trm-sudoku9", "bf16"), ("hrm-lm-pydoc", "fp32"), ("hrm-lm-pydoc", "bf16")}
    assert all("1/1 ok" in r[-1] for r in rows if "ok, warm-up" in r[-1])
    cached = [r[0].strip("| ") for r in rows if len(r) == 10 and r[-1].strip(" |").isdigit()]
    assert cached == ["hrm-sudoku9", "hrm-paper-27M (random)"]
    # the math kernel is its own reference: zero error
    assert any(r[0] == "| sdpa-math" and r[1] == "0.00e+00" for r in rows)
