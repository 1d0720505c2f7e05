"""Gradient boundaries shared by the recurrent models (1-step gradient, last-recursion, TBPTT windows)."""

from __future__ import annotations

import contextlib

import torch


def grad_if(enabled: bool) -> contextlib.AbstractContextManager:
    """``torch.no_grad()`` unless ``enabled`` (never *enables* grad inside an outer no_grad)."""
    return contextlib.nullcontext() if enabled else torch.no_grad()
