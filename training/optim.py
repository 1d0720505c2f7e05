"""Optimiser, learning-rate schedule and weight EMA.

AdamW over all parameters (the per-puzzle embedding may get its own lr and
weight decay, as in the reference recipes); learning rate: linear warm-up over
``warmup_steps`` then cosine decay to ``lr * lr_min_ratio`` at the last step
(``lr_min_ratio = 1`` gives the HRM/TRM "warm-up then constant" schedule).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .config import OptimConfig


def lr_at(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Learning rate for optimiser step ``step`` (1-based, as in the reference loops)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * step / cfg.warmup_steps
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, max(0.0, (step - cfg.warmup_steps) / span))
    return cfg.lr * (cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW; ``puzzle_emb.*`` parameters form a second group when their lr/decay differ.

    Each group's ``lr_scale`` multiplies the scheduled learning rate.
    """
    emb, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (emb if name.startswith("puzzle_emb.") else rest).append(p)
    groups = [{"params": rest, "weight_decay": cfg.weight_decay, "lr_scale": 1.0}]
    if emb:
        scale = (cfg.puzzle_emb_lr / cfg.lr) if cfg.puzzle_emb_lr is not None else 1.0
        wd = cfg.puzzle_emb_weight_decay if cfg.puzzle_emb_weight_decay is not None else cfg.weight_decay
        groups.append({"params": emb, "weight_decay": wd, "lr_scale": scale})
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied).

    ``shadow`` is a full model copy, so evaluation and checkpoints use it directly.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, p in zip(self.shadow.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - self.decay)
        for e, b in zip(self.shadow.buffers(), model.buffers()):
            e.copy_(b)
