"""HRM: Hierarchical Reasoning Model (sapientinc/HRM, ``hrm_act_v1``).

Two recurrent modules with separate weights: a fast low-level ``L_level`` and
a slow high-level ``H_level``. Within one segment::

    for i in range(H_cycles):
        for j in range(L_cycles):
            z_L = L_level(z_L, z_H + x)      # hook seg{s}.h{i}.l{j}.hook_z_L
        z_H = H_level(z_H, z_L)              # hook seg{s}.h{i}.hook_z_H

With the 1-step gradient every update but the final L and H one runs under
``torch.no_grad()``; with ``grad_mode="full_bptt"`` gradient flows through all
of them. The carry is detached between segments either way.

Token mixing is self-attention, as in the paper; ``mlp_t=True`` swaps in TRM's
MLP over the token axis in both modules (the zoo's CPU-sized HRM uses it: at
D=64 the attention variants plateaued, see ``zoo/configs/hrm_sudoku9.yaml``).
"""

from __future__ import annotations

import torch

from .blocks import ReasoningModule, TransformerBlock, trunc_normal_
from .config import HRMConfig
from .grad import grad_if
from .hook_names import act_name
from .puzzle_base import PuzzleModel, SegmentOutput


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

    def rotary_tables(self):
        return None if self.cfg.mlp_t else super().rotary_tables()

    def step_hook_names(self, seg: int, cycles: tuple[int, int] | None = None) -> list[str]:
        return self.cycle_hook_names(seg, keys=("h", "l"), inner="z_L", outer="z_H", cycles=cycles)

    def init_states(self, batch_size: int, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        return self.expand_inits({"z_H": self.H_init, "z_L": self.L_init}, batch_size, device)

    def segment(
        self,
        states: dict[str, torch.Tensor],
        inputs: torch.Tensor,
        puzzle_ids: torch.Tensor | None = None,
        seg: int = 0,
        cycles: tuple[int, int] | None = None,
    ) -> tuple[dict[str, torch.Tensor], SegmentOutput]:
        H_cycles, L_cycles = cycles or (self.cfg.H_cycles, self.cfg.L_cycles)
        self.ensure_segment_hooks(seg + 1)  # hook points for a segment past halt_max_steps
        self.ensure_cycle_hooks(seg, cycles)
        rotary = self.rotary_tables()
        x = self.hook(act_name("x", seg=seg), self.embed(inputs, puzzle_ids))
        z_H, z_L = states["z_H"], states["z_L"]
        full_bptt = self.cfg.grad_mode == "full_bptt"
        for i in range(H_cycles):
            for j in range(L_cycles):
                last_L = i == H_cycles - 1 and j == L_cycles - 1
                with grad_if(full_bptt or last_L):
                    z_L = self.hook(act_name("z_L", seg=seg, h=i, l=j),
                                    self.run_step_module(0, {"seg": seg, "h": i, "l": j}, z_L, z_H + x, rotary))
            with grad_if(full_bptt or i == H_cycles - 1):
                z_H = self.hook(act_name("z_H", seg=seg, h=i), self.run_step_module(1, {"seg": seg, "h": i}, z_H, z_L, rotary))
        return self.finish_segment({"z_H": z_H, "z_L": z_L}, seg)


__all__ = ["HRM", "HRMConfig"]
