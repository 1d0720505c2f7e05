"""One step function per model: ``segment``, the stability step map and ``full_graph`` all run ``model.cycle``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from interp.stability.step_maps import model_step_map
from models import HRMConfig, TRMConfig, build_model
from models.grad import full_graph, in_full_graph
from models.load import load_any

ZOO = Path(__file__).resolve().parents[1] / "zoo"
RECURRENT_ZOO = ["hrm-sudoku9", "hrm-attn-sudoku9", "hrm-sudoku9-hard", "trm-sudoku9", "trm-sudoku9-hard",
                 "trm-maze9", "unitf-lm-pydoc"]


def _inputs(model, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, model.cfg.vocab_size, (batch, model.cfg.seq_len), generator=g)


@pytest.mark.parametrize("name", RECURRENT_ZOO)
def test_step_map_is_bit_identical_to_segment_on_zoo(name):
    model, _ = load_any(str(ZOO / name))
    model.eval()
    x = _inputs(model)
    sm = model_step_map(model, x)
    cyc = model_step_map(model, x, unit="cycle")
    with torch.no_grad():
        seg_states = [st for _, st, _ in model.iter_segments(x, n_segments=2)]
        mapped, by_cycle = sm.init, cyc.init
        for ref in seg_states:
            mapped = sm.step(mapped)
            for _ in range(cyc.cycles_per_segment):
                by_cycle = cyc.step(by_cycle)
            for k in ref:
                assert torch.equal(mapped[k], ref[k]), (name, k)
                assert torch.equal(by_cycle[k], ref[k]), (name, k)


TINY = {
    "hrm": HRMConfig(vocab_size=6, seq_len=8, hidden_size=16, num_heads=2, expansion=2.0, H_layers=1, L_layers=1,
                     H_cycles=2, L_cycles=2, halt_max_steps=3),
    "trm": TRMConfig(vocab_size=6, seq_len=8, hidden_size=16, num_heads=2, expansion=2.0, H_cycles=2, L_cycles=2,
                     num_layers=1, mlp_t=True, halt_max_steps=3),
}


@pytest.mark.parametrize("family", sorted(TINY))
def test_full_graph_keeps_numbers_and_reaches_the_first_state(family):
    torch.manual_seed(0)
    model = build_model(TINY[family]).double().eval()
    x = torch.randint(1, 6, (2, 8))
    with torch.no_grad():
        plain = model(x)
    init = {k: v.clone().requires_grad_(True) for k, v in model.init_states(2).items()}
    # training semantics: the first segment's states never see the last segment's loss
    outs = [o for _, _, o in model.iter_segments(x, states=init)]
    assert not outs[-1].logits.requires_grad or all(
        g is None for g in torch.autograd.grad(outs[-1].logits.sum(), list(init.values()), allow_unused=True))
    with full_graph(model):
        assert in_full_graph(model)
        outs = [o for _, _, o in model.iter_segments(x, states=init)]
    assert not in_full_graph(model)
    assert torch.equal(outs[-1].logits, plain)
    grads = torch.autograd.grad(outs[-1].logits.pow(2).sum(), list(init.values()))
    # independent computation: the stability step map (every update in the graph by construction)
    sm = model_step_map(model, x)
    st = dict(zip(init, (v.detach().clone().requires_grad_(True) for v in init.values())))
    s = st
    for _ in range(model.cfg.halt_max_steps):
        s = sm.step(s)
    ref = torch.autograd.grad(model.decode(s[model.answer_state]).pow(2).sum(), list(st.values()))
    for g, r in zip(grads, ref):
        assert g.abs().sum() > 0
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12)


def test_cycle_without_seg_fires_no_hook():
    model = build_model(TINY["hrm"]).eval()
    x = torch.randint(1, 6, (1, 8))
    fired = []
    with model.hooks([("*", lambda t, hook: fired.append(hook.name))]), torch.no_grad():
        xe = model.embed(x)
        model.cycle(model.init_states(1), xe, model.rotary_tables())
        assert fired == []
        model.segment(model.init_states(1), x, seg=0)
    assert "seg0.h1.l1.hook_z_L" in fired and "seg0.h0.hook_z_H" in fired
