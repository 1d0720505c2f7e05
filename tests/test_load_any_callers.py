"""``load_any`` behind every checkpoint reader: ``python -m training eval``, ``interp report`` and the
hard-zoo report read an official HRM checkpoint (a ``step_N`` file next to ``all_config.yaml``), not only ours."""

from __future__ import annotations

import json
from pathlib import Path

from test_official import reference_arch, reference_state, save_reference

FIX = Path(__file__).resolve().parent / "fixtures" / "puzzles"


def _official_sudoku_run(tmp_path: Path) -> Path:
    """An official-format HRM Sudoku run directory (the reference training script's layout)."""
    arch = reference_arch("hrm", puzzle_emb_ndim=32)
    sd = reference_state(arch, vocab=11, seq_len=81, n_ids=1)
    return save_reference(tmp_path, arch, sd, data_path="data/sudoku-extreme-1k-aug-1000")


def test_training_eval_reads_an_official_checkpoint(tmp_path, capsys, monkeypatch):
    from training.cli import main

    monkeypatch.setenv("RECURSE_INTERP_CACHE", str(tmp_path / "cache"))
    run = _official_sudoku_run(tmp_path)
    code = main(["eval", "--ckpt", str(run / "step_1200"), "--puzzle-file", str(FIX / "bom.sdm"), "--json",
                 "--n-boot", "50"])
    out = capsys.readouterr()
    assert code == 0, out.err
    res = json.loads(out.out)
    assert res["n"] == 2 and res["ckpt"].endswith("step_1200")
    assert 0 <= res["exact_accuracy"] <= 1


def test_interp_report_reads_an_official_checkpoint(tmp_path, capsys):
    from interp.cli.report import main

    run = _official_sudoku_run(tmp_path)
    (tmp_path / "report.yaml").write_text(
        "title: Official\n"
        "runs:\n"
        f"  - {{name: official, checkpoint: {run / 'step_1200'}, puzzle_file: {FIX / 'bom.sdm'}, limit: 2}}\n"
        "analyses: [summary]\n"
    )
    assert main(["--config", str(tmp_path / "report.yaml"), "--out", str(tmp_path / "out")]) == 0, \
        capsys.readouterr().err
    prov = json.loads((tmp_path / "out" / "provenance.json").read_text())
    ck = prov["checkpoints"]["official"]
    assert ck["family"] == "hrm" and len(ck["model.safetensors_sha256"]) == 64  # the step_1200 file's hash
    assert len(ck["config.json_sha256"]) == 64  # all_config.yaml


def test_hard_zoo_report_loads_through_load_any(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import hard_zoo_report

    import inspect

    assert "load_any(" in inspect.getsource(hard_zoo_report.analyse_model)
    assert "load_any(" in inspect.getsource(hard_zoo_report.scaling)
    run = _official_sudoku_run(tmp_path)
    assert hard_zoo_report.checkpoint_sha(run / "step_1200") is not None  # the official weights file's hash
    from models.load import load_any

    model, _ = load_any(run / "step_1200")
    assert model.cfg.family == "hrm"
