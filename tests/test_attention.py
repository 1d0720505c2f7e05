"""Attention patterns per step (opt-in) and the Sudoku row/column/box analysis."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from interp.analyses.attention import pattern_masses, sudoku_attention_mass, sudoku_relations
from interp.tracing.trace import TraceError
from interp.tracing.tracer import trace
from models import HRMConfig, TRMConfig, build_model
from models.blocks import apply_rotary


def _hrm(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = dict(vocab_size=11, seq_len=81, hidden_size=32, num_heads=4, H_layers=1, L_layers=2, H_cycles=2,
               L_cycles=2, halt_max_steps=2, mlp_t=False)
    cfg.update(kw)
    return build_model(HRMConfig(**cfg)).eval()


def _inputs(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 11, (n, 81), generator=g)


def test_off_by_default_and_bit_identical_after_recording():
    m = _hrm()
    x = _inputs()
    names = m.hook_names()
    assert not any(n.endswith("hook_pattern") for n in names)
    out0 = m(x)
    tr0 = trace(m, x, states="all")
    tr = trace(m, x, states="all", attention=True)
    assert tr.meta["pattern_states"] == ["pattern.layer0", "pattern.layer1"]
    # after the traced call the model is exactly as before: hook grid, outputs, traces
    assert m.hook_names() == names and not m.recording_attention
    assert torch.equal(m(x), out0)
    tr1 = trace(m, x, states="all")
    assert "pattern_states" not in tr1.meta and tr1.stored_states == tr0.stored_states == ["z_H", "z_L"]
    for s in ("z_H", "z_L"):
        np.testing.assert_array_equal(tr1.states(s), tr0.states(s))
        # the explicit softmax only changes rounding
        np.testing.assert_allclose(tr.states(s), tr0.states(s), atol=1e-4)
    for k in tr0.arrays:
        if tr0.arrays[k].dtype.kind == "f":
            np.testing.assert_array_equal(tr1.arrays[k], tr0.arrays[k])


def test_pattern_shapes_steps_and_nan_where_no_layer():
    m = _hrm()
    tr = trace(m, _inputs(), states="pattern", attention=True)
    assert tr.stored_states == ["pattern.layer0", "pattern.layer1"]
    p0, p1 = tr.states("pattern.layer0"), tr.states("pattern.layer1")
    assert p0.shape == (3, tr.n_steps, 4, 81, 81)
    np.testing.assert_allclose(p0.sum(-1), 1.0, atol=1e-5)
    upd = tr.steps["updated"].tolist()
    # H_level has one layer: layer 1 is NaN at z_H steps, a pattern at z_L steps
    for t, u in enumerate(upd):
        assert np.isnan(p1[:, t]).all() == (u == "z_H")


def test_recorded_pattern_equals_independent_computation():
    m = _hrm(pos_encodings="rope")
    x = _inputs(2)
    seen = {}

    def grab(mod, args):  # the input of L_level's layer-1 attention, at every call
        seen.setdefault("h", []).append(args[0].detach().clone())

    attn = m.L_level.layers[1].self_attn
    handle = attn.register_forward_pre_hook(grab)
    m.record_attention(True)
    try:
        _, cache = m.run_with_cache(x, n_segments=1, names_filter="*.hook_pattern")
    finally:
        handle.remove()
        m.record_attention(False)
    assert "seg0.h0.l0.layer1.hook_pattern" in cache and "seg0.h1.layer0.hook_pattern" in cache
    h = seen["h"][0]  # first L call = seg0.h0.l0
    B, L, D = h.shape
    H, Dh = 4, D // 4
    qkv = h @ attn.qkv_proj.weight.t().to(h.dtype)
    q, k = qkv[..., :D].view(B, L, H, Dh), qkv[..., D:2 * D].view(B, L, H, Dh)
    cos, sin = m.rotary_tables()
    q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    scores = torch.einsum("bqhd,bkhd->bhqk", q.double(), k.double()) / math.sqrt(Dh)
    ref = torch.softmax(scores, -1)
    got = cache["seg0.h0.l0.layer1.hook_pattern"]
    assert got.shape == (B, H, L, L)
    torch.testing.assert_close(got.double(), ref, atol=1e-5, rtol=1e-4)


def test_pattern_hook_is_an_intervention():
    m = _hrm()
    x = _inputs(1)
    m.record_attention(True)
    try:
        base = m(x, n_segments=1)
        uniform = m.run_with_hooks(x, n_segments=1, fwd_hooks=[("seg0.h0.l0.layer0.hook_pattern", lambda p, hook: torch.full_like(p, 1 / p.shape[-1]))])
    finally:
        m.record_attention(False)
    assert not torch.allclose(base, uniform)


def _planted_trm():
    """TRM, attention, learned positions; head 0 of layer 0 attends within Sudoku rows by construction."""
    torch.manual_seed(0)
    cfg = TRMConfig(vocab_size=11, seq_len=81, hidden_size=32, num_heads=2, num_layers=1, H_cycles=1, L_cycles=2,
                    halt_max_steps=1, mlp_t=False, pos_encodings="learned")
    m = build_model(cfg).eval()
    D, Dh = 32, 16
    rows = torch.arange(81) // 9
    with torch.no_grad():
        m.embed_tokens.embedding_weight[:, :9] = 0  # dims 0..8 carry the row one-hot only
        m.embed_pos.embedding_weight[:, :9] = 0
        m.embed_pos.embedding_weight[torch.arange(81), rows] = 5.0
        m.H_init[:9] = 0
        m.L_init[:9] = 0
        w = m.L_level.layers[0].self_attn.qkv_proj.weight  # [3D, D]: rows Q, K, V; head 0 = first Dh of each
        w[:Dh] = 0
        w[D:D + Dh] = 0
        w[torch.arange(9), torch.arange(9)] = 0.3  # Q head 0 reads the row one-hot
        w[D + torch.arange(9), torch.arange(9)] = 0.3  # K head 0 too
    return m


def test_planted_row_head_is_found():
    m = _planted_trm()
    tr = trace(m, _inputs(4), states="all", attention=True)
    df = sudoku_attention_mass(tr)
    z_steps = df[(df["updated"] == "z") & (df["layer"] == 0)]  # the z update sees x (and the planted rows)
    h0, h1 = z_steps[z_steps["head"] == 0], z_steps[z_steps["head"] == 1]
    assert (h0["row"] > 0.95).all(), h0
    assert (h0["col"] < 0.05).all() and (h0["box"] < 0.4).all()  # a row shares 2 of its 8 cells with the box
    assert (h1["row"] < 0.5).all()


def test_masses_of_hand_made_patterns():
    rel = sudoku_relations(81)
    assert rel["row"].sum(1).tolist() == [8] * 81 and rel["box"].sum(1).tolist() == [8] * 81
    assert rel["peers"].sum(1).tolist() == [20] * 81
    row = rel["row"].astype(float) + np.eye(81)  # uniform over the row, self included
    row /= row.sum(1, keepdims=True)
    m = pattern_masses(row[None], 0)
    assert m["row"][0] == pytest.approx(1.0) and m["col"][0] == pytest.approx(0.0)
    assert m["self"][0] == pytest.approx(1 / 9) and m["box"][0] == pytest.approx(2 / 8)
    raw = pattern_masses(row[None], 0, exclude_self=False)
    assert raw["row"][0] == pytest.approx(8 / 9)
    # a prefix of 2 positions: its mass is reported apart
    p = np.zeros((83, 83))
    p[:, 0] = 0.5
    p[:, 2:] = 0.5 / 81
    assert pattern_masses(p, 2)["prefix"] == pytest.approx(0.5 / (1 - 0.5 / 81))
    with pytest.raises(TraceError, match="not a Sudoku grid"):
        sudoku_relations(80)


def test_errors_without_attention():
    m = _hrm(mlp_t=True, pos_encodings="learned")
    with pytest.raises(TraceError, match="no attention layers"):
        trace(m, _inputs(1), attention=True)
    with pytest.raises(TraceError, match="attention=True"):
        trace(_hrm(), _inputs(1), states=["pattern.layer0"])
    tr = trace(_hrm(), _inputs(1), states="all")
    with pytest.raises(TraceError, match="no attention patterns"):
        sudoku_attention_mass(tr)


def test_trace_to_disk_chunks_and_cli(tmp_path, capsys):
    from interp.cli import main as interp_main
    from interp.tracing.store import load_trace
    from interp.tracing.stream import trace_to_disk
    from models.checkpoint import save_checkpoint

    m = _planted_trm()
    x = _inputs(5)
    out = trace_to_disk(m, x, tmp_path / "t", chunk_size=2, batch_size=2, states=["z", "pattern"],
                        state_puzzles=[0, 3], attention=True, progress=False)
    tr = load_trace(out)
    mem = trace(m, x, states=["z", "pattern"], state_puzzles=[0, 3], attention=True)
    assert tr.stored_states == mem.stored_states == ["z", "pattern.layer0"]
    np.testing.assert_array_equal(tr.states("pattern.layer0"), mem.states("pattern.layer0"))
    assert not any(n.endswith("hook_pattern") for n in m.hook_names())

    ckpt = tmp_path / "ckpt"
    save_checkpoint(ckpt, m, extra={"task": {"name": "sudoku"}})
    puzzle = "1" + "." * 80
    t2 = tmp_path / "cli"
    rc = interp_main(["trace", "--ckpt", str(ckpt), "--puzzle", puzzle, "--attention", "--out", str(t2)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    text = cap.out
    assert "attention: 1 layer(s) x 2 heads" in text and "head 0" in text and "row mass" in text
    assert (t2 / "attention_mass.csv").exists() and (t2 / "attention_heads.png").stat().st_size > 1000
    assert "pattern.layer0" in load_trace(t2).stored_states


def test_hrm_text_patterns():
    transformers = pytest.importorskip("transformers")
    from models.hrm_text import wrap_hrm_text

    torch.manual_seed(0)
    c = transformers.HrmTextConfig(vocab_size=50, hidden_size=32, num_attention_heads=2, num_layers_per_stack=2,
                                   H_cycles=2, L_cycles=2, max_position_embeddings=16, intermediate_size=64)
    hf = transformers.HrmTextForCausalLM(c).eval()
    m = wrap_hrm_text(hf)
    x = torch.randint(0, 50, (2, 10))
    names, impl, out0 = m.hook_names(), hf.config._attn_implementation, m(x)
    tr = trace(m, x, states="all", attention=True)
    assert m.hook_names() == names and hf.config._attn_implementation == impl and torch.equal(m(x), out0)
    p = tr.states("pattern.layer1")
    assert p.shape == (2, 6, 2, 10, 10) and not np.isnan(p).any()
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(p, 1) == 0)  # causal
    # the same weights as transformers' own eager attention, for the first L call
    hf.set_attn_implementation("eager")
    try:
        got = {}

        def grab(mod, args, out):
            got.setdefault("w", out[1].detach().clone())

        h = hf.model.L_module.layers[1].self_attn.register_forward_hook(grab)
        with torch.no_grad():
            hf(input_ids=x, use_cache=False)
        h.remove()
    finally:
        hf.set_attn_implementation(impl)
    np.testing.assert_allclose(p[:, 0], got["w"].numpy(), atol=1e-6)
