"""HRM-Text (transformers' HrmTextForCausalLM) traced per step, on a tiny random config, offline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
from hub_cache import add_to_hub_cache, folder_files  # noqa: E402
from transformers import HrmTextConfig, HrmTextForCausalLM  # noqa: E402
from transformers.masking_utils import create_causal_mask  # noqa: E402

from interp import load_trace  # noqa: E402
from interp.analyses.alignment import hl_alignment  # noqa: E402
from interp.analyses.fixed_points import convergence, relative_changes  # noqa: E402
from interp.cli import main as interp_main  # noqa: E402
from interp.tracing.tracer import trace  # noqa: E402
from models.checkpoint import CheckpointError  # noqa: E402
from models.load import load_any  # noqa: E402
from models.hrm_text import wrap_hrm_text  # noqa: E402

V = 50


def tiny(seed: int = 0, **kw) -> HrmTextForCausalLM:
    torch.manual_seed(seed)
    cfg = HrmTextConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, head_dim=16, H_cycles=2, L_cycles=3, max_position_embeddings=64,
                        **kw)
    hf = HrmTextForCausalLM(cfg).eval()
    with torch.no_grad():  # z_L_init is zero at init; a non-zero start makes the test stricter
        hf.model.z_L_init.normal_()
    return hf


@pytest.fixture(scope="module")
def model():
    return wrap_hrm_text(tiny())


@pytest.fixture(scope="module")
def tokens():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, V, (3, 12), generator=g)


def hand_loop(hf, tokens) -> list[tuple[str, torch.Tensor]]:
    """A hand-written re-run of HrmTextModel's H/L loop from its own submodules: [(state, value)] per call."""
    inner, c = hf.model, hf.config
    x = inner.embed_tokens(tokens) * inner.embedding_scale
    pos = torch.arange(tokens.shape[1])[None]
    mask = create_causal_mask(config=c, inputs_embeds=x, attention_mask=None, cache=None, position_ids=pos)
    pe = inner.rotary_emb(x, pos)
    z_H, z_L = x, inner.z_L_init.expand_as(x).contiguous()
    out = []
    for _ in range(c.H_cycles):
        for _ in range(c.L_cycles):
            z_L = inner.L_module(z_L + z_H, attention_mask=mask, position_embeddings=pe)
            out.append(("z_L", z_L))
        z_H = inner.H_module(z_H + z_L, attention_mask=mask, position_embeddings=pe)
        out.append(("z_H", z_H))
    return out


def test_last_state_and_logits_are_the_models_exactly(model, tokens):
    tr = trace(model, tokens, states="all")
    with torch.no_grad():
        hidden = model.hf.model(input_ids=tokens).last_hidden_state
        logits = model.hf(input_ids=tokens).logits
    assert tr.n_steps == 2 * (3 + 1) and tr.family == "hrm_text"
    assert np.array_equal(tr.states("z_H")[:, -1], hidden.numpy())
    assert np.array_equal(tr.predictions[:, -1], logits.argmax(-1).numpy())
    lens = model.decode(torch.from_numpy(tr.states("z_H")[:, -1]))
    assert torch.equal(lens, logits)  # the lens of the last state is the model's own logits, bit for bit
    out, cache = model.run_with_cache(tokens)
    assert torch.equal(out, logits) and torch.equal(cache["seg0.h1.hook_z_H"], hidden)
    assert torch.equal(cache["seg0.hook_logits"], logits)


def test_every_step_equals_a_hand_written_rerun(model, tokens):
    tr = trace(model, tokens, states="all")
    with torch.no_grad():
        ref = hand_loop(model.hf, tokens)
    steps = tr.steps
    assert [s for s, _ in ref] == list(steps["updated"])
    assert list(steps["outer"]) == [0, 0, 0, 0, 1, 1, 1, 1] and list(steps["inner"]) == [0, 1, 2, -1] * 2
    for k, (state, value) in enumerate(ref):
        assert np.array_equal(tr.states(state)[:, k], value.numpy()), k
    # per-position states for both modules; the unchanged one is carried over
    assert tr.states("z_L").shape == (3, 8, 12, 32)
    start = model.start_states(tokens)["z_H"]  # z_H is carried unchanged through the first L-cycles
    assert np.array_equal(tr.states("z_H")[:, 0], start.numpy())


def test_schema_matches_the_lm_traces_and_analyses_run(model, tokens, tmp_path):
    tr = trace(model, tokens, states="all")
    assert tr.meta["segment_unit"] == "pass" and tr.meta["model_config"]["causal"]
    assert (tr.fast_state, tr.slow_state, tr.answer_state) == ("z_L", "z_H", "z_H")
    assert list(tr.steps["is_slow"]) == [False, False, False, True] * 2
    for name in ("ce", "token_acc", "ce.z_L", "delta.z_H", "delta.z_L", "cos.z_H.z_L", "norm.z_L"):
        assert name in tr.metric_names, name
    rc = relative_changes(tr)
    assert len(rc) == 3 * 2 and np.isfinite(rc["delta"]).all()
    assert len(convergence(tr, tol=1e9)) == 3
    al = hl_alignment(tr, cka=True)
    assert len(al) == 8 and np.isfinite(al["cos_mean"]).all()
    from interp.views.trace_viewer import write_viewer

    assert write_viewer(tr, tmp_path / "v.html").exists()


def test_interventions_through_the_step_hooks(model, tokens):
    """A hook returning a tensor changes the run (the forward hook hands it back to the loop)."""
    zero = lambda t, hook: torch.zeros_like(t)  # noqa: E731
    with torch.no_grad():
        clean = model(tokens)
        patched = model.run_with_hooks(tokens, fwd_hooks=[("seg0.h1.hook_z_H", zero)])
    assert torch.equal(patched, model.hf.lm_head(torch.zeros(3, 12, 32)))
    assert not torch.equal(clean, patched)
    tr = trace(model, tokens, fwd_hooks=[("seg0.h0.l2.hook_z_L", zero)], states="all")
    assert tr.meta["intervened"] and not tr.states("z_L")[:, 2].any()


def test_custom_initial_states_refused(model, tokens):
    from interp.tracing.trace import TraceError

    init = {"z_H": torch.zeros(3, 12, 32), "z_L": torch.zeros(3, 12, 32)}
    with pytest.raises((ValueError, TraceError), match="no carried state"):
        trace(model, tokens, init_states=init)


def test_save_pretrained_folder_hub_and_cli(tmp_path, monkeypatch, capsys):
    hf = tiny(3)
    folder = tmp_path / "hrm-text"
    hf.save_pretrained(folder)
    assert any(folder.glob("*.safetensors"))
    m, meta = load_any(folder)
    x = torch.randint(0, V, (2, 9))
    with torch.no_grad():
        assert torch.equal(m(x), hf(input_ids=x).logits)
    assert meta["format"] == "transformers" and m.cfg.family == "hrm_text"
    # through a Hub cache, offline
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    add_to_hub_cache(home / "hub", "sapientinc/HRM-Text-tiny", folder_files(folder))
    m2, meta2 = load_any("hf:sapientinc/HRM-Text-tiny")
    assert meta2["hub"]["layout"] == "transformers"
    with torch.no_grad():
        assert torch.equal(m2(x), hf(input_ids=x).logits)
    # interp trace --tokens, then interp show
    out = tmp_path / "trace"
    assert interp_main(["trace", "--ckpt", "hf:sapientinc/HRM-Text-tiny", "--tokens", "1 2 3 4 5 6",
                        "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "8 steps" in printed and "trace written" in printed
    tr = load_trace(out)
    assert tr.family == "hrm_text" and tr.n_steps == 8 and tr.states("z_H").shape == (1, 8, 6, 32)
    assert tr.decoded_states == ["z_H"]  # a language model's default lens: the answer state only
    assert interp_main(["trace", "--ckpt", "hf:sapientinc/HRM-Text-tiny", "--tokens", "1 2 3 4 5 6", "--lens", "all",
                        "--out", str(tmp_path / "all")]) == 0
    assert load_trace(tmp_path / "all").decoded_states == ["z_H", "z_L"]
    capsys.readouterr()
    assert interp_main(["show", str(out)]) == 0
    assert "z_H" in capsys.readouterr().out


def test_show_prints_a_dash_for_a_change_from_a_zero_state(tmp_path, capsys):
    """A state starting from zeros (HRM-Text's z_L) has no relative change at step 0 (x/0): `show` prints '-'."""
    from interp.tracing.store import save_trace
    from interp.tracing.synthetic import synthetic_trace

    rng = np.random.default_rng(0)
    states = {"z_H": rng.normal(size=(1, 3, 4, 2)), "z_L": rng.normal(size=(1, 3, 4, 2))}
    tr = synthetic_trace(states, updated=["z_L", "z_L", "z_H"], init={"z_H": np.ones((1, 4, 2)), "z_L": np.zeros((1, 4, 2))})
    assert np.isinf(tr.metric("delta.z_L")[0, 0]) and np.isfinite(tr.metric("delta.z_L")[0, 1])
    save_trace(tr, tmp_path / "t")
    assert interp_main(["show", str(tmp_path / "t")]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(ln for ln in lines if "delta.z_L" in ln).split()
    rows = [ln.split() for ln in lines if ln.split() and ln.split()[0] in ("0", "1")]
    col = header.index("delta.z_L")
    assert rows[0][col] == "-" and float(rows[1][col]) == pytest.approx(float(tr.metric("delta.z_L")[0, 1]), rel=1e-3)
    assert "inf" not in "\n".join(lines)


def test_cli_text_with_the_checkpoints_tokenizer(tmp_path, capsys):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[UNK]", "the", "cat", "sat", "on", "mat"]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path / "m"
    tiny(4).save_pretrained(folder)
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]").save_pretrained(folder)
    out = tmp_path / "t"
    assert interp_main(["trace", "--ckpt", str(folder), "--text", "the cat sat on the mat", "--out", str(out)]) == 0
    assert load_trace(out).inputs.tolist() == [[1, 2, 3, 4, 1, 5]]
    capsys.readouterr()


def test_transformers_model_that_is_not_hrm_text(tmp_path, capsys):
    folder = tmp_path / "llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(CheckpointError, match="not HRM-Text"):
        load_any(folder)
    out = tmp_path / "never"
    assert interp_main(["trace", "--ckpt", str(folder), "--tokens", "1 2 3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not HRM-Text" in err and err.count("\n") == 1 and not out.exists()


def test_cli_text_on_our_hrm_lm_uses_its_byte_tokenizer(tmp_path, capsys):
    from pathlib import Path

    zoo = Path(__file__).resolve().parents[1] / "zoo" / "hrm-lm-pydoc"
    out = tmp_path / "lm"
    assert interp_main(["trace", "--ckpt", str(zoo), "--text", "def main():", "--out", str(out)]) == 0
    tr = load_trace(out)
    assert tr.family == "hrm_lm" and tr.inputs.tolist() == [list(b"def main():")]
    assert "next-token guess" in capsys.readouterr().out
