"""``interp.guess_scaling.flops``: the count from the config equals the profiler's count on tiny models."""

from __future__ import annotations

import pytest
import torch

from interp.guess_scaling.flops import block_flops, flops_per_segment, measured_segment_flops, segment_flops
from helpers.tiny_models import tiny_hrm, tiny_trm


@pytest.mark.parametrize("build", [
    lambda: tiny_hrm(),  # attention, 1+1 layers
    lambda: tiny_hrm(mlp_t=True, H_cycles=3, L_cycles=2),  # token MLP
    lambda: tiny_hrm(puzzle_emb_ndim=32, num_puzzle_identifiers=4),  # a puzzle prefix: T = L + 1
    lambda: tiny_trm(),
    lambda: tiny_trm(mlp_t=False, num_layers=2),
])
def test_config_count_equals_profiler(build):
    model = build().eval()
    analytic = segment_flops(model.cfg)
    assert analytic == measured_segment_flops(model)
    assert flops_per_segment(model) == (analytic, "config")


def test_counts_scale_as_the_formula_says():
    # one attention block: 6 T D I (channel MLP) + 8 T D^2 + 4 T^2 D; doubling T doubles all but the T^2 term
    T, D = 16, 32
    one, two = block_flops(T, D, 2.0, False), block_flops(2 * T, D, 2.0, False)
    assert two - 2 * one == 4 * (2 * T) ** 2 * D - 2 * 4 * T * T * D
    # TRM: a segment is H_cycles x (L_cycles + 1) x layers blocks plus the heads
    m = tiny_trm()
    c = m.cfg
    heads = 2 * c.seq_len * c.hidden_size * c.vocab_size + 4 * c.hidden_size
    per_block = block_flops(c.seq_len, c.hidden_size, c.expansion, c.mlp_t)
    assert segment_flops(c) == c.H_cycles * (c.L_cycles + 1) * c.num_layers * per_block + heads


def test_profiler_count_does_not_change_the_model():
    model = tiny_hrm().eval()
    x = torch.ones(2, model.cfg.seq_len, dtype=torch.long)
    before = model(x)
    measured_segment_flops(model)
    assert not model.recording_attention
    torch.testing.assert_close(model(x), before)
