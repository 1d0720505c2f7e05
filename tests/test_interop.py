"""TransformerLens and nnsight see every per-step hook with our values and interventions."""

from __future__ import annotations

import pytest
import torch

from models import HRMConfig, HRMLMConfig, TRMConfig, build_model

pytest.importorskip("transformer_lens")
pytest.importorskip("nnsight")

from interp.interop import nnsight_cache, to_nnsight, to_transformer_lens  # noqa: E402


def _case(family: str):
    """(model, inputs, a state hook name, the fixed initial value of that state, its reset hook)."""
    torch.manual_seed(0)
    if family == "hrm":
        cfg = HRMConfig(vocab_size=6, seq_len=16, hidden_size=32, num_heads=4, H_layers=1, L_layers=1,
                        puzzle_emb_ndim=32, num_puzzle_identifiers=3, halt_max_steps=2)
        model, state, init = build_model(cfg), "seg1.h0.hook_z_H", "H_init"
        inputs = (torch.randint(0, 6, (2, 16)), torch.tensor([1, 2]))
    elif family == "trm":
        cfg = TRMConfig(vocab_size=6, seq_len=16, hidden_size=32, num_heads=4, num_layers=1, H_cycles=2,
                        L_cycles=2, puzzle_emb_ndim=32, puzzle_emb_len=4, halt_max_steps=2)
        model, state, init = build_model(cfg), "seg1.t0.hook_y", "H_init"
        inputs = (torch.randint(0, 6, (2, 16)),)
    else:
        pytest.importorskip("models.hrm_lm")
        cfg = HRMLMConfig(vocab_size=32, seq_len=12, hidden_size=32, num_heads=4, slow_period=2, slow_updates=2,
                          tbptt_steps=2, passes=2)
        model, state, init = build_model(cfg), "pass1.step1.hook_slow", "slow_init"
        inputs = (torch.randint(0, 32, (2, 12)),)
    with torch.no_grad():  # make the heads non-trivial (q_head starts at zero weight)
        for p in model.parameters():
            if p.dim() >= 2 and not p.abs().sum():
                p.normal_(0, 0.2)
    return model.eval(), inputs, state, init


FAMILIES = ["hrm", "trm", "hrm_lm"]


def _freeze(init_value):
    return lambda t, hook: init_value.to(t.dtype).expand_as(t).clone()


@pytest.mark.parametrize("family", FAMILIES)
def test_transformer_lens_cache_equals_ours(family):
    model, inputs, _, _ = _case(family)
    with torch.no_grad():
        ours_out, ours = model.run_with_cache(*inputs)
        view = to_transformer_lens(model)
        from transformer_lens import HookedRootModule

        assert isinstance(view, HookedRootModule)
        assert set(view.hook_dict) == set(model.hook_dict)
        tl_out, tl = view.run_with_cache(*inputs)
    assert isinstance(tl, dict) and set(tl) == set(ours) and len(ours) > 8
    steps = [n for n in ours if ".step" in n or ".h" in n or ".t" in n]
    assert len(steps) >= 4  # every per-step state is there, not just the last application
    for name in ours:
        assert torch.equal(tl[name], ours[name]), name
    assert torch.equal(tl_out, ours_out)
    # our own API keeps working on the swapped hook points, and leaves no hooks behind
    with torch.no_grad():
        again_out, again = model.run_with_cache(*inputs)
    assert torch.equal(again_out, ours_out) and set(again) == set(ours)
    assert all(not p._forward_hooks and not p.fwd_hooks for p in model.hook_dict.values())


@pytest.mark.parametrize("family", FAMILIES)
def test_transformer_lens_intervention_equals_ours(family):
    model, inputs, state, init = _case(family)
    freeze = _freeze(getattr(model, init))
    with torch.no_grad():
        clean = model(*inputs)
        ours = model.run_with_hooks(*inputs, fwd_hooks=[(state, freeze)])
        view = to_transformer_lens(model)
        tl = view.run_with_hooks(*inputs, fwd_hooks=[(state, freeze)])
        _, cache = view.run_with_cache(*inputs)
    assert not torch.allclose(ours, clean)  # the intervention matters
    assert torch.equal(tl, ours)
    assert torch.equal(view(*inputs), clean)  # hooks were removed after the run
    assert not torch.allclose(cache[state], getattr(model, init).expand_as(cache[state]))


def test_transformer_lens_view_adds_hook_points_for_deeper_runs():
    model, inputs, _, _ = _case("hrm")
    view = to_transformer_lens(model)
    with torch.no_grad():
        _, cache = view.run_with_cache(*inputs, n_segments=3)
        _, ours = model.run_with_cache(*inputs, n_segments=3)
    assert "seg2.h1.hook_z_H" in cache and set(cache) == set(ours)
    with pytest.raises(TypeError, match="HookedModel"):
        to_transformer_lens(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("family", FAMILIES)
def test_nnsight_reads_and_sets_a_step(family):
    model, inputs, state, init = _case(family)
    nn_model = to_nnsight(model)
    freeze = _freeze(getattr(model, init))
    with torch.no_grad():
        _, ours = model.run_with_cache(*inputs)
        patched = model.run_with_hooks(*inputs, fwd_hooks=[(state, freeze)])
        envoy = nn_model
        for part in state.split("."):  # e.g. nn_model.seg1.h0.hook_z_H
            envoy = getattr(envoy, part)
        with nn_model.trace(*inputs):
            read = envoy.output.save()
        with nn_model.trace(*inputs):
            envoy.output = getattr(model, init).expand_as(ours[state]).clone()
            out = nn_model.output.save()
        nn_out, nn_cache = nnsight_cache(nn_model, *inputs)
    assert torch.equal(read, ours[state])
    assert torch.equal(out, patched)
    assert set(nn_cache) == set(ours)
    for name in ours:
        assert torch.equal(nn_cache[name], ours[name]), name
