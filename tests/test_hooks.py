"""Step hook points: names, firing order, caching, interventions, cleanup."""

from __future__ import annotations

import pytest
import torch

from models import HRMConfig, TRMConfig, TransformerConfig, UniTFConfig, build_model
from models.hooks import HookPoint

V, L, D, B = 6, 8, 32, 2
COMMON = dict(vocab_size=V, seq_len=L, hidden_size=D, num_heads=2, expansion=2.0)


def hrm(**kw):
    return build_model(HRMConfig(**COMMON, H_cycles=2, L_cycles=2, H_layers=1, L_layers=1, halt_max_steps=2, **kw))


def trm(**kw):
    return build_model(TRMConfig(**COMMON, H_cycles=2, L_cycles=3, num_layers=1, halt_max_steps=2, **kw))


def unitf(**kw):
    return build_model(UniTFConfig(**COMMON, num_layers=1, depth=3, **kw))


def transformer(**kw):
    return build_model(TransformerConfig(**COMMON, num_layers=2, **kw))


def tokens(length: int = L) -> torch.Tensor:
    return torch.randint(0, V, (B, length))


def fired(model, *args, **kwargs) -> list[str]:
    """Hook names in the order they fire during ``model(*args)``."""
    order: list[str] = []
    with model.hooks([(None, lambda t, hook: order.append(hook.name))]):
        model(*args, **kwargs)
    return order


def expected_hrm(seg: int, H: int, Lc: int) -> list[str]:
    names = [f"seg{seg}.hook_x"]
    for i in range(H):
        names += [f"seg{seg}.h{i}.l{j}.hook_z_L" for j in range(Lc)]
        names.append(f"seg{seg}.h{i}.hook_z_H")
    return names + [f"seg{seg}.hook_logits", f"seg{seg}.hook_q"]


# ----- names and firing order -------------------------------------------------
@pytest.mark.parametrize("H, Lc", [(2, 2), (3, 1)])
def test_hrm_fires_every_step_once_in_order(H, Lc):
    model = build_model(HRMConfig(**COMMON, H_cycles=H, L_cycles=Lc, H_layers=1, L_layers=1, halt_max_steps=2))
    order = fired(model, tokens())
    assert order == expected_hrm(0, H, Lc) + expected_hrm(1, H, Lc)
    assert len(order) == 2 * (1 + H * Lc + H + 2)
    assert sorted(order) == sorted(model.hook_names())  # every hook point fired exactly once


def test_trm_fires_every_step_once_in_order():
    order = fired(trm(), tokens())
    expected = []
    for s in range(2):
        expected.append(f"seg{s}.hook_x")
        for t in range(2):
            expected += [f"seg{s}.t{t}.n{n}.hook_z" for n in range(3)] + [f"seg{s}.t{t}.hook_y"]
        expected += [f"seg{s}.hook_logits", f"seg{s}.hook_q"]
    assert order == expected


@pytest.mark.parametrize("causal", [False, True])
def test_baselines_fire_every_step_once_in_order(causal):
    seg = ["seg0.hook_logits", "seg0.hook_q"]
    assert fired(unitf(causal=causal), tokens(5 if causal else L)) == [
        "seg0.hook_x", "seg0.r0.hook_z", "seg0.r1.hook_z", "seg0.r2.hook_z", *seg
    ]
    assert fired(transformer(causal=causal), tokens(5 if causal else L)) == [
        "seg0.hook_x", "seg0.layer0.hook_resid", "seg0.layer1.hook_resid", *seg
    ]


def test_hooked_values_have_documented_shapes():
    model = build_model(HRMConfig(**COMMON, H_layers=1, L_layers=1, halt_max_steps=1, puzzle_emb_ndim=D,
                                  num_puzzle_identifiers=3))
    _, cache = model.run_with_cache(tokens(), torch.tensor([1, 2]))
    assert cache["seg0.hook_x"].shape == (B, 1 + L, D)
    assert cache["seg0.h0.l0.hook_z_L"].shape == (B, 1 + L, D)
    assert cache["seg0.h1.hook_z_H"].shape == (B, 1 + L, D)
    assert cache["seg0.hook_logits"].shape == (B, L, V)
    assert cache["seg0.hook_q"].shape == (B, 2) and cache["seg0.hook_q"].dtype == torch.float32


def test_hook_name_is_the_module_path():
    for model in (hrm(), trm(), unitf(), transformer()):
        modules = dict(model.named_modules())
        for name, point in model.hook_dict.items():
            assert modules[name] is point and isinstance(point, HookPoint) and point.name == name
        assert not any("hook" in k for k in model.state_dict())  # hook points carry no weights


def test_more_segments_than_halt_max_steps_adds_hook_points():
    model = hrm()
    assert not model.hook_names("seg2.*")
    x = tokens()
    # hook points for the extra segments exist before the hooks attach: a "seg3.*" filter works
    out, cache = model.run_with_cache(x, n_segments=4, names_filter="seg3.*")
    assert sorted(cache) == sorted(expected_hrm(3, 2, 2))
    assert model.hook_names("seg3.*") and not model.hook_names("seg4.*")
    assert fired(model, x, n_segments=4) == [n for s in range(4) for n in expected_hrm(s, 2, 2)]
    # only the segments that ran are in the cache
    _, cache = model.run_with_cache(x, n_segments=2)
    assert not any(k.startswith(("seg2.", "seg3.")) for k in cache)
    # and the results are those of running the segments by hand
    states = model.init_states(B)
    for s in range(4):
        states, seg_out = model.segment(states, x, seg=s)
    assert torch.equal(out, seg_out.logits)


def test_points_created_inside_an_open_context_get_its_hooks():
    model = hrm()
    x = tokens()
    seen = []
    with model.hooks([("*.hook_z_H", lambda t, hook: seen.append(hook.name))]):
        model(x, n_segments=3)  # seg2 is created during this forward
    assert seen == [f"seg{s}.h{i}.hook_z_H" for s in range(3) for i in range(2)]
    assert not any(p._forward_hooks for p in model.hook_dict.values())


# ----- run_with_cache ----------------------------------------------------------
@pytest.mark.parametrize(
    "make, last",
    [
        (hrm, {"z_H": "h1.hook_z_H", "z_L": "h1.l1.hook_z_L"}),
        (trm, {"y": "t1.hook_y", "z": "t1.n2.hook_z"}),
        (lambda: unitf(halt_max_steps=2), {"z": "r2.hook_z"}),
        (lambda: transformer(halt_max_steps=2), {"resid": "layer1.hook_resid"}),
    ],
)
def test_cache_equals_states_from_calling_segment(make, last):
    model = make()
    x = tokens()
    out, cache = model.run_with_cache(x)
    states = model.init_states(B)
    for s in range(2):
        states, seg_out = model.segment(states, x, seg=s)
        for state, hook in last.items():
            assert torch.equal(cache[f"seg{s}.{hook}"], states[state]), (s, state)
        assert torch.equal(cache[f"seg{s}.hook_logits"], seg_out.logits)
        assert torch.equal(cache[f"seg{s}.hook_q"][:, 0], seg_out.q_halt)
        assert torch.equal(cache[f"seg{s}.hook_q"][:, 1], seg_out.q_continue)
    assert torch.equal(out, seg_out.logits)


def test_cache_is_detached_unless_asked():
    model = unitf()
    x = tokens()
    _, cache = model.run_with_cache(x)
    assert all(t.grad_fn is None for t in cache.values())
    _, live = model.run_with_cache(x, detach=False)
    assert live["seg0.r0.hook_z"].grad_fn is not None


# ----- interventions -----------------------------------------------------------
def test_zero_ablation_of_z_H_changes_the_output():
    model = build_model(HRMConfig(**COMMON, H_layers=1, L_layers=1, halt_max_steps=1))
    x = tokens()
    clean = model(x)
    zero = lambda t, hook: torch.zeros_like(t)  # noqa: E731
    # the last H update feeds lm_head directly (no bias): logits become exactly 0
    ablated = model.run_with_hooks(x, fwd_hooks=[("seg0.h1.hook_z_H", zero)])
    assert torch.equal(ablated, torch.zeros_like(clean)) and not torch.equal(clean, ablated)
    # an earlier one propagates through the later updates
    _, clean_cache = model.run_with_cache(x)
    with model.hooks([("seg0.h0.hook_z_H", zero)]):
        early, cache = model.run_with_cache(x)
    assert torch.equal(cache["seg0.h0.hook_z_H"], torch.zeros(B, L, D))  # the cache sees the patched value
    assert not torch.allclose(cache["seg0.h1.l0.hook_z_L"], clean_cache["seg0.h1.l0.hook_z_L"])
    assert not torch.allclose(early, clean)
    assert torch.equal(clean_cache["seg0.h0.l1.hook_z_L"], cache["seg0.h0.l1.hook_z_L"])  # earlier steps untouched


def test_ablating_one_segment_carries_into_the_next():
    model = hrm()
    x = tokens()
    clean = model(x)
    patched = model.run_with_hooks(x, fwd_hooks=[("seg0.h1.hook_z_H", lambda t, hook: torch.zeros_like(t))])
    assert not torch.allclose(clean, patched)


@pytest.mark.parametrize("make", [hrm, trm, unitf, transformer, lambda: unitf(causal=True)])
def test_no_op_hooks_leave_output_bit_identical(make):
    model = make()
    x = tokens()
    clean = model(x)
    assert torch.equal(model.run_with_hooks(x, fwd_hooks=[(None, lambda t, hook: None)]), clean)
    assert torch.equal(model.run_with_hooks(x, fwd_hooks=[(None, lambda t, hook: t)]), clean)
    out, cache = model.run_with_cache(x)
    assert torch.equal(out, clean) and len(cache) == len(model.hook_names())


def test_hooks_removed_after_context_even_on_error():
    model = hrm()
    x = tokens()
    clean = model(x)

    def boom(t, hook):
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError, match="hook failed"):
        model.run_with_hooks(x, fwd_hooks=[("seg0.h0.hook_z_H", lambda t, hook: t * 2), ("seg1.*", boom)])
    with pytest.raises(RuntimeError, match="hook failed"):
        with model.hooks([("*.hook_z_L", boom)]):
            model(x)
    # a bad second filter: the first pair's hooks are removed too
    with pytest.raises(KeyError):
        model.run_with_hooks(x, fwd_hooks=[("seg0.*", lambda t, hook: t * 0), ("nothing*", boom)])
    for point in model.hook_dict.values():
        assert not point._forward_hooks and not point.fwd_hooks
    assert not model._open_hook_sets
    assert torch.equal(model(x), clean)


# ----- filters ------------------------------------------------------------------
def test_glob_list_and_predicate_filters():
    model = hrm()
    assert model.hook_names("seg0.h*.hook_z_H") == ["seg0.h0.hook_z_H", "seg0.h1.hook_z_H"]
    assert model.hook_names("seg?.hook_q") == ["seg0.hook_q", "seg1.hook_q"]
    assert len(model.hook_names("*.hook_z_L")) == 2 * 2 * 2
    assert model.hook_names(["seg1.hook_x", "seg0.h1.l*.hook_z_L"]) == [
        "seg0.h1.l0.hook_z_L", "seg0.h1.l1.hook_z_L", "seg1.hook_x"
    ]
    assert model.hook_names(lambda n: n.endswith("hook_x")) == ["seg0.hook_x", "seg1.hook_x"]
    assert model.hook_names() == [n for s in range(2) for n in expected_hrm(s, 2, 2)]
    _, cache = model.run_with_cache(tokens(), names_filter="seg1.*.hook_z_?")
    assert sorted(cache) == sorted(n for n in expected_hrm(1, 2, 2) if "hook_z_" in n)


def test_unknown_filter_or_name_raises_key_error():
    model = hrm()
    x = tokens()
    with pytest.raises(KeyError, match="no hook point matches"):
        model.run_with_hooks(x, fwd_hooks=[("seg0.h9.*", lambda t, hook: None)])
    with pytest.raises(KeyError, match="no hook point matches"):
        model.run_with_cache(x, names_filter="seg0.hook_zH")
    with pytest.raises(KeyError, match="no hook point matches"):
        with model.hooks([(lambda n: False, lambda t, hook: None)]):
            pass
    with pytest.raises(KeyError, match="no hook point"):
        model.hook("seg0.nope", torch.zeros(1))


def test_hook_point_rejects_backward_hooks():
    with pytest.raises(ValueError, match="only forward hooks"):
        HookPoint().add_hook(lambda t, hook: None, dir="bwd")
