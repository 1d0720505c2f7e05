"""Fixtures for the robustness suite (helpers live in ``robust_helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def marker(tmp_path) -> Path:
    """A file that must never appear: the evil pickles create it when unpickled."""
    m = tmp_path / "PWNED"
    yield m
    assert not m.exists(), "unpickling executed code: the marker file was created"


@pytest.fixture(scope="module")
def tiny_ckpts(tmp_path_factory) -> Path:
    """``trm`` (Sudoku 9x9, TRM) and ``hrm`` (Sudoku 9x9, HRM) checkpoint directories."""
    from models import HRMConfig, TRMConfig, build_model
    from models.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    trm = build_model(TRMConfig(vocab_size=11, seq_len=81, hidden_size=32, num_heads=2, num_layers=1, H_cycles=1,
                                L_cycles=2, halt_max_steps=2, expansion=2.0))
    save_checkpoint(root / "trm", trm, extra={"task": {"name": "sudoku", "grid_size": 9}})
    hrm = build_model(HRMConfig(vocab_size=11, seq_len=81, hidden_size=32, num_heads=2, H_layers=1, L_layers=1,
                                H_cycles=1, L_cycles=1, halt_max_steps=1, expansion=2.0))
    save_checkpoint(root / "hrm", hrm, extra={"task": {"name": "sudoku", "grid_size": 9}})
    return root
