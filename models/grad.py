"""Gradient boundaries shared by the recurrent models (1-step gradient, last-recursion, TBPTT windows).

Training keeps only the last update(s) of a segment in the autograd graph and
detaches the carry between segments. Causal analysis (attribution patching,
integrated gradients) needs the opposite: the gradient of a late answer with
respect to every state of every earlier step. ``full_graph(model)`` switches a
model to that for a block of code without changing a single forward number:
every update runs with gradients and the carry is not detached.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

_FLAG = "_full_graph"


def grad_if(enabled: bool) -> contextlib.AbstractContextManager:
    """``torch.no_grad()`` unless ``enabled`` (never *enables* grad inside an outer no_grad)."""
    return contextlib.nullcontext() if enabled else torch.no_grad()


def in_full_graph(model: nn.Module) -> bool:
    """True inside ``full_graph(model)``."""
    return bool(model.__dict__.get(_FLAG, False))


@contextlib.contextmanager
def full_graph(model: nn.Module) -> Iterator[nn.Module]:
    """Keep every recurrent update of ``model`` in the graph and the carry attached (re-entrant)."""
    before = in_full_graph(model)
    model.__dict__[_FLAG] = True
    try:
        yield model
    finally:
        model.__dict__[_FLAG] = before


def carry(states: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The states handed to the next segment: detached (the 1-step gradient) unless in ``full_graph``."""
    if in_full_graph(model):
        return dict(states)
    return {k: v.detach() for k, v in states.items()}


__all__ = ["grad_if", "in_full_graph", "full_graph", "carry"]
