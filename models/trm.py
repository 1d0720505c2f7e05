"""TRM: Tiny Recursive Model (SamsungSAILMontreal/TinyRecursiveModels).

One small network ``net`` (stored as ``L_level``, the reference key name)
updates both the latent ``z`` and the answer ``y``::

    def latent_recursion(x, y, z, n):
        for j in range(n):
            z = net(z, y + x)                # hook seg{s}.t{i}.n{j}.hook_z
        y = net(y, z)                        # hook seg{s}.t{i}.hook_y
        return y, z

    def deep_recursion(x, y, z, n, T):
        with torch.no_grad():
            for i in range(T - 1):
                y, z = latent_recursion(x, y, z, n)
        y, z = latent_recursion(x, y, z, n)  # with gradients
        return (y.detach(), z.detach()), lm_head(y), q_head(y[:, 0])

Token mixing is a SwiGLU over the sequence axis (``mlp_t``, the MLP-mixer
variant) or non-causal self-attention. ``grad_mode="one_step"`` keeps only the
final z and y updates in the graph; ``"full_bptt"`` keeps every update.
State names follow the trace schema: ``y`` (answer, reference ``z_H``) and
``z`` (latent, reference ``z_L``).
"""

from __future__ import annotations

import torch

from .blocks import ReasoningModule, TransformerBlock, trunc_normal_
from .config import TRMConfig
from .grad import grad_if
from .hook_names import act_name
from .puzzle_base import PuzzleModel, SegmentOutput


class TRM(PuzzleModel):
    state_names = ("y", "z")
    answer_state = "y"

    def __init__(self, cfg: TRMConfig):
        super().__init__(cfg)
        blocks = [
            TransformerBlock(
                cfg.hidden_size,
                cfg.num_heads,
                cfg.expansion,
                seq_len=self.total_len,
                mlp_t=cfg.mlp_t,
                eps=cfg.rms_norm_eps,
                attn_backend=cfg.attn_backend,
            )
            for _ in range(cfg.num_layers)
        ]
        self.L_level = ReasoningModule(blocks)
        self.register_buffer("H_init", trunc_normal_(torch.empty(cfg.hidden_size), std=1.0))  # y_0
        self.register_buffer("L_init", trunc_normal_(torch.empty(cfg.hidden_size), std=1.0))  # z_0
        self.ensure_segment_hooks(cfg.halt_max_steps)

    def rotary_tables(self):
        return None if self.cfg.mlp_t else super().rotary_tables()

    def step_hook_names(self, seg: int, cycles: tuple[int, int] | None = None) -> list[str]:
        return self.cycle_hook_names(seg, keys=("t", "n"), inner="z", outer="y", cycles=cycles)

    def init_states(self, batch_size: int, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        return self.expand_inits({"y": self.H_init, "z": self.L_init}, batch_size, device)

    def latent_recursion(self, x, y, z, n: int, seg: int, i: int, grad: str = "all"):
        """n updates of z from (y + x), then one update of y from z.

        ``grad``: "all" (every update in the graph), "none", or "last" (only the final z and y).
        """
        rotary = self.rotary_tables()
        for j in range(n):
            with grad_if(grad == "all" or (grad == "last" and j == n - 1)):
                z = self.hook(act_name("z", seg=seg, t=i, n=j),
                              self.run_step_module(0, {"seg": seg, "t": i, "n": j}, z, y + x, rotary))
        with grad_if(grad != "none"):
            y = self.hook(act_name("y", seg=seg, t=i), self.run_step_module(1, {"seg": seg, "t": i}, y, z, rotary))
        return y, z

    def deep_recursion(self, x, y, z, n: int, T: int, seg: int):
        """T-1 recursions without gradient (unless full BPTT), then one with gradient."""
        mode = self.cfg.grad_mode
        for i in range(T):
            last = i == T - 1
            if mode == "full_bptt":
                grad = "all"
            elif not last:
                grad = "none"
            else:
                grad = "last" if mode == "one_step" else "all"
            y, z = self.latent_recursion(x, y, z, n, seg, i, grad)
        return y, z

    def segment(
        self,
        states: dict[str, torch.Tensor],
        inputs: torch.Tensor,
        puzzle_ids: torch.Tensor | None = None,
        seg: int = 0,
        cycles: tuple[int, int] | None = None,
    ) -> tuple[dict[str, torch.Tensor], SegmentOutput]:
        T, n = cycles or (self.cfg.H_cycles, self.cfg.L_cycles)
        self.ensure_segment_hooks(seg + 1)  # hook points for a segment past halt_max_steps
        self.ensure_cycle_hooks(seg, cycles)
        x = self.hook(act_name("x", seg=seg), self.embed(inputs, puzzle_ids))
        y, z = self.deep_recursion(x, states["y"], states["z"], n, T, seg)
        return self.finish_segment({"y": y, "z": z}, seg)
