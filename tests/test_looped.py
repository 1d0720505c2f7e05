"""The generic tracer of looped models (``interp.trace_looped``, ``models.looped``): a tiny Universal
Transformer, a tiny Ouro-style looped LM with an exit gate (fixed depth and early exit), HRM-Text through the
generic path against its dedicated path (bit for bit), the analyses on early exit, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.looped_models import TinyOuro, TinyUniversalTransformer

import interp
from interp.analyses.fixed_points import convergence, relative_changes
from interp.analyses.jumps import critical_steps
from interp.tracing.store import load_trace, save_trace
from models.hook_names import hook_aliases
from models.looped import LoopError, find_loop_modules

V = 40


def tokens(n: int = 3, length: int = 10, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (n, length), generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- Universal Transformer
def test_universal_transformer_states_and_lens_are_the_models_own():
    m = TinyUniversalTransformer().eval()
    x = tokens()
    tr = interp.trace_looped(m, x)  # loop, head and norm found by the dry run
    assert tr.family == "looped" and tr.n_steps == 4 and tr.state_names == ["block"]
    assert tr.meta["looped"] == {"loop": {"block": "block"}, "lens": "lm_head(norm(state))",
                                 "model_class": "TinyUniversalTransformer"}
    assert list(tr.steps["outer"]) == [0, 1, 2, 3] and set(tr.steps["updated"]) == {"block"}
    for i in range(x.shape[0]):  # batch_size=1: compare row by row with a hand re-run of the loop
        ins, outs = m.hand_states(x[i:i + 1])
        for k in range(4):
            assert np.array_equal(tr.states("block")[i, k], outs[k][0].numpy())
            assert np.array_equal(tr.states("block_in")[i, k], ins[k][0].numpy())
        with torch.no_grad():
            logits = m(x[i:i + 1])
            lens = [m.lm_head(m.norm(o)) for o in outs]
        assert np.array_equal(tr.predictions[i], torch.stack(lens)[:, 0].argmax(-1).numpy())
        assert np.array_equal(tr.final_predictions[i], logits[0].argmax(-1).numpy())
        ce = torch.nn.functional.cross_entropy(lens[-1][0, :-1], x[i, 1:])  # next-token labels by default
        assert tr.metric("ce")[i, -1] == pytest.approx(float(ce), rel=1e-5)
    d = relative_changes(tr)  # the fixed-point analysis reads the trace like any other
    assert len(d) == 3 * 4 and np.isnan(d["delta"][0]) and (d["delta"][1:4] > 0).all()


def test_hook_points_intervene_and_have_transformerlens_aliases():
    m = TinyUniversalTransformer().eval()
    x = tokens(1)
    w = interp.wrap_looped(m, x)
    names = w.hook_names()
    assert names[:2] == ["seg0.step0.hook_block_in", "seg0.step0.hook_block"]
    table = hook_aliases(names)
    assert table["step.2.hook_resid_post"] == "seg0.step2.hook_block"
    assert table["step.2.hook_resid_pre"] == "seg0.step2.hook_block_in"
    with torch.no_grad():  # (nn.MultiheadAttention takes another kernel under no_grad: compare like with like)
        out, cache = w.run_with_cache(x, names_filter="step.*.hook_resid_post")
        assert sorted(cache) == [f"seg0.step{k}.hook_block" for k in range(4)]
        ins, outs = m.hand_states(x)
        assert torch.equal(cache["seg0.step3.hook_block"], outs[3])
        zeroed = w.run_with_hooks(x, fwd_hooks=[("step.3.hook_resid_post", lambda t, hook: torch.zeros_like(t))])
        assert torch.equal(zeroed, m.lm_head(m.norm(torch.zeros_like(outs[3]))))  # the hook changed the run
        assert torch.equal(out, m(x))


# ----------------------------------------------------------------------------- Ouro-style
def test_ouro_style_loop_is_found_at_the_norm_and_matches_a_hand_run():
    m = TinyOuro().eval()
    x = tokens(2)
    found = find_loop_modules(m, lambda: m(x))
    assert found == {"model.layers.0": 4, "model.layers.1": 4, "model.norm": 4, "model.early_exit_gate": 4}
    tr = interp.trace_looped(m, x)
    assert tr.meta["looped"]["loop"] == {"norm": "model.norm"}
    assert tr.meta["looped"]["lens"] == "lm_head(state)"  # the state is already normed: no second norm
    for i in range(2):
        hand = m.hand_states(x[i:i + 1])
        assert len(hand) == 4
        for k, h in enumerate(hand):
            assert np.array_equal(tr.states("norm")[i, k], h[0].numpy())
        with torch.no_grad():
            assert np.array_equal(tr.final_predictions[i], m(x[i:i + 1])[0].argmax(-1).numpy())
    assert "steps_ran" not in tr.arrays and (tr.steps_ran == 4).all()


def test_a_named_layer_returning_a_tuple_is_traced_per_pass():
    m = TinyOuro().eval()
    x = tokens(1)
    tr = interp.trace_looped(m, x, loop=["model.layers.1"], norm="model.norm")
    assert tr.state_names == ["layers_1"] and tr.n_steps == 4
    assert tr.meta["looped"]["lens"] == "lm_head(model.norm(state))"
    with torch.no_grad():
        assert np.array_equal(tr.final_predictions[0], m(x)[0].argmax(-1).numpy())


def early_exit_model() -> tuple[TinyOuro, torch.Tensor, list[int]]:
    """An Ouro-style model with early exit and inputs whose loop counts differ (found, then checked)."""
    m = TinyOuro(ut_steps=6, exit_threshold=0.9).eval()
    with torch.no_grad():
        m.model.early_exit_gate.weight.mul_(4.0)  # exit probabilities that depend on the input
    x = tokens(12, seed=3)
    counts = [len(m.hand_states(x[i:i + 1])) for i in range(len(x))]
    assert len(set(counts)) > 1, counts
    return m, x, counts


def test_early_exit_records_only_the_steps_that_ran(tmp_path):
    m, x, counts = early_exit_model()
    tr = interp.trace_looped(m, x)
    assert tr.n_steps == max(counts) and tr.meta["variable_steps"] is True
    assert tr.steps_ran.tolist() == counts
    for i, c in enumerate(counts):
        hand = m.hand_states(x[i:i + 1])
        st = tr.states("norm")[i]
        for k in range(c):
            assert np.array_equal(st[k], hand[k][0].numpy())
        assert np.isnan(st[c:]).all() and np.isnan(tr.metric("ce")[i, c:]).all()
        with torch.no_grad():
            assert np.array_equal(tr.final_predictions[i], m(x[i:i + 1])[0].argmax(-1).numpy())
    back = load_trace(save_trace(tr, tmp_path / "t"))
    assert back.steps_ran.tolist() == counts


def test_analyses_respect_early_exit():
    m, x, counts = early_exit_model()
    tr = interp.trace_looped(m, x)
    d = relative_changes(tr)
    assert len(d) == sum(counts)  # one row per update that ran
    conv = convergence(tr, tol=10.0)  # every change is below 10: converged from the first update that has one
    assert conv["converged"].all() and (conv["convergence_step"] == 1).all()
    delta = tr.metric("delta.norm")
    assert np.allclose(conv["final_delta"], [delta[i, c - 1] for i, c in enumerate(counts)])
    cs = critical_steps(tr, "ce")
    ce = tr.metric("ce")
    assert np.allclose(cs["final_error"], [ce[i, c - 1] for i, c in enumerate(counts)])
    summ = tr.summary("puzzle")
    assert np.allclose(summ["final_ce"], cs["final_error"])
    step = tr.summary("step")  # step means over the puzzles that ran the step
    for k in range(tr.n_steps):
        ran = [i for i, c in enumerate(counts) if c > k]
        assert step["ce"][k] == pytest.approx(float(ce[ran, k].astype(np.float64).mean()))


# ----------------------------------------------------------------------------- bad input
def test_bad_loops_are_one_line_errors():
    m = TinyOuro().eval()
    x = tokens(1)
    with pytest.raises(LoopError, match=r"loop module 'model.nope' does not exist in TinyOuro"):
        interp.trace_looped(m, x, loop="model.nope")
    m.model.unused = torch.nn.Linear(2, 2)
    with pytest.raises(LoopError, match=r"loop module 'model.unused' is never called by TinyOuro's forward"):
        interp.trace_looped(m, x, loop=["model.norm", "model.unused"])
    with pytest.raises(LoopError, match=r"'model.early_exit_gate' returns a \[1, 1\] tensor; a state must be"):
        interp.trace_looped(m, x, loop="model.early_exit_gate")
    with pytest.raises(LoopError, match="lens head 'nope' does not exist"):
        interp.trace_looped(m, x, loop="model.norm", head="nope")


def test_a_state_changing_shape_is_refused():
    class Growing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(V, 8)
            self.step = torch.nn.Identity()
            self.head = torch.nn.Linear(8, V)

        def forward(self, t):
            h = self.embed(t)
            h = self.step(h)
            h = self.step(torch.cat([h, h], 1))  # the second call sees twice the positions
            return self.head(h[:, : t.shape[1]])

    with pytest.raises(LoopError, match=r"'step' changed its state shape between calls \(\[1, 10, 8\] before, "
                                        r"\[1, 20, 8\] at step 1\)"):
        interp.trace_looped(Growing(), tokens(1), loop="step")
    with pytest.raises(LoopError, match="calls no module more than once"):
        interp.trace_looped(torch.nn.Sequential(torch.nn.Embedding(V, 8), torch.nn.Linear(8, V)), tokens(1))
