"""HRM-LM: shapes, causality, hook grid, TBPTT window, pass detachment, interventions, round trips, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.blocks import rms_norm
from models.checkpoint import load_checkpoint, save_checkpoint
from models.config import ConfigError, HRMLMConfig, config_from_dict
from models.hrm_lm import HRMLM, LMPassOutput
from models.registry import build_model

# N=2, T=2 -> M=4 steps per pass, K=2 differentiable steps
SMALL = dict(
    vocab_size=17, seq_len=12, hidden_size=32, num_heads=2, expansion=2.0,
    encoder_layers=1, fast_layers=1, slow_layers=1,
    slow_period=2, slow_updates=2, tbptt_steps=2, passes=2,
)


def make(**over) -> HRMLM:
    return HRMLM(HRMLMConfig(**{**SMALL, **over}))


def tokens(B: int = 2, L: int = 12, V: int = 17, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, L), generator=g)


def test_shapes_dtypes_and_pass_outputs():
    model = make()
    x = tokens()
    logits = model(x)
    assert logits.shape == (2, 12, 17) and logits.dtype == torch.float32
    outs = model.forward_passes(x, n_passes=3)
    assert len(outs) == 3 and all(isinstance(o, LMPassOutput) for o in outs)
    for o in outs:
        assert o.logits.shape == (2, 12, 17)
        assert o.fusion_weights.shape == (2, 12, 3)
        torch.testing.assert_close(o.fusion_weights.sum(-1), torch.ones(2, 12))
        assert o.fusion_entropy.dim() == 0
        for k in ("fast", "slow"):
            assert o.states[k].shape == (2, 12, 32) and not o.states[k].requires_grad
    # forward == logits of the last pass of forward_passes
    torch.testing.assert_close(model(x, n_passes=3), outs[-1].logits, rtol=0, atol=0)
    # shorter inputs than seq_len are fine (causal LM)
    assert model(x[:, :5]).shape == (2, 5, 17)


def test_fusion_entropy_is_the_entropy_of_the_weights():
    model = make()
    out = model.forward_passes(tokens())[0]
    w = out.fusion_weights
    expected = -(w * w.log()).sum(-1).mean()
    torch.testing.assert_close(out.fusion_entropy, expected)
    assert 0.0 <= float(out.fusion_entropy.detach()) <= math.log(3) + 1e-6


def _reference_pass(model: HRMLM, fast, slow, e):
    """Independent re-statement of one pass from the paper's pseudocode, using the model's submodules."""
    cfg = model.cfg
    rot = model.rotary(e.shape[1])
    for m in range(cfg.slow_period * cfg.slow_updates):
        cand = model.fast_net(model.fast_in(torch.cat([fast, slow, model.inject_scale * e], -1)), rotary=rot)
        g = torch.sigmoid(model.fast_gate(torch.cat([fast, cand], -1)))
        fast = fast + g * (cand - fast)
        if m % cfg.slow_period == cfg.slow_period - 1:
            cand = model.slow_net(model.slow_in(torch.cat([slow, fast], -1)), rotary=rot)
            g = torch.sigmoid(model.slow_gate(torch.cat([slow, cand], -1)))
            slow = slow + g * (cand - slow)
    w = torch.softmax(model.fusion(torch.cat([fast, slow, e], -1)) / model.log_temperature.exp(), -1)
    h = w[..., 0:1] * fast + w[..., 1:2] * slow + w[..., 2:3] * e
    return rms_norm(h) @ model.embed_tokens.embedding_weight.T, fast, slow


def test_gradients_match_reference_with_full_window():
    """With K = M, every parameter's gradient equals that of the reference loop (states detached between passes)."""
    model = make(slow_period=2, slow_updates=2, tbptt_steps=4, passes=2)
    x = tokens(B=1, L=7)
    outs = model.forward_passes(x)
    sum(o.logits.square().mean() for o in outs).backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    e = model.encoder(model.embed_tokens(x) * math.sqrt(32), rotary=model.rotary(7))
    fast, slow = model.fast_init.expand(1, 7, 32), model.slow_init.expand(1, 7, 32)
    total = 0
    for _ in range(2):
        ref, fast, slow = _reference_pass(model, fast, slow, e)
        fast, slow = fast.detach(), slow.detach()
        total = total + ref.square().mean()
    total.backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(got[n], p.grad, rtol=1e-4, atol=1e-6, msg=n)


def test_matches_reference_pseudocode_over_two_passes():
    model = make(slow_period=3, slow_updates=2, tbptt_steps=4)
    with torch.no_grad():
        model.inject_scale.fill_(0.7)
        model.log_temperature.fill_(0.3)
    x = tokens(L=9)
    with torch.no_grad():
        outs = model.forward_passes(x)
        emb = model.embed_tokens(x) * math.sqrt(32)
        e = model.encoder(emb, rotary=model.rotary(9))
        fast = model.fast_init.expand(2, 9, 32)
        slow = model.slow_init.expand(2, 9, 32)
        for p in range(2):
            ref, fast, slow = _reference_pass(model, fast, slow, e)
            torch.testing.assert_close(outs[p].logits, ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(outs[-1].states["slow"], slow, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pos", ["rope", "learned", "none"])
def test_causal(pos):
    model = make(pos_encodings=pos)
    x = tokens()
    t = 6
    y = x.clone()
    y[:, t] = (y[:, t] + 1) % 17
    with torch.no_grad():
        a, b = model(x), model(y)
        prefix = model(x[:, :t])
    torch.testing.assert_close(a[:, :t], b[:, :t], rtol=0, atol=1e-6)
    assert (a[:, t:] - b[:, t:]).abs().amax() > 1e-3  # the change is visible from t on
    # a prefix gives the same logits as the same positions of the longer sequence
    torch.testing.assert_close(prefix, a[:, :t], rtol=1e-5, atol=1e-5)


def test_hook_names_and_fire_counts():
    model = make(slow_period=3, slow_updates=2, tbptt_steps=1, passes=2)  # M = 6
    names = model.hook_names()
    assert names[0] == "hook_encoded"
    assert "pass1.step5.hook_slow" in names and "pass1.step4.hook_slow" not in names
    assert model.pass0.step2.hook_gate_slow.name == "pass0.step2.hook_gate_slow"  # name == module path
    fired: list[str] = []
    with model.hooks([(None, lambda t, hook: fired.append(hook.name))]):
        model(tokens())
    assert fired == names  # every hook fires exactly once, in creation order
    for p in range(2):
        slow = [n for n in fired if n.startswith(f"pass{p}.") and n.endswith(".hook_slow")]
        gate = [n for n in fired if n.startswith(f"pass{p}.") and n.endswith(".hook_gate_slow")]
        assert slow == [f"pass{p}.step2.hook_slow", f"pass{p}.step5.hook_slow"]  # T = 2, at (m+1) % N == 0
        assert len(gate) == 2
        assert sum(n.startswith(f"pass{p}.") and n.endswith(".hook_fast") for n in fired) == 6
    out, cache = model.run_with_cache(tokens(), n_passes=3)  # more passes than cfg.passes: hooks added
    assert cache["pass2.hook_fusion"].shape == (2, 12, 3)
    assert cache["pass2.step5.hook_gate_slow"].shape == (2, 12, 32)
    assert ((cache["pass0.step0.hook_gate_fast"] > 0) & (cache["pass0.step0.hook_gate_fast"] < 1)).all()
    assert torch.equal(cache["pass2.hook_logits"], out)
    # logit lens: decode(state) = rms_norm(state) @ E^T
    s = cache["pass0.step3.hook_fast"]
    torch.testing.assert_close(model.decode(s), rms_norm(s) @ model.embed_tokens.embedding_weight.detach().T)


def test_grad_enabled_exactly_on_last_k_steps():
    model = make(slow_period=2, slow_updates=3, tbptt_steps=3, passes=2)  # M = 6, K = 3
    flags = {"fast": [], "slow": []}
    model.fast_net.register_forward_hook(lambda *_: flags["fast"].append(torch.is_grad_enabled()))
    model.slow_net.register_forward_hook(lambda *_: flags["slow"].append(torch.is_grad_enabled()))
    model(tokens())
    assert flags["fast"] == [False] * 3 + [True] * 3 + [False] * 3 + [True] * 3
    # Slow fires at m = 1, 3, 5; only m = 3, 5 lie in the window
    assert flags["slow"] == [False, True, True] * 2


@pytest.mark.parametrize("K", [1, 3])
def test_tbptt_window_is_exactly_k_steps(K):
    """A leaf swapped in at step m gets gradient iff step m+1 is differentiable, i.e. m >= M-K-1."""
    M = 4
    model = make(tbptt_steps=K, passes=1)
    x = tokens(B=1, L=6)
    for m in range(M):
        leaf = {}

        def swap(t, hook):
            leaf["t"] = t.detach().clone().requires_grad_()
            return leaf["t"]

        logits = model.run_with_hooks(x, fwd_hooks=[(f"pass0.step{m}.hook_fast", swap)])
        model.zero_grad(set_to_none=True)
        logits.square().mean().backward()
        reaches = leaf["t"].grad is not None and leaf["t"].grad.abs().sum() > 0
        assert reaches == (m >= M - K - 1), (K, m)
        if m < M - 1:  # the fast net's parameters get gradient through the last step
            assert model.fast_net.layers[0].mlp.down_proj.weight.grad is not None, (K, m)


def test_k_equal_m_is_full_backprop_to_initial_state():
    model = make(tbptt_steps=4, passes=1)
    x = tokens()
    leaf = {}

    def swap(t, hook):
        leaf["t"] = t.detach().clone().requires_grad_()
        return leaf["t"]

    model.run_with_hooks(x, fwd_hooks=[("pass0.step0.hook_fast", swap)]).sum().backward()
    assert leaf["t"].grad is not None


def test_states_are_detached_between_passes():
    model = make(passes=2, tbptt_steps=4)  # K = M: only the detach can stop gradient between passes
    x = tokens()
    leaf = {}

    def swap(t, hook):
        leaf["t"] = t.detach().clone().requires_grad_()
        return leaf["t"]

    with model.hooks([("pass0.step3.hook_fast", swap)]):
        outs = model.forward_passes(x)
    # pass 1 started from pass 0's final state, yet its loss does not reach it
    outs[1].logits.sum().backward(retain_graph=True)
    assert leaf["t"].grad is None
    outs[0].logits.sum().backward()  # positive control: pass 0's own loss does
    assert leaf["t"].grad is not None and leaf["t"].grad.abs().sum() > 0
    # and pass 1 really read it: changing pass 0's final fast state changes pass 1
    with torch.no_grad():
        base = model(x)
        moved = model.run_with_hooks(x, fwd_hooks=[("pass0.step3.hook_fast", lambda t, hook: t + 1.0)])
    assert (base - moved).abs().amax() > 1e-4


def test_freezing_slow_changes_output_noop_is_bit_identical():
    model = make()
    x = tokens()
    with torch.no_grad():
        base = model(x)
        same = model.run_with_hooks(x, fwd_hooks=[("*.hook_slow", lambda t, hook: None)])
        frozen_fired = []

        def freeze(t, hook):
            frozen_fired.append(hook.name)
            return model.slow_init.expand_as(t)

        frozen = model.run_with_hooks(x, fwd_hooks=[("*.hook_slow", freeze)])
        _, cache = model.run_with_cache(x, names_filter="*.hook_slow")
    assert torch.equal(base, same)
    assert len(frozen_fired) == 4  # T = 2 per pass, 2 passes
    assert (base - frozen).abs().amax() > 1e-3
    # without the freeze the Slow state does move away from its init
    assert (cache["pass0.step1.hook_slow"] - model.slow_init).abs().amax() > 1e-2


def test_explicit_states_continue_from_a_previous_run():
    model = make(passes=1)
    x = tokens()
    with torch.no_grad():
        two = model.forward_passes(x, n_passes=2)
        first = model.forward_passes(x, n_passes=1)
        second = model.forward_passes(x, n_passes=1, states=first[-1].states)
    torch.testing.assert_close(second[-1].logits, two[-1].logits, rtol=0, atol=0)
    init = model.init_states(2, 12)
    assert torch.equal(init["fast"][1, 7], model.fast_init) and torch.equal(init["slow"][0, 0], model.slow_init)


def test_loss_matches_independent_computation_and_trains_all_parts():
    model = make(fusion_entropy_weight=0.05)
    x = tokens(L=12)
    inp, tgt = x[:, :-1], x[:, 1:].clone()
    tgt[0, 3] = -100
    total, metrics = model.loss(inp, tgt)
    with torch.no_grad():
        outs = model.forward_passes(inp)
        ces = [F.cross_entropy(o.logits.reshape(-1, 17), tgt.reshape(-1), ignore_index=-100) for o in outs]
        ent = sum(o.fusion_entropy for o in outs) / 2
        expected = sum(ces) / 2 - 0.05 * ent
    torch.testing.assert_close(total.detach(), expected)
    assert metrics["ce_pass1"] == pytest.approx(float(ces[1]), rel=1e-5)
    assert metrics["fusion_entropy"] == pytest.approx(float(ent), rel=1e-5)
    total.backward()
    for name in ("inject_scale", "log_temperature", "fusion.weight", "fast_gate.weight", "slow_gate.weight",
                 "slow_in.weight", "encoder.layers.0.self_attn.qkv_proj.weight", "embed_tokens.embedding_weight"):
        g = model.get_parameter(name).grad
        assert g is not None and g.abs().sum() > 0, name
    assert model.fast_init.grad is None and not model.fast_init.requires_grad
    assert {"fast_init", "slow_init"} <= set(model.state_dict())


def test_entropy_term_sign():
    """Raising fusion_entropy_weight lowers the loss by w * H (an entropy bonus)."""
    x = tokens()
    torch.manual_seed(3)
    a = make(fusion_entropy_weight=0.0)
    b = make(fusion_entropy_weight=1.0)
    b.load_state_dict(a.state_dict())
    la, ma = a.loss(x[:, :-1], x[:, 1:])
    lb, _ = b.loss(x[:, :-1], x[:, 1:])
    assert float((la - lb).detach()) == pytest.approx(ma["fusion_entropy"], rel=1e-5)


def test_config_round_trip_and_registry():
    cfg = HRMLMConfig(**SMALL)
    d = cfg.to_dict()
    assert d["family"] == "hrm_lm"
    assert HRMLMConfig.from_dict(d) == cfg and config_from_dict(d) == cfg
    assert isinstance(build_model(d), HRMLM)
    with pytest.raises(ConfigError, match="tbptt_steps"):
        HRMLMConfig(**{**SMALL, "tbptt_steps": 5}).validate()
    with pytest.raises(ConfigError, match="slow_period"):
        HRMLMConfig(**{**SMALL, "slow_period": 0}).validate()


def test_checkpoint_round_trip(tmp_path):
    model = make()
    with torch.no_grad():
        model.inject_scale.fill_(0.37)
        model.log_temperature.fill_(-0.2)
    x = tokens()
    path = save_checkpoint(tmp_path / "ck", model, extra={"task": {"name": "text"}})
    loaded, meta = load_checkpoint(path)
    assert isinstance(loaded, HRMLM) and meta["task"] == {"name": "text"}
    assert torch.equal(loaded.fast_init, model.fast_init)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_sdpa_backend_same_as_auto():
    a = make(attn_backend="auto")
    b = make(attn_backend="sdpa")
    b.load_state_dict(a.state_dict())
    x = tokens()
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(12, dtype=torch.long), "shape"),
        (torch.zeros(1, 2, 3, dtype=torch.long), "shape"),
        (torch.zeros(2, 0, dtype=torch.long), "at least one"),
        (torch.zeros(2, 13, dtype=torch.long), "exceeds"),
        (torch.zeros(2, 4), "integer"),
        (torch.full((2, 4), 17), r"\[0, 17\)"),
        (torch.full((2, 4), -1), r"\[0, 17\)"),
    ],
)
def test_bad_inputs_one_line_errors(bad, match):
    model = make()
    with pytest.raises(ValueError, match=match) as info:
        model(bad)
    assert "\n" not in str(info.value)


def test_bad_call_arguments_one_line_errors():
    model = make()
    x = tokens()
    cases = [
        (lambda: model(x, n_passes=0), "n_passes"),
        (lambda: model.forward_passes(x, states={"fast": torch.zeros(2, 12, 32)}), "keys"),
        (lambda: model.forward_passes(x, states=model.init_states(2, 11)), "shape"),
        (lambda: model.loss(x, x[:, :5]), "targets"),
        (lambda: model.loss(x, x.float()), "integer"),
        (lambda: model.loss(x, x + 17), "target ids"),
    ]
    for fn, match in cases:
        with pytest.raises(ValueError, match=match) as info:
            fn()
        assert "\n" not in str(info.value)
