"""Interventions at chosen steps and cells, as hook pairs for ``model.hooks`` (the patching hook machinery).

* :func:`direction_hooks`: add ``scale * v``, ablate (remove the direction's coefficient times ``v``) or
  clamp (set the coefficient to ``scale``) a :class:`~interp.steering.directions.Direction` at the given
  step hook points, at the positions of a mask;
* :func:`clamp_cells_hooks`: at one step, pick cells (the *decided* ones: decoded with confidence at least
  ``threshold``, or a random set of the same size as the control) and hold their state at that step's value
  at every later step the hooks name.

Positions index the state's sequence axis, puzzle-embedding prefix included (``prefix_len`` positions
first), so a mask has ``prefix_len + L`` columns; :func:`position_mask` builds one from cell indices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from interp.steering.directions import Direction, DirectionError

MODES = ("add", "ablate", "clamp")
HookPair = tuple[Callable[[str], bool], Callable]


def position_mask(cells: np.ndarray | torch.Tensor, prefix_len: int = 0) -> torch.Tensor:
    """A bool [B, prefix + L] mask from a bool [B, L] (or [L]) cell mask; prefix positions are never set."""
    c = torch.as_tensor(np.asarray(cells, dtype=bool))
    if c.dim() == 1:
        c = c[None]
    pad = torch.zeros(c.shape[0], int(prefix_len), dtype=torch.bool)
    return torch.cat([pad, c], 1)


def _rows(mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    if mask.shape[-1] != t.shape[1]:
        raise DirectionError(f"position mask has {mask.shape[-1]} positions, the state {t.shape[1]}")
    if mask.shape[0] not in (1, t.shape[0]):
        raise DirectionError(f"position mask has {mask.shape[0]} rows for a batch of {t.shape[0]}")
    return mask.to(t.device)[..., None]


def direction_hooks(direction: Direction, hooks: Sequence[str], mode: str = "add", scale: float = 1.0,
                    positions: torch.Tensor | None = None) -> list[HookPair]:
    """Hook pairs applying ``mode`` with ``direction`` at the hook names ``hooks`` (see module docstring).

    ``add``: ``t + scale v``; ``ablate``: ``t - c(t) v`` (``c``: the direction's coefficient, a feature's
    activation or the projection); ``clamp``: ``t + (scale - c(t)) v``. ``positions``: bool [B or 1, P]
    (default every position)."""
    if mode not in MODES:
        raise DirectionError(f"unknown intervention mode {mode!r} (one of {', '.join(MODES)})")
    if not np.isfinite(float(scale)):
        raise DirectionError(f"scale must be finite, got {scale}")
    names = set(hooks)
    if not names:
        raise DirectionError("no step hook points to intervene at")

    def fn(t: torch.Tensor, hook) -> torch.Tensor:
        if t.shape[-1] != direction.width:
            raise DirectionError(f"direction {direction.name!r} has width {direction.width}, the state at "
                                 f"{hook.name} {t.shape[-1]}")
        v = direction.vector.to(t.device, t.dtype)
        if mode == "add":
            delta = float(scale) * v.expand_as(t)
        else:
            c = direction.coefficient(t)
            target = 0.0 if mode == "ablate" else float(scale)
            delta = (target - c)[..., None] * v
        if positions is not None:
            delta = delta * _rows(positions, t).to(t.dtype)
        return t + delta

    return [(lambda n, _names=names: n in _names, fn)]


def decided_mask(logits: torch.Tensor, allowed: torch.Tensor, threshold: float) -> torch.Tensor:
    """bool [B, L]: allowed cells whose decoded answer has probability at least ``threshold``."""
    conf = torch.softmax(logits.float(), -1).max(-1).values
    return (conf >= threshold) & allowed.to(conf.device)


def random_cells_like(chosen: torch.Tensor, allowed: torch.Tensor, seed: int) -> torch.Tensor:
    """bool [B, L]: per row, as many allowed cells as ``chosen`` has, drawn at random (the clamp's control)."""
    g = np.random.default_rng(int(seed))
    ch, al = chosen.cpu().numpy(), np.broadcast_to(allowed.cpu().numpy(), chosen.shape)
    out = np.zeros(ch.shape, dtype=bool)
    for b in range(ch.shape[0]):
        pool = np.flatnonzero(al[b])
        k = min(int(ch[b].sum()), len(pool))
        out[b, g.choice(pool, k, replace=False)] = True
    return torch.as_tensor(out, device=chosen.device)


def clamp_cells_hooks(start_hook: str, later_hooks: Sequence[str], decode: Callable[[torch.Tensor], torch.Tensor],
                      allowed: torch.Tensor, prefix_len: int = 0, threshold: float = 0.9,
                      control_seed: int | None = None, record: dict | None = None) -> list[HookPair]:
    """Hold the state of chosen cells at its ``start_hook`` value at every hook of ``later_hooks``.

    Chosen cells: among ``allowed`` (bool [B or 1, L], e.g. the blank cells), those whose ``decode``d answer has
    probability >= ``threshold`` at ``start_hook`` (*decided*); with ``control_seed``, the same number of
    random allowed cells per row instead. ``record`` (a dict) receives ``"cells"``, the chosen [B, L] mask."""
    if not 0.0 < threshold <= 1.0:
        raise DirectionError(f"threshold must be in (0, 1], got {threshold}")
    later = set(later_hooks) - {start_hook}
    held: dict[str, torch.Tensor] = {}

    def fn(t: torch.Tensor, hook) -> torch.Tensor | None:
        P = prefix_len
        if hook.name == start_hook:
            chosen = decided_mask(decode(t), allowed, threshold)
            if control_seed is not None:
                chosen = random_cells_like(chosen, allowed, control_seed)
            held["mask"] = position_mask(chosen.cpu(), P).to(t.device)[..., None]
            held["value"] = t.detach().clone()
            if record is not None:
                record["cells"] = chosen.cpu()
            return None
        if "mask" not in held:
            return None
        m = held["mask"]
        return torch.where(m, held["value"].to(t.dtype), t)

    names = later | {start_hook}
    return [(lambda n, _names=names: n in _names, fn)]


__all__ = ["MODES", "HookPair", "position_mask", "direction_hooks", "decided_mask", "random_cells_like",
           "clamp_cells_hooks"]
