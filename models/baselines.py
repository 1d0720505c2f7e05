"""Baselines that share the HRM/TRM block code: a Universal Transformer and a plain Transformer.

``UniTF`` (flat recurrence, full backprop)::

    z = z_init                                # fixed buffer, like HRM's H_init
    for i in range(depth):
        z = stack(z, x)                       # = stack(z + x); hook seg{s}.r{i}.hook_z
    logits = lm_head(z)

``TransformerBaseline`` (no recurrence)::

    h = x
    for i, layer in enumerate(layers):
        h = layer(h)                          # hook seg{s}.layer{i}.hook_resid
    logits = lm_head(h)

Both run as puzzle models (non-causal, ``PuzzleModel.segment``/``forward``,
``halt_max_steps`` segments, default 1) and, with ``cfg.causal=True``, as
causal language models: inputs [B, L] with 1 <= L <= seq_len, no puzzle
prefix, ``forward(tokens) -> logits [B, L, vocab]``. ``forward_passes``
returns one ``BaselinePassOutput`` per pass, with the same field names as
HRM-LM's ``LMPassOutput``, so LM training code treats every family alike.

UniTF starts from a fixed buffer ``z_init`` rather than from the embedding:
the input is injected at every iteration anyway, and a constant start makes
the carried state between segments the only thing that differs from segment
to segment, exactly as for HRM/TRM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .blocks import ReasoningModule, TransformerBlock, trunc_normal_
from .config import ConfigError, PuzzleConfig, TransformerConfig, UniTFConfig
from .hook_names import act_name
from .puzzle_base import PuzzleModel, SegmentOutput


@dataclass
class BaselinePassOutput:
    """One supervision pass of a language model (fields match ``models.hrm_lm.LMPassOutput``)."""

    logits: torch.Tensor  # [B, L, vocab]
    fusion_weights: torch.Tensor | None = None  # baselines have no fusion over steps
    fusion_entropy: torch.Tensor | None = None
    states: dict[str, torch.Tensor] = field(default_factory=dict)  # detached carry after the pass


def _blocks(cfg: PuzzleConfig, n: int, causal: bool) -> list[TransformerBlock]:
    return [
        TransformerBlock(
            cfg.hidden_size, cfg.num_heads, cfg.expansion, causal=causal, eps=cfg.rms_norm_eps, attn_backend=cfg.attn_backend
        )
        for _ in range(n)
    ]


class BaselineModel(PuzzleModel):
    """Puzzle/causal-LM plumbing shared by ``UniTF`` and ``TransformerBaseline``."""

    cfg: UniTFConfig | TransformerConfig

    def __init__(self, cfg: UniTFConfig | TransformerConfig):
        if cfg.causal and cfg.prefix_len:
            raise ConfigError(f"a causal {cfg.family} language model takes no puzzle embedding (puzzle_emb_ndim must be 0)")
        super().__init__(cfg)

    # ----- inputs ----------------------------------------------------------
    def check_inputs(self, inputs: torch.Tensor, puzzle_ids: torch.Tensor | None = None) -> None:
        """Puzzle mode: [B, seq_len]. Causal mode: [B, L] with 1 <= L <= seq_len and no puzzle ids."""
        if not self.cfg.causal:
            return super().check_inputs(inputs, puzzle_ids)
        if inputs.dim() != 2 or not 1 <= inputs.shape[1] <= self.cfg.seq_len:
            raise ValueError(f"tokens must have shape [batch, length] with 1 <= length <= {self.cfg.seq_len}, got {list(inputs.shape)}")
        if puzzle_ids is not None:
            raise ValueError(f"a causal {self.cfg.family} language model takes no puzzle_ids")
        if inputs.dtype not in (torch.int64, torch.int32, torch.uint8, torch.int16):
            raise ValueError(f"tokens must be integer token ids, got dtype {inputs.dtype}")
        lo, hi = (int(inputs.min()), int(inputs.max())) if inputs.numel() else (0, 0)
        if lo < 0 or hi >= self.cfg.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.cfg.vocab_size}), got [{lo}, {hi}]")

    def embed(self, inputs: torch.Tensor, puzzle_ids: torch.Tensor | None = None) -> torch.Tensor:
        if not self.cfg.causal:
            return super().embed(inputs, puzzle_ids)
        x = self.embed_tokens(inputs.long())
        if self.cfg.pos_encodings == "learned":
            x = 0.707106781 * (x + self.embed_pos.embedding_weight[: x.shape[1]].to(x.dtype))
        return self.embed_scale * x

    def rotary_tables(self, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.cfg.pos_encodings != "rope":
            return None
        return self.rotary(self.total_len if length is None else length)

    # ----- running -----------------------------------------------------------
    def forward_passes(
        self,
        tokens: torch.Tensor,
        n_passes: int | None = None,
        states: dict[str, torch.Tensor] | None = None,
        puzzle_ids: torch.Tensor | None = None,
    ) -> list[BaselinePassOutput]:
        """One output per pass (= segment, carry detached between them); default halt_max_steps (1) passes.

        Same call as ``HRMLM.forward_passes``; ``states`` (default ``init_states``) is the first pass's start.
        """
        return [BaselinePassOutput(logits=out.logits, states=st)
                for _, st, out in self.iter_segments(tokens, puzzle_ids, n_passes, states)]

    def fresh_states(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Starting states as long as ``inputs`` (plus any puzzle prefix): causal inputs may be shorter than seq_len."""
        return self.init_states(inputs.shape[0], inputs.device, length=self.prefix_len + inputs.shape[1])

    def _start(self, states: dict[str, torch.Tensor], inputs: torch.Tensor, puzzle_ids, seg: int):
        """Embedded input (through ``seg{s}.hook_x``) and rotary tables sized to it; checks the carry."""
        self.ensure_segment_hooks(seg + 1)
        x = self.hook(act_name("x", seg=seg), self.embed(inputs, puzzle_ids))
        for name in self.state_names:
            if name not in states:
                raise ValueError(f"states lack {name!r} (expected keys {list(self.state_names)})")
            if states[name].shape != x.shape:
                raise ValueError(f"state {name!r} has shape {list(states[name].shape)}, expected {list(x.shape)}")
        return x, self.rotary_tables(x.shape[1])


class UniTF(BaselineModel):
    """Universal Transformer: one shared stack of ``num_layers`` blocks iterated ``depth`` times."""

    state_names = ("z",)
    answer_state = "z"

    def __init__(self, cfg: UniTFConfig):
        super().__init__(cfg)
        self.stack = ReasoningModule(_blocks(cfg, cfg.num_layers, cfg.causal))
        self.register_buffer("z_init", trunc_normal_(torch.empty(cfg.hidden_size), std=1.0))
        self.ensure_segment_hooks(cfg.halt_max_steps)

    def step_hook_names(self, seg: int, depth: int | None = None) -> list[str]:
        depth = self.cfg.depth if depth is None else depth
        return [act_name("x", seg=seg), *(act_name("z", seg=seg, r=i) for i in range(depth))]

    def init_states(
        self, batch_size: int, device: torch.device | None = None, length: int | None = None
    ) -> dict[str, torch.Tensor]:
        return self.expand_inits({"z": self.z_init}, batch_size, device, length)

    def segment(
        self,
        states: dict[str, torch.Tensor],
        inputs: torch.Tensor,
        puzzle_ids: torch.Tensor | None = None,
        seg: int = 0,
        cycles: int | tuple[int, ...] | None = None,
    ) -> tuple[dict[str, torch.Tensor], SegmentOutput]:
        """``depth`` iterations ``z = stack(z, x)``, all in the graph.

        ``cycles`` (an int, or a tuple whose first element is used) overrides the
        depth; a depth beyond ``cfg.depth`` (test-time depth scaling) creates its
        hook points on demand.
        """
        depth = self.cfg.depth if cycles is None else int(cycles if isinstance(cycles, int) else cycles[0])
        if depth < 1:
            raise ValueError(f"UniTF depth must be >= 1, got {depth}")
        if depth > self.cfg.depth:
            self.setup_hooks(self.step_hook_names(seg, depth))
        x, rotary = self._start(states, inputs, puzzle_ids, seg)
        states = {"z": states["z"]}
        for i in range(depth):
            states = self.cycle(states, x, rotary, seg, i)
        return self.finish_segment(states, seg)

    @property
    def cycles_per_segment(self) -> int:
        return self.cfg.depth

    def cycle(self, states, x, rotary, seg=None, i=0, grad="all", inner=None):
        """One pass of the shared stack, ``z = stack(z, x)`` (always in the graph: ``grad`` is ignored)."""
        return {"z": self.step_hook("z", self.stack(states["z"], x, rotary), seg, r=i)}


class TransformerBaseline(BaselineModel):
    """Plain ``num_layers``-layer post-norm Transformer; layers play the role of steps.

    There is no carried state: every segment recomputes the same function of
    the input (the ``resid`` carry is returned for a uniform API and ignored).
    """

    state_names = ("resid",)
    answer_state = "resid"

    def __init__(self, cfg: TransformerConfig):
        super().__init__(cfg)
        self.layers = nn.ModuleList(_blocks(cfg, cfg.num_layers, cfg.causal))
        self.ensure_segment_hooks(cfg.halt_max_steps)

    def step_hook_names(self, seg: int) -> list[str]:
        return [act_name("x", seg=seg), *(act_name("resid", seg=seg, layer=i) for i in range(self.cfg.num_layers))]

    def init_states(
        self, batch_size: int, device: torch.device | None = None, length: int | None = None
    ) -> dict[str, torch.Tensor]:
        shape = (batch_size, self.total_len if length is None else length, self.cfg.hidden_size)
        return {"resid": torch.zeros(shape, device=device)}

    def segment(
        self,
        states: dict[str, torch.Tensor],
        inputs: torch.Tensor,
        puzzle_ids: torch.Tensor | None = None,
        seg: int = 0,
        cycles: tuple[int, ...] | None = None,
    ) -> tuple[dict[str, torch.Tensor], SegmentOutput]:
        """All layers once; ``cycles`` is accepted for API uniformity and has no effect (no recurrence)."""
        h, rotary = self._start(states, inputs, puzzle_ids, seg)
        for i, layer in enumerate(self.layers):
            h = self.hook(act_name("resid", seg=seg, layer=i), layer(h, rotary))
        return self.finish_segment({"resid": h}, seg)


__all__ = ["BaselinePassOutput", "BaselineModel", "TransformerBaseline", "UniTF"]
