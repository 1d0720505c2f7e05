"""HRM: Hierarchical Reasoning Model (sapientinc/HRM, ``hrm_act_v1``).

Two recurrent modules with separate weights: a fast low-level ``L_level`` and
a slow high-level ``H_level``. Within one segment::

    for i in range(H_cycles):
        for j in range(L_cycles):
            z_L = L_level(z_L, z_H + x)      # hook seg{s}.h{i}.l{j}.hook_z_L
        z_H = H_level(z_H, z_L)              # hook seg{s}.h{i}.hook_z_H

``h_cycle`` is one pass of the outer loop: the model's step function
(``cycle``), which ``segment`` calls ``H_cycles`` times. With the 1-step
gradient every update but the final L and H one runs under
``torch.no_grad()``; with ``grad_mode="full_bptt"`` gradient flows through all
of them. The carry is detached between segments either way (except inside
``models.grad.full_graph``).

Token mixing is self-attention, as in the paper; ``mlp_t=True`` swaps in TRM's
MLP over the token axis in both modules (the zoo's CPU-sized HRM uses it: at
D=64 the attention variants plateaued, see ``zoo/configs/hrm_sudoku9.yaml``).
"""

from __future__ import annotations

import torch

from .blocks import ReasoningModule, TransformerBlock, trunc_normal_
from .config import HRMConfig
from .puzzle_base import PuzzleModel


def _blocks(cfg: HRMConfig, n: int, seq_len: int) -> list[TransformerBlock]:
    return [
        TransformerBlock(
            cfg.hidden_size,
            cfg.num_heads,
            cfg.expansion,
            seq_len=seq_len,
            mlp_t=cfg.mlp_t,
            eps=cfg.rms_norm_eps,
            attn_backend=cfg.attn_backend,
        )
        for _ in range(n)
    ]


class HRM(PuzzleModel):
    state_names = ("z_H", "z_L")
    answer_state = "z_H"
    step_modules = ("L_level", "H_level")

    def __init__(self, cfg: HRMConfig):
        super().__init__(cfg)
        self.H_level = ReasoningModule(_blocks(cfg, cfg.H_layers, self.total_len))
        self.L_level = ReasoningModule(_blocks(cfg, cfg.L_layers, self.total_len))
        # fixed initial states, never trained (persistent so checkpoints carry them)
        self.register_buffer("H_init", trunc_normal_(torch.empty(cfg.hidden_size), std=1.0))
        self.register_buffer("L_init", trunc_normal_(torch.empty(cfg.hidden_size), std=1.0))
        self.ensure_segment_hooks(cfg.halt_max_steps)

    def rotary_tables(self, length: int | None = None):
        return None if self.cfg.mlp_t else super().rotary_tables(length)

    def step_hook_names(self, seg: int, cycles: tuple[int, int] | None = None) -> list[str]:
        return self.cycle_hook_names(seg, keys=("h", "l"), inner="z_L", outer="z_H", cycles=cycles)

    def init_states(self, batch_size: int, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        return self.expand_inits({"z_H": self.H_init, "z_L": self.L_init}, batch_size, device)

    def h_cycle(self, z_H, z_L, x, rotary, seg: int | None = None, i: int = 0, grad: str = "all",
                L_cycles: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One H-cycle: ``L_cycles`` fast updates of z_L from (z_H + x), then one slow update of z_H from z_L."""
        n = self.cfg.L_cycles if L_cycles is None else L_cycles
        return self.two_level_update(z_L, z_H, x, rotary, ("z_L", "z_H"), ("h", "l"), seg, i, grad, n)

    def cycle(self, states, x, rotary, seg=None, i=0, grad="all", inner=None):
        z_H, z_L = self.h_cycle(states["z_H"], states["z_L"], x, rotary, seg, i, grad, inner)
        return {"z_H": z_H, "z_L": z_L}


__all__ = ["HRM", "HRMConfig"]
