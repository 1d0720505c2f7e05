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
