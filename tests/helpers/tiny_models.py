"""Tiny untrained models that many tests build: one place for their sizes.

Each factory builds a fresh model from a base configuration plus overrides. It draws no random numbers of its
own, so the weights depend only on the torch seed the caller set (the autouse ``_seed`` fixture of
``tests/conftest.py`` seeds 0 before every test), exactly as a hand-written ``build_model(HRMConfig(...))`` did.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from models import HRMConfig, HRMLMConfig, TRMConfig, build_model

# HRM on 16-token puzzles with a 6-token vocabulary (4x4 Sudoku-like), one layer per level, one segment.
TINY_HRM: dict[str, Any] = dict(vocab_size=6, seq_len=16, hidden_size=32, num_heads=2, H_layers=1, L_layers=1,
                                halt_max_steps=1, expansion=2.0)
# TRM on 9x9 Sudoku (81 tokens, vocabulary 11), one layer, 2x2 cycles, two segments.
TINY_TRM_SUDOKU: dict[str, Any] = dict(vocab_size=11, seq_len=81, hidden_size=32, num_heads=2, num_layers=1,
                                       H_cycles=2, L_cycles=2, halt_max_steps=2, expansion=2.0)
# HRM-LM on bytes, 16-token context.
TINY_HRM_LM: dict[str, Any] = dict(vocab_size=256, seq_len=16, hidden_size=32, num_heads=2, expansion=2.0)


def tiny_hrm(**overrides: Any) -> nn.Module:
    """An untrained HRM of ``TINY_HRM`` with ``overrides`` applied."""
    return build_model(HRMConfig(**{**TINY_HRM, **overrides}))


def tiny_trm(**overrides: Any) -> nn.Module:
    """An untrained TRM of ``TINY_TRM_SUDOKU`` with ``overrides`` applied."""
    return build_model(TRMConfig(**{**TINY_TRM_SUDOKU, **overrides}))


def tiny_hrm_lm(**overrides: Any) -> nn.Module:
    """An untrained HRM-LM of ``TINY_HRM_LM`` with ``overrides`` applied."""
    return build_model(HRMLMConfig(**{**TINY_HRM_LM, **overrides}))
