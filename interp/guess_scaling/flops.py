"""Exact forward FLOPs of one segment of a puzzle model, from its config (matmuls and attention).

A FLOP here is what ``torch.utils.flop_counter.FlopCounterMode`` counts: 2 per
multiply-add of every matrix product (linear layers, attention's ``QK^T`` and
``AV``); element-wise work (norms, activations, embedding look-ups) is not
counted. Per block on ``T`` positions (sequence plus puzzle prefix) of width
``D``, with ``I = swiglu_width(D, expansion)``:

* channel SwiGLU: ``6 T D I`` (gate/up ``D -> 2I``, down ``I -> D``);
* attention: ``8 T D^2`` (fused QKV ``D -> 3D`` and output ``D -> D``) plus ``4 T^2 D`` (scores and mixing);
* token-MLP (``mlp_t``) instead of attention: ``6 D T I_t`` with ``I_t = swiglu_width(T, expansion)``.

A segment runs ``H_cycles`` cycles: TRM ``(L_cycles + 1) * num_layers`` blocks
per cycle, HRM ``L_cycles * L_layers + H_layers``; then the heads once
(``2 T D V`` for the answer head, which reads every position, prefix
included, ``4 D`` for the halting head). ``tests/test_scale_flops.py`` checks the count against
the profiler. Other families: :func:`measured_segment_flops` counts one segment
with the profiler instead.
"""

from __future__ import annotations

from typing import Any

import torch

from models.blocks import swiglu_width


def block_flops(tokens: int, hidden: int, expansion: float, mlp_t: bool) -> int:
    """Forward FLOPs of one ``TransformerBlock`` on one sequence of ``tokens`` positions."""
    T, D = int(tokens), int(hidden)
    mlp = 6 * T * D * swiglu_width(D, expansion)
    if mlp_t:
        mix = 6 * D * T * swiglu_width(T, expansion)
    else:
        mix = 8 * T * D * D + 4 * T * T * D
    return mlp + mix


def blocks_per_segment(cfg: Any) -> int:
    """How many blocks one segment runs (TRM and HRM families)."""
    if cfg.family == "trm":
        return int(cfg.H_cycles) * (int(cfg.L_cycles) + 1) * int(cfg.num_layers)
    if cfg.family == "hrm":
        return int(cfg.H_cycles) * (int(cfg.L_cycles) * int(cfg.L_layers) + int(cfg.H_layers))
    raise ValueError(f"no analytic FLOP count for family {cfg.family!r} (use measured_segment_flops)")


def segment_flops(cfg: Any) -> int:
    """Forward FLOPs per puzzle of one segment of an HRM or TRM config (see the module docstring)."""
    T = int(cfg.seq_len) + int(getattr(cfg, "prefix_len", 0) or 0)
    D = int(cfg.hidden_size)
    blocks = blocks_per_segment(cfg) * block_flops(T, D, cfg.expansion, bool(cfg.mlp_t))
    heads = 2 * T * D * int(cfg.vocab_size) + 2 * D * 2  # the answer head reads the prefix too
    return int(blocks + heads)


@torch.no_grad()
def measured_segment_flops(model: torch.nn.Module) -> int:
    """FLOPs per puzzle of one segment counted by ``FlopCounterMode`` on one all-blank puzzle (any ``PuzzleModel``)."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = model.cfg
    dev = next(model.parameters()).device
    x = torch.ones(1, int(cfg.seq_len), dtype=torch.long, device=dev)
    states = model.init_states(1, dev)
    counter = FlopCounterMode(display=False)
    attention = not bool(getattr(cfg, "mlp_t", False)) and hasattr(model, "record_attention")
    if attention:
        model.record_attention(True)  # explicit QK^T and AV products: the CPU fused kernel is not counted
    try:
        with counter:
            model.segment(states, x, None, seg=0)
    finally:
        if attention:
            model.record_attention(False)
    return int(counter.get_total_flops())


def flops_per_segment(model: torch.nn.Module) -> tuple[int, str]:
    """(FLOPs per puzzle per segment, ``"config"`` or ``"profiler"``): analytic for HRM/TRM, else counted."""
    cfg = getattr(model, "cfg", None)
    if cfg is not None and getattr(cfg, "family", None) in ("hrm", "trm"):
        return segment_flops(cfg), "config"
    return measured_segment_flops(model), "profiler"


__all__ = ["block_flops", "blocks_per_segment", "segment_flops", "measured_segment_flops", "flops_per_segment"]
