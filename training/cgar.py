"""CGAR (arXiv 2511.08653): curriculum-guided adaptive recursion.

Two independent switches (``cgar.pdc``, ``cgar.hsw``) so the 4-arm ablation is
one flag away:

* Progressive depth curriculum: train shallow first. With base recursion
  (H, L) the segment runs (ceil(H/3), ceil(L/3)) for the first 30% of
  training, (ceil(2H/3), ceil(2L/3)) until 60%, then (H, L); never fewer than
  1 H-cycle and 2 L-cycles (nor more than the base). Training only:
  evaluation always runs full depth.
* Hierarchical supervision weighting: supervision step t (1-based) of a
  puzzle gets weight ``w_t = lambda^(t-1) / Z`` with
  ``Z = sum_{t=1..T} lambda^(t-1)`` (the paper), or, as in the authors' code,
  the whole batch loss is scaled by ``lambda ** mean(steps)`` (unnormalised).
"""

from __future__ import annotations

import math

import torch


def depth_at(progress: float, H: int, L: int) -> tuple[int, int]:
    """(H_cycles, L_cycles) of the progressive depth curriculum at ``progress`` in [0, 1]."""
    if progress < 0.3:
        h, l = math.ceil(H / 3), math.ceil(L / 3)
    elif progress < 0.6:
        h, l = math.ceil(2 * H / 3), math.ceil(2 * L / 3)
    else:
        return H, L
    return min(H, max(1, h)), min(L, max(2, l))


def hsw_normaliser(lam: float, max_steps: int) -> float:
    """Z = sum_{t=1..T} lambda^(t-1)."""
    return sum(lam ** (t - 1) for t in range(1, max_steps + 1))


def hsw_row_weights(steps: torch.Tensor, lam: float, max_steps: int) -> torch.Tensor:
    """Paper form: per-row weight ``lambda^(t-1) / Z`` for rows at supervision step ``t = steps`` (1-based)."""
    t = steps.to(torch.float64)
    return lam ** (t - 1) / hsw_normaliser(lam, max_steps)


def hsw_batch_scale(steps: torch.Tensor, lam: float) -> torch.Tensor:
    """Code form: one scalar ``lambda ** mean(steps)`` for the whole batch loss."""
    return torch.as_tensor(lam, dtype=torch.float64) ** steps.to(torch.float64).mean()
