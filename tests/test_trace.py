"""The tracer records exactly what the model computes, step by step, for every family."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interp import TraceError, build_schema, trace
from models import TransformerConfig, UniTFConfig, build_model
from helpers.tiny_models import tiny_hrm, tiny_hrm_lm, tiny_trm


def _hrm(**kw):
    return tiny_hrm(**{"H_cycles": 2, "L_cycles": 2, "halt_max_steps": 2, **kw}).eval()


def _trm(**kw):
    return tiny_trm(**{"vocab_size": 6, "seq_len": 16, "L_cycles": 3, **kw}).eval()


def _puzzles(n=5, L=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(2, 6, (n, L), generator=g)
    blanks = torch.rand(n, L, generator=g) < 0.5
    inputs = torch.where(blanks, torch.ones_like(labels), labels)
    return inputs, labels


def _manual_hrm(model, x, n_segments):
    """HRM's recurrence written out with the modules (no hooks, no tracer): list of (state, value) per step."""
    rot = model.rotary_tables()
    emb = model.embed(x)
    st = model.init_states(x.shape[0])
    z_H, z_L = st["z_H"], st["z_L"]
    out = []
    with torch.no_grad():
        for _ in range(n_segments):
            for _i in range(model.cfg.H_cycles):
                for _j in range(model.cfg.L_cycles):
                    z_L = model.L_level(z_L, z_H + emb, rot)
                    out.append(("z_L", z_H, z_L))
                z_H = model.H_level(z_H, z_L, rot)
                out.append(("z_H", z_H, z_L))
    return out


def test_hrm_step_table_layout():
    model = _hrm(H_cycles=2, L_cycles=3, halt_max_steps=3)
    s = build_schema(model).table()
    assert len(s) == 3 * 2 * (3 + 1)
    assert list(s["updated"][:4]) == ["z_L", "z_L", "z_L", "z_H"]
    assert list(s["inner"][:4]) == [0, 1, 2, -1] and list(s["outer"][:8]) == [0] * 4 + [1] * 4
    assert s["is_slow"].sum() == 3 * 2 and (s.loc[s["is_slow"], "updated"] == "z_H").all()
    # the step after every H update (including across segments) is flagged
    assert list(np.flatnonzero(s["after_slow"])) == [k + 1 for k in np.flatnonzero(s["is_slow"])[:-1]]
    assert list(np.flatnonzero(s["segment_end"])) == [7, 15, 23]
    assert list(s["segment"]) == sorted(s["segment"])


def test_hrm_trace_equals_manual_recurrence_and_hooks():
    model = _hrm()
    x, y = _puzzles()
    tr = trace(model, x, y, batch_size=2)
    manual = _manual_hrm(model, x, 2)
    assert tr.n_steps == len(manual) == 12
    for k, (upd, z_H, z_L) in enumerate(manual):
        assert tr.steps["updated"][k] == upd
        np.testing.assert_allclose(tr.states("z_H")[:, k], z_H.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(tr.states("z_L")[:, k], z_L.numpy(), rtol=1e-5, atol=1e-5)
    # and equal to what the hook points see in an ordinary forward
    _, cache = model.run_with_cache(x)
    for k, hooks in enumerate(tr.steps["hooks"]):
        name = hooks.split("|")[0]
        state = name.rsplit("hook_", 1)[1]
        np.testing.assert_array_equal(tr.states(state)[:, k], cache[name].numpy())
    # initial states are the model's buffers broadcast
    np.testing.assert_array_equal(tr.initial_states("z_H")[0, 3], model.H_init.numpy())


def test_hrm_decoded_metrics_match_independent_computation():
    model = _hrm()
    x, y = _puzzles(n=6)
    y[0] = x[0].clamp_min(2)  # a puzzle whose answer equals the non-blank input in part
    tr = trace(model, x, y)
    manual = _manual_hrm(model, x, 2)
    blanks = x == 1
    for k, (_, z_H, z_L) in enumerate(manual):
        logits = model.decode(z_H).detach()
        pred = logits.argmax(-1)
        np.testing.assert_array_equal(tr.predictions[:, k], pred.numpy())
        ce = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)
        np.testing.assert_allclose(tr.metric("ce")[:, k], ce.numpy(), rtol=1e-5)
        acc = ((pred == y) & blanks).sum(1).float() / blanks.sum(1)
        np.testing.assert_allclose(tr.metric("token_acc")[:, k], acc.numpy(), rtol=1e-6)
        np.testing.assert_array_equal(tr.metric("exact")[:, k], (pred == y).all(1).numpy())
        np.testing.assert_array_equal(tr.latent_predictions("z_L")[:, k], model.decode(z_L).argmax(-1).numpy())
        conf = torch.softmax(logits, -1).amax(-1).numpy()
        np.testing.assert_allclose(tr.confidences()[:, k], conf, atol=1e-3)  # stored as float16
        q = model.halt_logits(z_H)[0].detach().numpy()
        np.testing.assert_allclose(tr.metric("q_halt")[:, k], q, rtol=1e-6)
    # relative change and norm of the updated state
    d = (manual[1][2] - manual[0][2]).flatten(1).norm(dim=1) / manual[0][2].flatten(1).norm(dim=1)
    np.testing.assert_allclose(tr.metric("delta.z_L")[:, 1], d.numpy(), rtol=1e-5)
    assert (tr.metric("delta.z_H")[:, 1] == 0).all()  # z_H untouched at an L step
    np.testing.assert_allclose(tr.metric("norm.z_H")[:, 2], manual[2][1].norm(dim=-1).mean(-1).numpy(), rtol=1e-5)
    # the model's output (forward) is the last step's decoded answer, the segment's q the last step's q
    with torch.no_grad():
        out = model(x)
    np.testing.assert_array_equal(tr.final_predictions, out.argmax(-1).numpy())
    np.testing.assert_allclose(tr.segment_metric("q_halt")[:, -1], tr.metric("q_halt")[:, -1], rtol=1e-6)


def test_trm_trace_equals_manual_recurrence():
    model = _trm(mlp_t=True)
    x, y = _puzzles(n=3)
    tr = trace(model, x, y)
    emb = model.embed(x)
    st = model.init_states(3)
    yv, z = st["y"], st["z"]
    k = 0
    with torch.no_grad():
        for _s in range(2):
            for _i in range(model.cfg.H_cycles):
                for _j in range(model.cfg.L_cycles):
                    z = model.L_level(z, yv + emb, None)
                    assert tr.steps["updated"][k] == "z"
                    np.testing.assert_allclose(tr.states("z")[:, k], z.numpy(), rtol=1e-5, atol=1e-5)
                    k += 1
                yv = model.L_level(yv, z, None)
                assert tr.steps["updated"][k] == "y" and tr.steps["is_slow"][k]
                np.testing.assert_allclose(tr.states("y")[:, k], yv.numpy(), rtol=1e-5, atol=1e-5)
                k += 1
    assert k == tr.n_steps
    assert tr.answer_state == "y" and tr.slow_state == "y" and tr.fast_state == "z"


@pytest.mark.parametrize("family", ["unitf", "transformer"])
def test_baselines_trace_matches_hooks(family):
    if family == "unitf":
        model = build_model(UniTFConfig(vocab_size=6, seq_len=16, hidden_size=32, num_heads=2, num_layers=1, depth=3,
                                        halt_max_steps=2, expansion=2.0))
    else:
        model = build_model(TransformerConfig(vocab_size=6, seq_len=16, hidden_size=32, num_heads=2, num_layers=3,
                                              expansion=2.0))
    x, y = _puzzles(n=3)
    tr = trace(model, x, y)
    _, cache = model.run_with_cache(x)
    state = tr.state_names[0]
    assert tr.slow_state is None and len(tr.state_names) == 1
    assert tr.n_steps == (6 if family == "unitf" else 3)
    for k, h in enumerate(tr.steps["hooks"]):
        np.testing.assert_array_equal(tr.states(state)[:, k], cache[h].numpy())


def test_hrm_lm_trace_matches_hooks_and_pass_outputs():
    model = tiny_hrm_lm(slow_period=2, slow_updates=2, passes=2).eval()
    tokens = torch.randint(0, 256, (3, 12), generator=torch.Generator().manual_seed(1))
    tr = trace(model, tokens)
    _, cache = model.run_with_cache(tokens)
    assert tr.n_steps == 2 * 4 and tr.meta["n_segments"] == 2
    fires = [model.slow_fires(m) for m in range(4)] * 2
    assert list(tr.steps["is_slow"]) == fires
    assert list(tr.steps["after_slow"]) == [False] + fires[:-1]
    for k in range(tr.n_steps):
        p, m = int(tr.steps["segment"][k]), int(tr.steps["step_in_segment"][k])
        np.testing.assert_array_equal(tr.states("fast")[:, k], cache[f"pass{p}.step{m}.hook_fast"].numpy())
        g = cache[f"pass{p}.step{m}.hook_gate_fast"]
        np.testing.assert_allclose(tr.metric("mean.gate_fast")[:, k], g.flatten(1).mean(1).numpy(), rtol=1e-5)
        np.testing.assert_allclose(tr.metric("std.gate_fast")[:, k], g.flatten(1).std(1, unbiased=False).numpy(),
                                   rtol=1e-4)
        if fires[k]:
            np.testing.assert_array_equal(tr.states("slow")[:, k], cache[f"pass{p}.step{m}.hook_slow"].numpy())
        else:
            assert np.isnan(tr.metric("mean.gate_slow")[:, k]).all()
    # per-step loss through the logit lens, next-token labels by default
    lens = model.decode(torch.from_numpy(tr.states("fast")[:, 3]))
    ce = F.cross_entropy(lens[:, :-1].reshape(-1, 256), tokens[:, 1:].reshape(-1), reduction="none").view(3, -1).mean(1)
    np.testing.assert_allclose(tr.metric("ce")[:, 3], ce.detach().numpy(), rtol=1e-5)
    # per-pass fused output and fusion weights
    outs = model.forward_passes(tokens)
    for p, o in enumerate(outs):
        ce_p = F.cross_entropy(o.logits[:, :-1].reshape(-1, 256), tokens[:, 1:].reshape(-1), reduction="none")
        np.testing.assert_allclose(tr.segment_metric("ce")[:, p], ce_p.view(3, -1).mean(1).detach().numpy(), rtol=1e-5)
        np.testing.assert_allclose(tr.segment_metric("fusion")[:, p], o.fusion_weights.mean(1).detach().numpy(), rtol=1e-5)
        np.testing.assert_array_equal(tr.segment_metric("pred")[:, p], o.logits.argmax(-1).numpy())


def test_states_subset_summary_only_and_batching():
    model = _hrm()
    x, y = _puzzles(n=7)
    full = trace(model, x, y, batch_size=64)
    part = trace(model, x, y, batch_size=3, states=["slow"], state_puzzles=[1, 5])
    summ = trace(model, x, y, batch_size=2, states="summary")
    for k, v in full.arrays.items():
        np.testing.assert_array_equal(part.arrays[k], v, err_msg=k)
        np.testing.assert_array_equal(summ.arrays[k], v, err_msg=k)
    assert part.stored_states == ["z_H"] and list(part.state_index) == [1, 5]
    np.testing.assert_array_equal(part.states("z_H"), full.states("z_H", [1, 5]))
    np.testing.assert_array_equal(part.states("z_H", [5]), full.states("z_H", [5]))
    with pytest.raises(TraceError, match="not stored"):
        part.states("z_L")
    with pytest.raises(TraceError, match="no full states stored for puzzle"):
        part.states("z_H", [0])
    with pytest.raises(TraceError, match="not stored"):
        summ.states("z_H")
    sub = full.select([6, 2])
    np.testing.assert_array_equal(sub.predictions, full.predictions[[6, 2]])
    np.testing.assert_array_equal(sub.states("z_L"), full.states("z_L", [6, 2]))


def test_summary_tables():
    model = _hrm()
    x, y = _puzzles(n=4)
    tr = trace(model, x, y, states="summary")
    long = tr.summary("puzzle_step")
    assert len(long) == 4 * tr.n_steps
    np.testing.assert_allclose(long["ce"].to_numpy().reshape(4, -1), tr.metric("ce"))
    per_step = tr.summary("step")
    np.testing.assert_allclose(per_step["token_acc"], tr.metric("token_acc").mean(0), rtol=1e-6)
    per_puzzle = tr.summary("puzzle")
    assert list(per_puzzle.columns[:2]) == ["puzzle", "puzzle_index"] and "critical_step" in per_puzzle
    with pytest.raises(TraceError, match="level"):
        tr.summary("nope")


def test_custom_init_states_and_interventions_are_recorded():
    model = _hrm()
    x, y = _puzzles(n=2)
    init = {"z_H": torch.zeros(2, 16, 32), "z_L": torch.ones(2, 16, 32)}
    tr = trace(model, x, y, init_states=init)
    assert tr.meta["intervened"]
    np.testing.assert_array_equal(tr.initial_states("z_L"), np.ones((2, 16, 32), np.float32))
    with torch.no_grad():
        z_L = model.L_level(init["z_L"], init["z_H"] + model.embed(x), model.rotary_tables())
    np.testing.assert_allclose(tr.states("z_L")[:, 0], z_L.numpy(), rtol=1e-5, atol=1e-6)
    zeroed = trace(model, x, y, fwd_hooks=[("seg0.h0.l0.hook_z_L", lambda t, hook: torch.zeros_like(t))])
    assert np.abs(zeroed.states("z_L")[:, 0]).max() == 0  # the tracer records the replaced value


def test_bad_inputs_give_one_line_errors():
    model = _hrm()
    x, y = _puzzles(n=2)
    cases = [
        (lambda: trace(model, x[:, :10]), "16 tokens"),
        (lambda: trace(model, x.float()), "integer"),
        (lambda: trace(model, x + 10), r"\[0, 6\)"),
        (lambda: trace(model, x, y[:, :5]), "shape"),
        (lambda: trace(model, x, y + 10), "label ids"),
        (lambda: trace(model, x, n_segments=0), "n_segments"),
        (lambda: trace(model, x, states=["nope"]), "unknown state"),
        (lambda: trace(model, x[:0]), "no puzzles"),
        (lambda: trace(model, x, batch_size=0), "batch_size"),
    ]
    for fn, msg in cases:
        with pytest.raises(ValueError, match=msg) as e:
            fn()
        assert "\n" not in str(e.value)


def test_more_segments_than_trained_and_no_gradients():
    model = _hrm(halt_max_steps=1)
    x, y = _puzzles(n=2)
    tr = trace(model, x, y, n_segments=3)
    assert tr.meta["n_segments"] == 3 and tr.n_steps == 3 * 6
    assert all(p.grad is None for p in model.parameters())


def test_import_interp_stays_light():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, interp, interp.cli, tasks.puzzles\n"
        "assert 'torch' not in sys.modules, 'interp / interp.cli import torch'\n"
        "import interp.tracing.tracer, interp.tracing.store, interp.analyses, interp.interventions.ablation, interp.interventions.fixed_point\n"
        "heavy = [m for m in ('transformer_lens', 'nnsight', 'umap', 'sklearn', 'plotly') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr


def test_logit_lens_metrics_equal_softmax_and_cross_entropy_on_extreme_logits():
    """The fused max/log-sum-exp lens gives softmax's top probability and F.cross_entropy, also for huge logits."""
    from interp.tracing.metrics import decoded_metrics, eval_mask

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 7, 11, generator=g) * torch.tensor([1.0, 30.0, 1e3, 0.0, 5.0])[:, None, None]
    logits[0, 0, 4] = logits[0, 0, 2]  # a tie: the first maximal index wins, as argmax
    labels = torch.randint(0, 11, (5, 7), generator=g)
    labels[1, 3] = -100
    inputs = torch.where(torch.rand(5, 7, generator=g) < 0.5, labels.clamp_min(0), torch.ones_like(labels))
    mask = eval_mask(inputs, labels, lm=False)
    m = decoded_metrics(logits, labels, mask, confidence=True)
    np.testing.assert_array_equal(m["pred"].numpy(), logits.argmax(-1).numpy())
    np.testing.assert_allclose(m["conf"].numpy(), torch.softmax(logits.double(), -1).amax(-1).numpy(), rtol=1e-6)
    ce_tok = F.cross_entropy(logits.double().transpose(1, 2), labels, reduction="none", ignore_index=-100)
    valid = labels != -100
    want = (ce_tok * valid).sum(1) / valid.sum(1)
    np.testing.assert_allclose(m["ce"].numpy(), want.numpy(), rtol=1e-5, atol=1e-4)
    assert np.isfinite(m["ce"].numpy()).all() and np.isfinite(m["conf"].numpy()).all()
    assert set(decoded_metrics(logits, None, None)) == {"pred"}


@pytest.mark.parametrize("make", [_hrm, _trm])
def test_last_step_lens_reuses_the_model_logits_exactly_and_not_under_interventions(make, monkeypatch):
    """Each segment's last step takes the answer lens from the model's own logits: same numbers, one decode fewer."""
    model = make()
    x, y = _puzzles(n=4)
    calls = []
    real = model.decode
    monkeypatch.setattr(model, "decode", lambda s: calls.append(1) or real(s))
    reused = trace(model, x, y)
    n_reused = len(calls)
    calls.clear()
    plain = trace(model, x, y, fwd_hooks=[("seg0.hook_x", lambda t, hook: None)])  # any hook turns reuse off
    assert n_reused == len(calls) - model.cfg.halt_max_steps  # one decode saved per segment
    for k in reused.arrays:
        if k.startswith(("pred/", "conf/", "step/", "seg/")):
            np.testing.assert_array_equal(reused.arrays[k], plain.arrays[k], err_msg=k)
    # a patched logits hook changes the model's output, not the lens of the answer state
    patched = trace(model, x, y, fwd_hooks=[("seg1.hook_logits", lambda t, hook: -t)])
    np.testing.assert_array_equal(patched.predictions, plain.predictions)  # reused, the last step would be argmax(-t)


def test_model_sha256_is_the_sha256_of_names_dtypes_shapes_and_piece_digests_in_key_order(monkeypatch):
    import hashlib

    from interp.tracing import model_hash

    model = _hrm()
    model.H_init.data = model.H_init.data.to(torch.bfloat16)  # a bf16 buffer is hashed by its own bytes
    monkeypatch.setattr(model_hash, "HASH_PIECE", 1000)  # several pieces per tensor, hashed on threads
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(f"{k}|{v.dtype}|{list(v.shape)}|".encode())
        raw = v.contiguous().view(torch.uint8).numpy().tobytes()
        for a in range(0, max(len(raw), 1), 1000):
            h.update(hashlib.sha256(raw[a:a + 1000]).digest())
    assert model_hash.model_sha256(model) == h.hexdigest()
    with torch.no_grad():
        model.lm_head.weight.data[0, 0] += 1.0  # a weight edit through .data changes the digest (no caching)
    assert model_hash.model_sha256(model) != h.hexdigest()
