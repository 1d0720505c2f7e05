"""The generic tracer of looped models (``interp.trace_looped``, ``models.looped``): a tiny Universal
Transformer, a tiny Ouro-style looped LM with an exit gate (fixed depth and early exit), HRM-Text through the
generic path against its dedicated path (bit for bit), the analyses on early exit, and bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from helpers.looped_models import TinyHuginn, TinyOuro, TinyUniversalTransformer

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
    assert not m.block._forward_hooks and not m.block._forward_pre_hooks  # nothing left on the caller's model
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


def test_a_puzzle_style_loop_with_labels_scores_every_step():
    m = TinyUniversalTransformer().eval()
    x = tokens(4)
    y = (x + 1) % V  # a puzzle scores the labelled cells that differ from the input: here all of them
    y[:, :3] = -100  # not scored
    tr = interp.trace_looped(m, x, lm=False, labels=y, batch_size=2)
    assert tr.meta["model_config"]["causal"] is False and tr.labelled
    pred = tr.predictions  # [N, T, L]
    wrong = ((pred != y.numpy()[:, None]) & (y.numpy()[:, None] != -100)).sum(-1)
    assert np.array_equal(tr.metric("n_wrong"), wrong)
    assert np.array_equal(tr.metric("exact").astype(bool), wrong == 0)
    assert np.isnan(tr.metric("q_halt")).all()  # no halting head
    with pytest.raises(ValueError, match="inputs must have 10 tokens"):
        interp.trace(interp.wrap_looped(m, x, lm=False), tokens(1, 7))


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


def test_huginn_style_core_is_found_and_a_seeded_call_makes_the_random_start_reproducible():
    m = TinyHuginn().eval()
    x = tokens(2)

    def call(model, t):  # Huginn starts from a random state: the same seed for every forward
        torch.manual_seed(123)
        return model(t)

    found = find_loop_modules(m, lambda: call(m, x))
    assert found == {"transformer.adapter": 5, **{f"transformer.core_block.{i}": 5 for i in range(4)},
                     "transformer.ln_f": 2}
    tr = interp.trace_looped(m, x, call=call)
    assert tr.meta["looped"]["loop"] == {"core_block_3": "transformer.core_block.3"}  # ln_f (after the loop) is not
    assert tr.meta["looped"]["lens"] == "lm_head(transformer.ln_f(state))"
    assert tr.n_steps == 5
    for i in range(2):
        torch.manual_seed(123)
        hand = m.hand_states(x[i:i + 1])
        for k in range(5):
            assert np.array_equal(tr.states("core_block_3")[i, k], hand[k][0].numpy())


def early_exit_model() -> tuple[TinyOuro, torch.Tensor, list[int]]:
    """An Ouro-style model with early exit and inputs whose loop counts differ (found, then checked)."""
    m = TinyOuro(ut_steps=6, exit_threshold=0.9).eval()
    with torch.no_grad():
        m.model.early_exit_gate.weight.mul_(4.0)  # exit probabilities that depend on the input
        m.model.early_exit_gate.bias.add_(1.0)
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
    w = interp.wrap_looped(m, x, record_inputs=False)  # streamed to disk in chunks of 5, read back
    disk = load_trace(interp.trace_to_disk(w, x.numpy(), tmp_path / "d", chunk_size=5, batch_size=1, states="all",
                                           progress=False))
    w.release()
    assert disk.steps_ran.tolist() == counts and disk.stored_states == ["norm"]
    assert np.array_equal(disk.states("norm"), tr.states("norm"), equal_nan=True)
    assert np.array_equal(disk.predictions, tr.predictions)
    short, long = int(np.argmin(counts)), int(np.argmax(counts))
    assert counts[short] == 1  # the first input repeats no module: the loop is found on the next one
    two = interp.trace_looped(m, x[[short, long]])
    assert two.meta["looped"]["loop"] == {"norm": "model.norm"} and two.steps_ran.tolist() == [1, max(counts)]
    from interp.views.trace_viewer import step_panels, write_viewer

    html = write_viewer(two, tmp_path / "v" / "viewer.html", puzzle=[0, 1]) or tmp_path / "v" / "viewer.html"
    assert html.is_file()
    panels = {p.title: p for p in step_panels(two, 0)}
    assert [ln["name"] for ln in panels["input mean"].lines] == ["norm_in"] and "gate mean" not in panels
    assert "relative change" not in panels  # the one-step input has no change to draw
    ys = step_panels(two, 1)[[p.title for p in step_panels(two, 1)].index("relative change")].lines[0]["y"]
    assert ys[0] is None and all(v > 0 for v in ys[1:])  # the full-length input: a change at every later step


def test_per_row_exit_inside_a_batch():
    m, x, counts = early_exit_model()
    tr = interp.trace_looped(m, x, batch_size=len(x), exit_steps=lambda model, t: model.row_steps)
    assert tr.steps_ran.tolist() == counts  # each row's own count, in one batch of 12
    with torch.no_grad():
        logits = m(x)  # the same batch: each row's logits come from its exit step
    assert np.array_equal(tr.final_predictions, logits.argmax(-1).numpy())
    for i, c in enumerate(counts):
        hand = m.hand_states(x[i:i + 1])
        assert np.allclose(tr.states("norm")[i, :c], torch.cat(hand).numpy(), atol=1e-5)  # batch vs single rows
        assert np.isnan(tr.states("norm")[i, c:]).all() and np.isnan(tr.metric("ce")[i, c:]).all()
    with pytest.raises(LoopError, match=r"exit_steps must give one step count in 1\.\.6 per row"):
        interp.trace_looped(m, x[:2], batch_size=2, exit_steps=lambda model, t: [0, 9])
    batch = interp.trace_looped(m, x, batch_size=len(x))  # without exit_steps: the batch's count for every row
    assert batch.steps_ran.tolist() == [max(counts)] * len(x)


def test_analyses_respect_early_exit():
    m, x, counts = early_exit_model()
    tr = interp.trace_looped(m, x)
    d = relative_changes(tr)
    assert len(d) == sum(counts)  # one row per update that ran
    conv = convergence(tr, tol=10.0)  # every change is below 10: converged from the first update that has one
    several = np.array(counts) > 1  # one step has no change to measure (NaN): not converged
    assert (conv["converged"] == several).all() and (conv["convergence_step"] == np.where(several, 1, -1)).all()
    delta = tr.metric("delta.norm")
    assert np.allclose(conv["final_delta"], [delta[i, c - 1] for i, c in enumerate(counts)], equal_nan=True)
    assert np.isnan(conv["final_delta"][~several]).all()
    tol = float(np.nanmedian(delta))
    strict = convergence(tr, tol=tol)
    for i, c in enumerate(counts):  # independent: the first ran step from which every ran change is below tol
        ok = [k for k in range(c) if all(delta[i, j] < tol for j in range(k, c))]
        assert strict["convergence_step"][i] == (ok[0] if ok else -1)
    assert 0 < strict["converged"].sum() < several.sum()
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
    assert not any(mod._forward_hooks or mod._forward_pre_hooks for mod in m.modules())  # a failed plan leaves none

def test_a_run_longer_than_the_plan_is_refused():
    m, x, counts = early_exit_model()
    short, long = int(np.argmin(counts)), int(np.argmax(counts))
    w = interp.wrap_looped(m, x[[short, short]], loop="model.norm")
    with pytest.raises(LoopError, match="ran in an order the planning run did not"):
        interp.trace(w, x[[long]])


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


# ----------------------------------------------------------------------------- HRM-Text: generic == dedicated
def tiny_hrm_text(seed: int = 0):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    cfg = transformers.HrmTextConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=2, head_dim=16, H_cycles=2, L_cycles=3,
                                     max_position_embeddings=64)
    hf = transformers.HrmTextForCausalLM(cfg).eval()
    with torch.no_grad():
        hf.model.z_L_init.normal_()
    return hf


HRM_LOOP = {"z_H": "model.H_module", "z_L": "model.L_module"}


def assert_same_as_dedicated(ded, gen) -> None:
    """Every state, lens and metric of the generic trace equals the dedicated one, bit for bit, from the first
    step where the generic path has the state (the dedicated path also knows the starting states)."""
    assert list(gen.steps["updated"]) == list(ded.steps["updated"])
    first = {s: list(gen.steps["updated"]).index(s) for s in ("z_H", "z_L")}
    for s in ("z_H", "z_L"):
        upd = [k for k, u in enumerate(gen.steps["updated"]) if u == s]
        assert np.array_equal(gen.states(s)[:, upd], ded.states(s)[:, upd])
    compared = 0
    for k, a in ded.arrays.items():
        if k not in gen.arrays or not k.startswith(("step/", "pred/", "conf/")):
            continue
        s = k.split("/")[1].split(".")[-1]
        f = max(first.values()) if ".z_" in k and k.count(".") > 1 else first[s] + ("delta" in k)
        assert np.array_equal(a[:, f:], gen.arrays[k][:, f:], equal_nan=a.dtype.kind == "f"), k
        compared += 1
    assert compared >= 15


def test_hrm_text_through_the_generic_path_equals_the_dedicated_path_bit_for_bit():
    from models.hrm_text import wrap_hrm_text

    hf = tiny_hrm_text()
    x = tokens(3, 12)
    ded = interp.trace(wrap_hrm_text(hf), x, states="all", batch_size=3)
    gen = interp.trace_looped(hf, x, HRM_LOOP, batch_size=3)
    assert gen.meta["looped"]["lens"] == "lm_head(state)"  # the stacks end with their final norm
    assert_same_as_dedicated(ded, gen)
    with torch.no_grad():
        logits = hf(input_ids=x).logits
    assert np.array_equal(gen.final_predictions, logits.argmax(-1).numpy())
    w = interp.wrap_looped(hf, x, HRM_LOOP, answer="z_H", batch_size=3)
    lens = w.decode(torch.from_numpy(gen.states("z_H")[:, -1]))
    assert torch.equal(lens, logits)  # the lens of the last state is the model's own logits, bit for bit
    auto = interp.trace_looped(hf, x[:1])
    assert auto.meta["looped"]["loop"] == {"L_module": "model.L_module", "H_module": "model.H_module"}
    assert auto.answer_state == auto.slow_state == "H_module"  # the module the loop ends with


def test_cli_on_a_save_pretrained_folder_matches_the_dedicated_cli(tmp_path, capsys):
    from interp.cli import main

    folder = tmp_path / "hrm-text"
    tiny_hrm_text(2).save_pretrained(folder)
    ids = "3 1 4 1 5 9 2 6 5 3"
    lens = ["--lens", "all"]  # every state's lens on both paths (language models default to the answer's only)
    assert main(["trace", "--ckpt", str(folder), "--tokens", ids, *lens, "--out", str(tmp_path / "ded")]) == 0
    assert main(["trace", "--ckpt", str(folder), "--tokens", ids, *lens, "--loop-module",
                 "z_H=model.H_module,z_L=model.L_module", "--out", str(tmp_path / "gen")]) == 0
    out = capsys.readouterr()
    assert "loop z_H=model.H_module, z_L=model.L_module (8 calls); lens lm_head(state)" in out.out
    assert "traced 10 tokens: 8 steps" in out.out and (tmp_path / "gen" / "viewer.html").is_file()
    ded, gen = load_trace(tmp_path / "ded"), load_trace(tmp_path / "gen")
    assert gen.family == "looped" and gen.meta["model_config"]["loop"] == {"z_H": "model.H_module",
                                                                            "z_L": "model.L_module"}
    assert_same_as_dedicated(ded, gen)


def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    from interp.cli import main

    folder = tmp_path / "hrm-text"
    tiny_hrm_text().save_pretrained(folder)
    capsys.readouterr()
    out = tmp_path / "out"
    cases = [
        (["--loop-module", "model.nope"], "loop module 'model.nope' does not exist in HrmTextForCausalLM"),
        (["--loop-module", "model.L_module,model.nothing"], "loop module 'model.nothing' does not exist"),
        (["--loop-module", "model.L_module", "--lens-head", "model.nope"], "lens head 'model.nope' does not exist"),
        (["--loop-module", "a=model.L_module,model.H_module"], "name every module"),
        (["--loop-module", "model.L_module", "--tokens", "1 2 999"], r"token ids must lie in \[0, 40\)"),
    ]
    for extra, msg in cases:
        argv = ["trace", "--ckpt", str(folder), "--out", str(out), *extra]
        if "--tokens" not in extra:
            argv += ["--tokens", "1 2 3 4"]
        assert main(argv) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), err

        assert re.search(msg, err), err
        assert not out.exists()


REMOTE_CONFIG = '''
from transformers import PretrainedConfig


class TinyLoopConfig(PretrainedConfig):
    model_type = "tinyloop_looped_test"

    def __init__(self, vocab_size=40, hidden_size=16, ut_steps=3, **kwargs):
        self.vocab_size, self.hidden_size, self.ut_steps = vocab_size, hidden_size, ut_steps
        super().__init__(**kwargs)
'''

REMOTE_MODEL = '''
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from .configuration_tinyloop import TinyLoopConfig


class TinyLoopForCausalLM(PreTrainedModel):
    config_class = TinyLoopConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.core = nn.Linear(config.hidden_size, config.hidden_size)
        self.ln_f = nn.LayerNorm(config.hidden_size)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids=None, **kwargs):
        h = self.embed(input_ids)
        for _ in range(self.config.ut_steps):
            h = h + torch.tanh(self.core(h))
        return CausalLMOutput(logits=self.lm_head(self.ln_f(h)))
'''


def test_remote_code_needs_the_flag(tmp_path, capsys):
    pytest.importorskip("transformers")
    from safetensors.torch import save_file

    from interp.cli import main

    folder = tmp_path / "remote"
    folder.mkdir()
    (folder / "configuration_tinyloop.py").write_text(REMOTE_CONFIG)
    (folder / "modeling_tinyloop.py").write_text(REMOTE_MODEL)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "tinyloop_looped_test", "vocab_size": V, "hidden_size": 16, "ut_steps": 3,
        "auto_map": {"AutoConfig": "configuration_tinyloop.TinyLoopConfig",
                     "AutoModelForCausalLM": "modeling_tinyloop.TinyLoopForCausalLM"}}))
    torch.manual_seed(0)
    d = 16
    save_file({"embed.weight": torch.randn(V, d), "core.weight": torch.randn(d, d) / 4, "core.bias": torch.zeros(d),
               "ln_f.weight": torch.ones(d), "ln_f.bias": torch.zeros(d), "lm_head.weight": torch.randn(V, d)},
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    out = tmp_path / "out"
    capsys.readouterr()
    argv = ["trace", "--ckpt", str(folder), "--loop-module", "auto", "--tokens", "1 2 3 4 5", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "runs the folder's own code (modeling_tinyloop.TinyLoopForCausalLM); pass " \
        "--trust-remote-code" in err and not out.exists()
    assert main([*argv, "--trust-remote-code"]) == 0
    printed = capsys.readouterr()
    assert "loop core=core (3 calls); lens lm_head(ln_f(state))" in printed.out
    assert "note: modules called more than once per forward: core (3)" in printed.err
    tr = load_trace(out)
    assert tr.n_steps == 3 and tr.meta["model_config"]["model_class"] == "TinyLoopForCausalLM"


def test_cli_text_uses_the_folders_tokenizer(tmp_path, capsys):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from interp.cli import main

    words = ["[UNK]", "the", "cat", "sat", "on", "mat"]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path / "m"
    tiny_hrm_text(4).save_pretrained(folder)
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]").save_pretrained(folder)
    out = tmp_path / "t"
    capsys.readouterr()
    assert main(["trace", "--ckpt", str(folder), "--loop-module", "model.H_module", "--text", "the cat sat on the mat",
                 "--out", str(out)]) == 0
    tr = load_trace(out)
    assert tr.inputs.tolist() == [[1, 2, 3, 4, 1, 5]] and tr.n_steps == 2 and tr.state_names == ["H_module"]
    text = capsys.readouterr().out
    last = text.split("next-token guess after the last input token\n")[1].splitlines()[1]
    assert last.split()[:2] == ["1", "H_module"] and last.rstrip().endswith("'")  # the guess, decoded by the tokenizer


def test_transformerlens_and_nnsight_see_every_call():
    from interp.interop import nnsight_cache, to_nnsight, to_transformer_lens

    m = TinyUniversalTransformer().eval()
    x = tokens(2)
    w = interp.wrap_looped(m, x)
    with torch.no_grad():
        _, cache = w.run_with_cache(x, names_filter="step.*.hook_resid_post")
        pytest.importorskip("nnsight")
        _, nn_cache = nnsight_cache(to_nnsight(w), x, names_filter="step.*.hook_resid_post")
        assert sorted(nn_cache) == sorted(cache) and all(torch.equal(cache[k], nn_cache[k]) for k in cache)
        pytest.importorskip("transformer_lens")
        _, tl_cache = to_transformer_lens(w).run_with_cache(x)
    assert {f"seg0.step{k}.hook_block_in" for k in range(4)} <= set(tl_cache)
    assert all(torch.equal(cache[k], tl_cache[k]) for k in cache)
