"""Model families: shapes, dtypes, reference computations and gradient boundaries (CPU, hidden 32)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models import (
    ConfigError,
    HRMConfig,
    TRMConfig,
    TransformerConfig,
    UniTFConfig,
    build_model,
)
from models.baselines import BaselinePassOutput, TransformerBaseline, UniTF
from models.hrm import HRM
from models.trm import TRM

V, L, D, B = 6, 8, 32, 2
COMMON = dict(vocab_size=V, seq_len=L, hidden_size=D, num_heads=2, expansion=2.0)
PUZZLE = dict(num_puzzle_identifiers=5, puzzle_emb_ndim=48)  # 48 > D -> two prefix tokens

CONFIGS = {
    "hrm": HRMConfig(**COMMON, H_layers=1, L_layers=1, halt_max_steps=2),
    "hrm_mlp": HRMConfig(**COMMON, H_layers=1, L_layers=1, mlp_t=True, halt_max_steps=2),
    "hrm_puzzle_learned": HRMConfig(**COMMON, **PUZZLE, H_layers=1, L_layers=1, pos_encodings="learned", halt_max_steps=1),
    "trm_mlp": TRMConfig(**COMMON, H_cycles=2, L_cycles=2, num_layers=1, mlp_t=True, halt_max_steps=2),
    "trm_mlp_puzzle": TRMConfig(**COMMON, **PUZZLE, H_cycles=2, L_cycles=2, num_layers=1, mlp_t=True, halt_max_steps=1),
    "trm_attn_rope": TRMConfig(**COMMON, H_cycles=2, L_cycles=2, num_layers=1, mlp_t=False, halt_max_steps=2),
    "trm_attn_learned_puzzle": TRMConfig(
        **COMMON, **PUZZLE, H_cycles=2, L_cycles=2, num_layers=1, mlp_t=False, pos_encodings="learned", halt_max_steps=1
    ),
    "trm_attn_nopos": TRMConfig(
        **COMMON, H_cycles=2, L_cycles=2, num_layers=1, mlp_t=False, pos_encodings="none", halt_max_steps=1
    ),
    "unitf": UniTFConfig(**COMMON, num_layers=1, depth=3),
    "unitf_puzzle_learned": UniTFConfig(**COMMON, **PUZZLE, num_layers=1, depth=3, pos_encodings="learned", halt_max_steps=2),
    "transformer": TransformerConfig(**COMMON, num_layers=2),
    "transformer_puzzle": TransformerConfig(**COMMON, **PUZZLE, num_layers=2, halt_max_steps=2),
}
CAUSAL = {
    "unitf_causal_rope": UniTFConfig(**COMMON, num_layers=1, depth=3, causal=True),
    "unitf_causal_learned": UniTFConfig(**COMMON, num_layers=1, depth=2, causal=True, pos_encodings="learned"),
    "transformer_causal_rope": TransformerConfig(**COMMON, num_layers=2, causal=True),
    "transformer_causal_learned": TransformerConfig(**COMMON, num_layers=2, causal=True, pos_encodings="learned"),
}


def tokens(batch: int = B, length: int = L) -> torch.Tensor:
    return torch.randint(0, V, (batch, length))


def ce_loss(logits: torch.Tensor, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, logits.shape[-1], logits.shape[:-1], generator=g)
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten())


def randomise_puzzle_emb(model) -> None:
    if hasattr(model, "puzzle_emb"):
        with torch.no_grad():
            model.puzzle_emb.weights.normal_()


# ----- shapes and dtypes ------------------------------------------------------
def test_registry_builds_every_family_from_a_dict():
    for name, cls in (("hrm", HRM), ("trm_mlp", TRM), ("unitf", UniTF), ("transformer", TransformerBaseline)):
        model = build_model(CONFIGS[name].to_dict())
        assert type(model) is cls and model.cfg == CONFIGS[name]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_puzzle_shapes_and_dtypes(name):
    cfg = CONFIGS[name]
    model = build_model(cfg)
    prefix = cfg.prefix_len
    assert model.prefix_len == prefix and prefix in (0, 2)
    ids = torch.tensor([1, 4]) if prefix else None
    x = tokens()
    logits = model(x, ids)
    assert logits.shape == (B, L, V) and logits.dtype == torch.float32

    states = model.init_states(B, x.device)
    assert tuple(states) == model.state_names and model.answer_state in model.state_names
    new, out = model.segment(states, x, ids)
    for k, v in new.items():
        assert v.shape == (B, prefix + L, D) and v.dtype == torch.float32, k
    assert out.logits.shape == (B, L, V)
    assert out.q_halt.shape == (B,) and out.q_halt.dtype == torch.float32
    assert out.q_continue.shape == (B,) and out.q_continue.dtype == torch.float32
    # q_head starts at weight 0, bias -5: "never halt"
    assert torch.equal(out.q_halt, torch.full((B,), -5.0)) and torch.equal(out.q_continue, torch.full((B,), -5.0))
    assert model.decode(new[model.answer_state]).shape == (B, L, V)


@pytest.mark.parametrize("name", [n for n in CONFIGS if CONFIGS[n].puzzle_emb_ndim])
def test_puzzle_embedding_is_a_prefix_that_changes_the_output(name):
    model = build_model(CONFIGS[name])
    x = tokens(batch=1).expand(2, L)
    ids = torch.tensor([1, 4])
    same = model(x, ids)
    torch.testing.assert_close(same[0], same[1])  # zero-initialised table: ids do not matter yet
    randomise_puzzle_emb(model)
    differ = model(x, ids)
    assert not torch.allclose(differ[0], differ[1])
    # the prefix is exactly the zero-padded puzzle vector (then positions, then * sqrt(D))
    emb = model.embed(x, ids)
    assert emb.shape == (2, 2 + L, D)
    if model.cfg.pos_encodings == "none" or model.cfg.pos_encodings == "rope":
        pe = F.pad(model.puzzle_emb.weights[ids], (0, 2 * D - 48)).view(2, 2, D)
        torch.testing.assert_close(emb[:, :2], pe * D**0.5)


def test_embedding_matches_reference_recipe():
    model = build_model(CONFIGS["trm_attn_learned_puzzle"])
    randomise_puzzle_emb(model)
    x, ids = tokens(), torch.tensor([0, 3])
    tok = model.embed_tokens.embedding_weight[x]
    pe = F.pad(model.puzzle_emb.weights[ids], (0, 2 * D - 48)).view(B, 2, D)
    expected = D**0.5 * (torch.cat((pe, tok), 1) + model.embed_pos.embedding_weight) / 2**0.5
    torch.testing.assert_close(model.embed(x, ids), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["hrm", "trm_attn_rope", "unitf", "transformer"])
def test_puzzle_models_are_bidirectional(name):
    model = build_model(CONFIGS[name])
    x = tokens()
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % V
    assert not torch.allclose(model(x)[:, 0], model(y)[:, 0])


@pytest.mark.parametrize("name", list(CAUSAL))
def test_causal_lm_shapes_and_causality(name):
    model = build_model(CAUSAL[name])
    for length in (1, 5, L):
        x = tokens(length=length)
        logits = model(x)
        assert logits.shape == (B, length, V) and logits.dtype == torch.float32
    x = tokens(length=6)
    y = x.clone()
    y[:, 4:] = (y[:, 4:] + 1) % V
    torch.testing.assert_close(model(x)[:, :4], model(y)[:, :4])
    assert not torch.allclose(model(x)[:, 4:], model(y)[:, 4:])
    # a short prompt gives the same logits as the same prefix inside a longer one
    torch.testing.assert_close(model(x[:, :3]), model(x)[:, :3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CAUSAL))
def test_forward_passes_matches_forward(name):
    model = build_model(CAUSAL[name])
    x = tokens(length=5)
    passes = model.forward_passes(x)
    assert len(passes) == 1 and isinstance(passes[0], BaselinePassOutput)
    assert torch.equal(passes[0].logits, model(x))
    assert passes[0].fusion_entropy is None
    two = model.forward_passes(x, n_passes=2)
    assert len(two) == 2 and torch.equal(two[1].logits, model(x, n_segments=2))
    assert set(two[0].states) == set(model.state_names)
    assert all(s.grad_fn is None for s in two[0].states.values())
    resumed = model.forward_passes(x, n_passes=1, states=two[0].states)
    assert torch.equal(resumed[0].logits, two[1].logits)
    with pytest.raises(ValueError, match="state"):
        model.forward_passes(x, states=model.init_states(B, length=L))


@pytest.mark.parametrize("name", list(CAUSAL))
def test_causal_lm_rejects_bad_input(name):
    model = build_model(CAUSAL[name])
    cases = [
        (torch.zeros(B, L + 1, dtype=torch.long), "length"),
        (torch.zeros(B, 0, dtype=torch.long), "length"),
        (torch.zeros(L, dtype=torch.long), "shape"),
        (torch.zeros(B, 4), "integer"),
        (torch.full((B, 4), V), "token ids"),
    ]
    for bad, match in cases:
        with pytest.raises(ValueError, match=match) as e:
            model(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="puzzle_ids"):
        model(tokens(length=4), torch.zeros(B, dtype=torch.long))


@pytest.mark.parametrize("family", [UniTFConfig, TransformerConfig])
def test_causal_lm_takes_no_puzzle_embedding(family):
    with pytest.raises(ConfigError, match="puzzle embedding"):
        build_model(family(**COMMON, **PUZZLE, causal=True))


@pytest.mark.parametrize("name", ["hrm", "trm_mlp_puzzle", "unitf", "transformer"])
def test_puzzle_models_reject_bad_input(name):
    model = build_model(CONFIGS[name])
    cases = [
        (torch.zeros(B, L - 1, dtype=torch.long), None, "shape"),
        (torch.zeros(B, L), None, "integer"),
        (torch.full((B, L), -1), None, "token ids"),
        (torch.full((B, L), V), None, "token ids"),
        (torch.zeros(B, L, dtype=torch.long), torch.zeros(B + 1, dtype=torch.long), "puzzle_ids"),
    ]
    if model.prefix_len:
        cases.append((torch.zeros(B, L, dtype=torch.long), torch.tensor([0, 5]), "puzzle_ids"))
    for bad, ids, match in cases:
        with pytest.raises(ValueError, match=match) as e:
            model(bad, ids)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="n_segments|passes"):
        model(tokens(), n_segments=0)


# ----- the models compute their pseudocode -------------------------------------
@pytest.mark.parametrize("name", ["hrm", "hrm_mlp"])
def test_hrm_forward_matches_pseudocode(name):
    model = build_model(CONFIGS[name])
    mlp_t = CONFIGS[name].mlp_t
    for block in [*model.H_level.layers, *model.L_level.layers]:
        assert block.mlp_t_enabled == mlp_t and hasattr(block, "mlp_t") == mlp_t
    x = tokens()
    emb = model.embed(x)
    z_H = model.H_init.expand(B, L, D)
    z_L = model.L_init.expand(B, L, D)
    rot = model.rotary_tables()
    assert (rot is None) == mlp_t  # the token MLP carries position itself; no RoPE tables
    for _segment in range(2):
        for _i in range(2):
            for _j in range(2):
                z_L = model.L_level(z_L + z_H + emb, None, rot)
            z_H = model.H_level(z_H + z_L, None, rot)
    torch.testing.assert_close(model(x), model.lm_head(z_H), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["trm_mlp", "trm_attn_rope"])
def test_trm_forward_matches_pseudocode(name):
    model = build_model(CONFIGS[name])
    x = tokens()
    emb = model.embed(x)
    y, z = model.H_init.expand(B, L, D), model.L_init.expand(B, L, D)
    rot = model.rotary_tables()
    for _segment in range(2):
        for _t in range(2):
            for _n in range(2):
                z = model.L_level(z, y + emb, rot)
            y = model.L_level(y, z, rot)
    torch.testing.assert_close(model(x), model.lm_head(y), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_unitf_forward_matches_pseudocode(causal):
    model = build_model(CAUSAL["unitf_causal_rope"] if causal else CONFIGS["unitf"])
    x = tokens(length=5 if causal else L)
    emb = model.embed(x)
    z = model.z_init.expand(B, x.shape[1], D)
    rot = model.rotary_tables(x.shape[1])
    for _ in range(3):
        h = z + emb
        for block in model.stack.layers:
            h = block(h, rot)
        z = h
    torch.testing.assert_close(model(x), model.lm_head(z), rtol=1e-5, atol=1e-5)


def test_unitf_depth_override_and_test_time_scaling():
    model = build_model(CONFIGS["unitf"])
    x = tokens()
    s0 = model.init_states(B)
    _, shallow = model.segment(s0, x, cycles=1)
    _, same = model.segment(s0, x, cycles=(3, 99))
    _, deep = model.segment(s0, x, cycles=5)
    torch.testing.assert_close(same.logits, model(x))
    assert not torch.allclose(shallow.logits, same.logits)
    assert "seg0.r4.hook_z" in model.hook_names()
    _, cache = model.run_with_cache(x)  # forward still runs cfg.depth
    assert "seg0.r4.hook_z" not in cache and "seg0.r2.hook_z" in cache
    assert deep.logits.shape == (B, L, V)


@pytest.mark.parametrize("causal", [False, True])
def test_transformer_forward_matches_pseudocode(causal):
    model = build_model(CAUSAL["transformer_causal_rope"] if causal else CONFIGS["transformer"])
    x = tokens(length=6 if causal else L)
    h = model.embed(x)
    rot = model.rotary_tables(x.shape[1])
    for layer in model.layers:
        h = layer(h, rot)
    torch.testing.assert_close(model(x), model.lm_head(h), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["hrm", "trm_mlp", "unitf_puzzle_learned", "transformer_puzzle"])
def test_forward_is_fresh_states_then_every_segment(name):
    model = build_model(CONFIGS[name])
    randomise_puzzle_emb(model)
    x = tokens()
    ids = torch.tensor([2, 3]) if model.prefix_len else None
    states = model.init_states(B, x.device)
    for s in range(3):
        states, out = model.segment(states, x, ids, seg=s)
    assert torch.equal(model(x, ids, n_segments=3), out.logits)
    assert torch.equal(model(x, ids), model(x, ids, n_segments=model.cfg.halt_max_steps))


def test_cycles_override_for_depth_curricula():
    for name, base in (("hrm", (2, 2)), ("trm_mlp", (2, 2))):
        model = build_model(CONFIGS[name])
        x, s0 = tokens(), model.init_states(B)
        _, full = model.segment(s0, x, cycles=base)
        _, default = model.segment(s0, x)
        _, small = model.segment(s0, x, cycles=(1, 1))
        assert torch.equal(full.logits, default.logits)
        assert not torch.allclose(small.logits, full.logits)


@pytest.mark.parametrize("name", ["hrm", "trm_mlp"])
def test_cycles_deeper_than_config_get_hook_points(name):
    """A test-time depth sweep past the trained (H, L) cycles runs and every extra step is observable."""
    model = build_model(CONFIGS[name])
    x, s0 = tokens(), model.init_states(B)
    deep = (3, 4)
    seen: list[str] = []
    with model.hooks([(lambda n: ".hook_z" in n or ".hook_y" in n, lambda t, hook: seen.append(hook.name))]):
        _, out = model.segment(s0, x, cycles=deep)
    assert seen == [n for n in model.step_hook_names(0, deep) if not n.endswith("hook_x")]
    assert len(seen) == deep[0] * (deep[1] + 1)
    _, again = model.segment(s0, x, cycles=deep)  # second call: hook points reused, same answer
    assert torch.equal(out.logits, again.logits)


# ----- gradient boundaries ----------------------------------------------------
def state_names(model, seg: int = 0) -> list[str]:
    return [n for n in model.step_hook_names(seg) if not n.endswith("hook_x")]


def record_and_backprop(model, x, seg: int = 0, states=None):
    """One segment with every step state recorded (grads retained); CE loss on its logits, backward.

    Returns ({hook name: state tensor}, new carry).
    """
    seen: dict[str, torch.Tensor] = {}

    def rec(t, hook):
        seen[hook.name] = t
        if t.requires_grad:
            t.retain_grad()

    states = model.init_states(x.shape[0], x.device) if states is None else states
    model.ensure_segment_hooks(seg + 1)
    with model.hooks([(state_names(model, seg), rec)]):
        new, out = model.segment(states, x, seg=seg)
    ce_loss(out.logits).backward()
    assert list(seen) == state_names(model, seg)
    return seen, new


def has_grad(t: torch.Tensor) -> bool:
    return t.requires_grad and t.grad is not None and bool(t.grad.abs().sum() > 0)


def in_graph(seen: dict[str, torch.Tensor]) -> list[str]:
    """Names whose update was recorded by autograd and received a nonzero gradient."""
    for name, t in seen.items():
        assert t.requires_grad == (t.grad_fn is not None), name
        if t.requires_grad:
            assert has_grad(t), f"{name} is in the graph but got no gradient"
    return [n for n, t in seen.items() if t.requires_grad]


def hrm_model(grad_mode: str) -> HRM:
    return build_model(HRMConfig(**COMMON, H_layers=1, L_layers=1, grad_mode=grad_mode, halt_max_steps=2))


def trm_model(grad_mode: str, mlp_t: bool = True) -> TRM:
    return build_model(
        TRMConfig(**COMMON, H_cycles=3, L_cycles=2, num_layers=1, mlp_t=mlp_t, grad_mode=grad_mode, halt_max_steps=1)
    )


def test_hrm_one_step_graph_holds_only_final_L_and_H():
    seen, _ = record_and_backprop(hrm_model("one_step"), tokens())
    assert in_graph(seen) == ["seg0.h1.l1.hook_z_L", "seg0.h1.hook_z_H"]


def test_hrm_full_bptt_graph_holds_every_step():
    seen, _ = record_and_backprop(hrm_model("full_bptt"), tokens())
    assert in_graph(seen) == state_names(hrm_model("full_bptt"))


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("last_recursion", ["seg0.t2.n0.hook_z", "seg0.t2.n1.hook_z", "seg0.t2.hook_y"]),
        ("one_step", ["seg0.t2.n1.hook_z", "seg0.t2.hook_y"]),
        ("full_bptt", None),
    ],
)
@pytest.mark.parametrize("mlp_t", [True, False])
def test_trm_gradient_modes(mode, expected, mlp_t):
    model = trm_model(mode, mlp_t)
    seen, _ = record_and_backprop(model, tokens())
    assert in_graph(seen) == (state_names(model) if expected is None else expected)


@pytest.mark.parametrize("name", ["unitf", "transformer", "unitf_causal_rope", "transformer_causal_rope"])
def test_baselines_backprop_through_every_step(name):
    model = build_model({**CONFIGS, **CAUSAL}[name])
    seen, _ = record_and_backprop(model, tokens())
    assert in_graph(seen) == state_names(model)


def reached_by_gradient(model, x) -> list[str]:
    """Which step states the loss depends on: replace each by a fresh leaf and see which get a gradient."""
    leaves: dict[str, torch.Tensor] = {}

    def swap(t, hook):
        leaf = t.detach().requires_grad_(True)
        leaves[hook.name] = leaf
        return leaf

    reached = []
    for name in state_names(model):
        leaves.clear()
        with model.hooks([(name, swap)]):
            _, out = model.segment(model.init_states(x.shape[0]), x)
        ce_loss(out.logits).backward()
        if leaves[name].grad is not None and leaves[name].grad.abs().sum() > 0:
            reached.append(name)
    return reached


def test_hrm_gradient_reaches_back_one_update_only_with_one_step():
    x = tokens()
    # one_step: the loss depends on the inputs of the final L update (z_L after h1.l0, z_H after h0)
    # and on its outputs, but on nothing earlier
    assert reached_by_gradient(hrm_model("one_step"), x) == [
        "seg0.h0.hook_z_H", "seg0.h1.l0.hook_z_L", "seg0.h1.l1.hook_z_L", "seg0.h1.hook_z_H"
    ]
    full = hrm_model("full_bptt")
    assert reached_by_gradient(full, x) == state_names(full)


def test_trm_gradient_reaches_back_to_last_recursion_input_only():
    x = tokens()
    # last_recursion: the last recursion (t2) and its inputs y, z after t1
    assert reached_by_gradient(trm_model("last_recursion"), x) == [
        "seg0.t1.n1.hook_z", "seg0.t1.hook_y", "seg0.t2.n0.hook_z", "seg0.t2.n1.hook_z", "seg0.t2.hook_y"
    ]
    assert reached_by_gradient(trm_model("one_step"), x) == [
        "seg0.t1.hook_y", "seg0.t2.n0.hook_z", "seg0.t2.n1.hook_z", "seg0.t2.hook_y"
    ]
    full = trm_model("full_bptt")
    assert reached_by_gradient(full, x) == state_names(full)


def param_grads(model) -> dict[str, torch.Tensor | None]:
    return {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}


def assert_same_grads(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for n in a:
        assert (a[n] is None) == (b[n] is None), n
        if a[n] is not None:
            torch.testing.assert_close(a[n], b[n], rtol=1e-4, atol=1e-6, msg=n)


def test_hrm_one_step_parameter_grads_match_manual_one_step():
    model = hrm_model("one_step")
    x = tokens()
    _, out = model.segment(model.init_states(B), x)
    ce_loss(out.logits).backward()
    got = param_grads(model)
    model.zero_grad(set_to_none=True)

    emb = model.embed(x)
    s = model.init_states(B)
    z_H, z_L = s["z_H"], s["z_L"]
    rot = model.rotary_tables()
    with torch.no_grad():  # L, L, H, L without gradient
        z_L = model.L_level(z_L, z_H + emb, rot)
        z_L = model.L_level(z_L, z_H + emb, rot)
        z_H = model.H_level(z_H, z_L, rot)
        z_L = model.L_level(z_L, z_H + emb, rot)
    z_L = model.L_level(z_L, z_H + emb, rot)  # then L, H with gradient
    z_H = model.H_level(z_H, z_L, rot)
    ce_loss(model.decode(z_H)).backward()
    assert_same_grads(got, param_grads(model))

    # and full BPTT gives different gradients (the test can tell them apart)
    model.zero_grad(set_to_none=True)
    model.cfg.grad_mode = "full_bptt"
    _, out = model.segment(model.init_states(B), x)
    ce_loss(out.logits).backward()
    full = param_grads(model)
    assert not torch.allclose(full["L_level.layers.0.mlp.down_proj.weight"], got["L_level.layers.0.mlp.down_proj.weight"])


def test_trm_last_recursion_parameter_grads_match_manual():
    model = trm_model("last_recursion")
    x = tokens()
    _, out = model.segment(model.init_states(B), x)
    ce_loss(out.logits).backward()
    got = param_grads(model)
    model.zero_grad(set_to_none=True)

    emb = model.embed(x)
    s = model.init_states(B)
    y, z = s["y"], s["z"]
    net = model.L_level
    with torch.no_grad():
        for _ in range(2):  # T - 1 recursions without gradient
            for _ in range(2):
                z = net(z, y + emb)
            y = net(y, z)
    for _ in range(2):
        z = net(z, y + emb)
    y = net(y, z)
    ce_loss(model.decode(y)).backward()
    assert_same_grads(got, param_grads(model))


@pytest.mark.parametrize(
    "model_fn",
    [
        lambda: hrm_model("one_step"),
        lambda: hrm_model("full_bptt"),
        lambda: trm_model("last_recursion"),
        lambda: trm_model("full_bptt"),
        lambda: build_model(CONFIGS["unitf"]),
        lambda: build_model(CONFIGS["transformer"]),
    ],
)
def test_carry_is_detached_between_segments(model_fn):
    model = model_fn()
    x = tokens()
    seen0, carry = record_and_backprop(model, x, seg=0)
    for k, v in carry.items():
        assert v.grad_fn is None and not v.requires_grad, k
    model.zero_grad(set_to_none=True)
    for t in seen0.values():
        t.grad = None
    # a loss on segment 1 sends no gradient into segment 0's steps
    seen1, _ = record_and_backprop(model, x, seg=1, states=carry)
    assert all(t.grad is None for t in seen0.values())
    assert any(has_grad(t) for t in seen1.values())


@pytest.mark.parametrize(
    "model_fn",
    [
        lambda: hrm_model("full_bptt"),
        lambda: trm_model("full_bptt"),
        lambda: trm_model("last_recursion"),
        lambda: build_model(CONFIGS["unitf"]),
        lambda: build_model(CONFIGS["transformer"]),
        lambda: build_model(CAUSAL["unitf_causal_rope"]),
    ],
)
def test_outer_no_grad_wins(model_fn):
    model = model_fn()
    seen = {}

    def rec(t, hook):
        seen[hook.name] = t

    with torch.no_grad(), model.hooks([(None, rec)]):
        logits = model(tokens())
    assert seen and not logits.requires_grad
    assert not any(t.requires_grad for t in seen.values())
