"""Shared test fixtures and settings.

Tiny untrained models (one place for their sizes) are built by the factories in ``tests/helpers/tiny_models.py``
(``tiny_hrm``, ``tiny_trm``, ``tiny_hrm_lm``); the ``_seed`` fixture below fixes their weights. Tests over about
5 s are marked ``slow``: ``python -m pytest -q -m 'not slow'`` is the quick run, ``python -m pytest -q`` runs all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# small models: one thread is faster than two on tiny matmuls and avoids oversubscription
torch.set_num_threads(1)


@pytest.fixture
def shared_dir() -> Path:
    """The folder holding ``data/sudoku/*.sdm``: the repository itself, which ships the puzzle files."""
    return REPO


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread is faster than two on a shared, loaded CPU (restored after the module)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
