"""``models.hook_names``: the one builder and parser of hook names and per-layer state names."""

from __future__ import annotations

from models.hook_names import act_name, act_prefix, hook_state, layer_state, parse_act_name, parse_layer_state


def test_build_and_parse_round_trip():
    name = act_name("pattern", seg=0, h=1, l=2, layer=3)
    assert name == "seg0.h1.l2.layer3.hook_pattern"
    assert act_name("pattern", act_prefix(seg=0, h=1), layer=3) == "seg0.h1.layer3.hook_pattern"
    a = parse_act_name(name)
    assert a.keys == ("seg", "h", "l", "layer") and a.indices == (0, 1, 2, 3) and a.state == "pattern"
    assert hook_state(name) == "pattern" and hook_state("seg4.hook_logits") == "logits"
    assert hook_state("embed_tokens") is None and hook_state("seg0.hook_") is None


def test_layer_state_names():
    assert layer_state("pattern", 12) == "pattern.layer12"
    assert parse_layer_state("pattern.layer12") == ("pattern", 12)
    for bad in ("pattern", "pattern.layerx", "layer2", "pattern.head2"):
        assert parse_layer_state(bad) is None


# ----- TransformerLens-style aliases -------------------------------------------------------------
import pytest  # noqa: E402
import torch  # noqa: E402

from models.hook_names import expand_aliases, hook_aliases  # noqa: E402
from tests.helpers.tiny_models import tiny_hrm, tiny_hrm_lm, tiny_trm  # noqa: E402


def test_step_aliases_count_updates_in_run_order():
    names = []
    for seg in range(2):  # an HRM grid of 2 segments, H_cycles 2, L_cycles 2, created out of order on purpose
        for i in reversed(range(2)):
            names.append(act_name("z_H", seg=seg, h=i))
            names += [act_name("z_L", seg=seg, h=i, l=j) for j in range(2)]
        names.append(act_name("x", seg=seg))
    expected = []  # the order the forward writes them: per segment, per H cycle, L updates then the H update
    for seg in range(2):
        for i in range(2):
            expected += [act_name("z_L", seg=seg, h=i, l=j) for j in range(2)] + [act_name("z_H", seg=seg, h=i)]
    table = hook_aliases(names)
    assert [table[f"step.{t}.hook_resid_post"] for t in range(len(expected))] == expected
    assert len(table) == 12 and not any("hook_x" in v for v in table.values())
    assert expand_aliases("step.1?.hook_resid_post", names) == expected[10:]
    assert expand_aliases(["seg0.hook_x", "step.0.hook_resid_post"], names) == ["seg0.hook_x", expected[0]]
    assert expand_aliases("seg*.hook_z_H", names) == "seg*.hook_z_H"  # our own names pass unchanged


def test_aliases_resolve_in_cache_and_hooks_of_a_real_model():
    model = tiny_trm(halt_max_steps=2)
    inputs = torch.randint(1, 11, (2, 81))
    pids = torch.zeros(2, dtype=torch.long)
    fired = []
    with torch.no_grad(), model.hooks([("*", lambda t, hook: fired.append(hook.name))]):
        base = model(inputs, pids, n_segments=2)
    states = [n for n in fired if n.rsplit("hook_", 1)[1] in ("z", "y")]  # TRM's z (z_L) and y (z_H) in run order, observed
    assert len(states) == 2 * 2 * (2 + 1)
    with torch.no_grad():
        _, cache = model.run_with_cache(inputs, pids, n_segments=2, names_filter="step.*.hook_resid_post")
    assert list(cache) == states
    with torch.no_grad():
        _, one = model.run_with_cache(inputs, pids, n_segments=2, names_filter="step.4.hook_resid_post")
    assert list(one) == [states[4]] and torch.equal(one[states[4]], cache[states[4]])

    def zero(t, hook):
        return torch.zeros_like(t)

    with torch.no_grad():
        by_alias = model.run_with_hooks(inputs, pids, n_segments=2, fwd_hooks=[("step.7.hook_resid_post", zero)])
        by_name = model.run_with_hooks(inputs, pids, n_segments=2, fwd_hooks=[(states[7], zero)])
    assert torch.equal(by_alias, by_name) and not torch.equal(by_alias, base)
    with pytest.raises(KeyError, match="step.99.hook_resid_post"):
        model.run_with_cache(inputs, pids, n_segments=2, names_filter="step.99.hook_resid_post")


def test_attention_pattern_alias_and_families_without_clean_steps():
    model = tiny_hrm()
    model.record_attention(True)
    table = hook_aliases(model.hook_names())
    assert table["step.0.blocks.0.attn.hook_pattern"] == "seg0.h0.l0.layer0.hook_pattern"
    assert table["step.2.blocks.0.attn.hook_pattern"] == "seg0.h0.layer0.hook_pattern"  # the first H update
    assert model.hook_names("step.2.blocks.*.attn.hook_pattern") == ["seg0.h0.layer0.hook_pattern"]
    lm = tiny_hrm_lm()  # fast and slow states share a step: no one-to-one alias, so none is offered
    assert not [a for a in hook_aliases(lm.hook_names()) if a.startswith("step.")]


def test_step_aliases_on_hrm_text():
    transformers = pytest.importorskip("transformers")
    from models.hrm_text import wrap_hrm_text

    torch.manual_seed(0)
    cfg = transformers.HrmTextConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                     head_dim=16, H_cycles=2, L_cycles=3, max_position_embeddings=64)
    model = wrap_hrm_text(transformers.HrmTextForCausalLM(cfg).eval())
    tokens = torch.randint(0, 50, (2, 8))
    fired = []
    with torch.no_grad(), model.hooks([("*", lambda t, hook: fired.append(hook.name))]):
        model(tokens)
    states = [n for n in fired if n.endswith(("hook_z_L", "hook_z_H"))]
    assert len(states) == 2 * (3 + 1)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter="step.*.hook_resid_post")
    assert list(cache) == states and hook_aliases(model.hook_names())["step.3.hook_resid_post"] == "seg0.h0.hook_z_H"
