"""Fixtures for the robustness suite (helpers live in ``robust_helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.tiny_models import tiny_hrm, tiny_trm


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
    from models.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    trm = tiny_trm(H_cycles=1)
    save_checkpoint(root / "trm", trm, extra={"task": {"name": "sudoku", "grid_size": 9}})
    hrm = tiny_hrm(vocab_size=11, seq_len=81, H_cycles=1, L_cycles=1)
    save_checkpoint(root / "hrm", hrm, extra={"task": {"name": "sudoku", "grid_size": 9}})
    return root
