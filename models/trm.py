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
variant) or non-causal self-attention. ``latent_recursion`` is the model's step
function (``cycle``); ``segment`` (from ``PuzzleModel``) is ``deep_recursion``:
``H_cycles`` (T) latent recursions under the gradient rule of ``cycle_grad``. ``grad_mode="one_step"`` keeps only the
final z and y updates in the graph; ``"full_bptt"`` keeps every update.
State names follow the trace schema: ``y`` (answer, reference ``z_H``) and
``z`` (latent, reference ``z_L``).
"""

from __future__ import annotations

import torch

from .blocks import ReasoningModule, TransformerBlock, trunc_normal_
from .config import TRMConfig
from .puzzle_base import PuzzleModel


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

    def rotary_tables(self, length: int | None = None):
        return None if self.cfg.mlp_t else super().rotary_tables(length)

    def step_hook_names(self, seg: int, cycles: tuple[int, int] | None = None) -> list[str]:
        return self.cycle_hook_names(seg, keys=("t", "n"), inner="z", outer="y", cycles=cycles)

    def init_states(self, batch_size: int, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        return self.expand_inits({"y": self.H_init, "z": self.L_init}, batch_size, device)

    def latent_recursion(self, x, y, z, rotary, n: int | None = None, seg: int | None = None, i: int = 0,
                         grad: str = "all") -> tuple[torch.Tensor, torch.Tensor]:
        """n updates of z from (y + x), then one update of y from z.

        ``grad``: "all" (every update in the graph), "none", or "last" (only the final z and y);
        ``seg=None`` runs without hook points.
        """
        n = self.cfg.L_cycles if n is None else n
        return self.two_level_update(z, y, x, rotary, ("z", "y"), ("t", "n"), seg, i, grad, n)

    def cycle(self, states, x, rotary, seg=None, i=0, grad="all", inner=None):
        y, z = self.latent_recursion(x, states["y"], states["z"], rotary, inner, seg, i, grad)
        return {"y": y, "z": z}
