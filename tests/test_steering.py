"""Steering and feature interventions: planted directions have the predicted effect, feature attribution equals
exact ablation where first order is exact, the experiment's table pairs every setting with a same-norm control,
and bad input is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.causal.metrics import answer_alphabet, metric_fn
from interp.causal.runner import SegmentRunner
from interp.steering.directions import Direction, DirectionError, mean_difference, random_like, sae_feature
from interp.steering.experiment import COLUMNS, SteerSettings, steering_experiment
from interp.steering.feature_attribution import feature_attribution, sae_dictionary
from interp.steering.intervene import clamp_cells_hooks, direction_hooks, position_mask
from interp.steering.run import answer_hooks, steered_run, target_mask
from probes.sae import SparseAutoencoder
from tests.helpers.tiny_models import tiny_hrm_lm, tiny_trm

BLANK = 1


def _puzzles(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    x = g.integers(2, 11, size=(n, 81))
    x[g.random((n, 81)) < 0.6] = BLANK
    y = g.integers(2, 11, size=(n, 81))
    y[x != BLANK] = x[x != BLANK]
    return x, y


def _run(model, x, y, hooks=()):
    runner = SegmentRunner(model)
    xb, yb = torch.as_tensor(x), torch.as_tensor(y)
    tg = torch.as_tensor(target_mask(x, y))
    return runner, steered_run(runner, runner.prepare(xb), yb, tg, hooks)


def test_adding_the_head_row_of_digit_d_flips_steered_cells_to_d_from_that_step_on():
    model = tiny_trm().eval()
    x, y = _puzzles(3)
    runner, base = _run(model, x, y)
    d = 7  # token of digit 6
    v = model.lm_head.weight[d].detach() - model.lm_head.weight.detach().mean(0)
    hooks = answer_hooks(runner)
    k = len(hooks) // 2
    cells = np.zeros((3, 81), dtype=bool)
    cells[:, :40] = True
    direction = Direction("head[d]", v, "y").scaled_to(200.0)
    _, out = _run(model, x, y, direction_hooks(direction, hooks[k:], "add", 1.0, position_mask(cells)))
    assert (out.answers[:, k:][:, :, cells[0]] == d).all()  # every later step, every steered cell: digit d
    np.testing.assert_array_equal(out.answers[:, :k], base.answers[:, :k])  # earlier steps untouched
    assert not (base.answers[:, k:][:, :, cells[0]] == d).all()
    # a random direction of the same norm does not write d everywhere
    _, ctrl = _run(model, x, y, direction_hooks(random_like(direction, 1), hooks[k:], "add", 1.0, position_mask(cells)))
    assert (ctrl.answers[:, k:][:, :, cells[0]] == d).mean() < 0.5


def test_ablating_the_feature_that_carries_the_answer_breaks_it():
    model = tiny_trm().eval()
    x, y = _puzzles(2, seed=1)
    runner, _ = _run(model, x, y)
    last = answer_hooks(runner)[-1:]
    d = 5
    w = model.lm_head.weight[d].detach()
    u = w / w.norm()
    sae = SparseAutoencoder(32, 4)  # feature 2 reads and writes the head row of token d
    with torch.no_grad():
        sae.W_dec[2] = u
        sae.W_enc[:, 2] = u
    feature = sae_feature(sae, 2, "y")
    plant = direction_hooks(Direction("u", u * 100, "y"), last, "add")
    _, planted = _run(model, x, y, plant)
    assert (planted.answers[:, -1] == d).all()  # the planted feature carries the answer: d everywhere
    _, ablated = _run(model, x, y, plant + direction_hooks(feature, last, "ablate"))
    assert (ablated.answers[:, -1] == d).mean() < 0.2  # its logit is exactly 0 after ablation
    # clamping the feature's activation to a large value writes d again
    _, clamped = _run(model, x, y, direction_hooks(feature, last, "clamp", scale=100.0))
    assert (clamped.answers[:, -1] == d).all()


def test_feature_attribution_equals_exact_ablation_at_the_last_step():
    torch.manual_seed(0)
    model = tiny_trm().double().eval()
    x, y = _puzzles(2, seed=2)
    sae = SparseAutoencoder(32, 16, seed=3).double()
    encode, decoder = sae_dictionary(sae)
    fa = feature_attribution(model, x, y, lambda t: encode(t.double()), decoder.double(), state="y")
    runner = SegmentRunner(model)
    last = answer_hooks(runner)[-1]
    assert fa.hooks[-1] == last and fa.scores.shape[:3] == (2, len(answer_hooks(runner)), 81)
    xb, yb = torch.as_tensor(x), torch.as_tensor(y)
    batch = runner.prepare(xb)
    with torch.no_grad():
        logits, _ = runner.run(batch, runner.start_states(batch))
    tg = torch.as_tensor(target_mask(x, y))
    metric = metric_fn("logit_diff", yb, tg, answer_alphabet(yb, 11), source_logits=logits)
    m0 = metric(logits).numpy()
    acts = fa.activations[:, -1]
    checked = 0
    for b, p, f in zip(*np.nonzero(acts > 0.05)):
        if checked >= 6:
            break
        mask = torch.zeros(2, 81, dtype=torch.bool)
        mask[b, p] = True
        with torch.no_grad(), model.hooks(direction_hooks(sae_feature(sae, int(f), "y"), [last], "ablate",
                                                          positions=position_mask(mask))):
            lg, _ = runner.run(batch, runner.start_states(batch))
        exact = m0[b] - metric(lg).numpy()[b]
        np.testing.assert_allclose(fa.scores[b, -1, p, f], exact, rtol=1e-5, atol=1e-8)
        checked += 1
    assert checked >= 3
    frame = fa.frame()
    assert {"step", "feature", "position", "score", "activation"} <= set(frame.columns)
    assert len(frame) == int((fa.activations > 0).sum())


def test_clamping_decided_cells_holds_them_and_the_control_picks_as_many_random_cells():
    model = tiny_trm().eval()
    x, y = _puzzles(2, seed=4)
    runner, base = _run(model, x, y)
    hooks = answer_hooks(runner)
    allowed = torch.as_tensor(x == BLANK)
    rec, rec_c = {}, {}
    _, held = _run(model, x, y, clamp_cells_hooks(hooks[2], hooks[2:], model.decode, allowed, threshold=0.0 + 1e-6,
                                                  record=rec))
    cells = rec["cells"].numpy()
    assert cells.sum() == allowed.sum()  # threshold ~0: every blank cell is "decided"
    for t in range(2, len(hooks)):  # held cells keep the answer they had at the start step
        np.testing.assert_array_equal(held.answers[:, t][cells], base.answers[:, 2][cells])
    _, _ = _run(model, x, y, clamp_cells_hooks(hooks[2], hooks[2:], model.decode, allowed, threshold=0.5,
                                               control_seed=3, record=rec_c))
    _, _ = _run(model, x, y, clamp_cells_hooks(hooks[2], hooks[2:], model.decode, allowed, threshold=0.5, record=rec))
    np.testing.assert_array_equal(rec_c["cells"].sum(1), rec["cells"].sum(1))
    assert not (rec_c["cells"].numpy() & ~allowed.numpy()).any()


def _self_labelled(model, n: int, seed: int = 0):
    """Puzzles whose labels are the model's own final answer for even rows ("solved") and random for odd rows."""
    x, y = _puzzles(n, seed)
    _, base = _run(model, x, y)
    final = base.answers[:, -1].astype(np.int64)
    y = y.copy()
    y[::2] = final[::2]
    return x, y


@pytest.mark.slow  # about 35 s on a loaded 2-core machine (the SAE and the probe are fitted twice)
def test_experiment_table_pairs_each_direction_with_a_same_norm_control():
    model = tiny_trm(halt_max_steps=4).eval()
    x, y = _self_labelled(model, 8)
    s = SteerSettings(scales=(0.5, 2.0), sae_steps=20, sae_features=8, on="all")
    res = steering_experiment(model, x, y, s)
    t = res.table
    assert list(t.columns) == COLUMNS
    info = res.info
    assert info["n_fit"] == 4 and info["fit_solved"] == 2 and info["n_evaluated"] == 4
    steps = sorted(set(t["step"]))
    assert len(steps) == 2
    # per step: 3 directions x 2 scales + clamp, each with its control
    assert len(t) == 2 * (3 * 2 + 1) * 2 and (t["control"] == 1).sum() == len(t) // 2
    steered, control = t[t["control"] == 0].reset_index(drop=True), t[t["control"] == 1].reset_index(drop=True)
    assert set(steered["kind"]) == {"mean_diff", "probe", "sae", "clamp"}
    assert (control["direction"].str.startswith("random")).all()
    np.testing.assert_allclose(steered["norm"].dropna(), control["norm"].dropna(), rtol=1e-5)
    np.testing.assert_allclose(steered["cells_steered"], control["cells_steered"])  # equal budget
    assert (t["n"] == 4).all() and (t["solved_before"] == 2).all()
    assert ((t["after_lo"] <= t["rate_after"]) & (t["rate_after"] <= t["after_hi"])).all()
    assert len(res.puzzles) == len(t) * 4
    # the directions were fitted on puzzles disjoint from the evaluated ones
    assert set(res.puzzles["puzzle"]) == set(range(4, 8))


def test_experiment_runs_on_a_language_model():
    torch.manual_seed(0)
    model = tiny_hrm_lm(passes=4).eval()
    g = np.random.default_rng(0)
    x = g.integers(0, 256, size=(8, 12))
    runner = SegmentRunner(model)
    with torch.no_grad():
        batch = runner.prepare(torch.as_tensor(x))
        logits, _ = runner.run(batch, runner.start_states(batch))
    y = np.full_like(x, -100)
    y[:, -1] = g.integers(0, 256, size=8)
    y[::2, -1] = logits[::2, -1].argmax(-1).numpy()  # even rows "solved": the greedy next token is the label
    res = steering_experiment(model, x, y, SteerSettings(directions=("mean_diff", "clamp"), on="all", scales=(1.0,)))
    assert res.info["cells"] == "all" and res.info["state"] == "fast"
    assert len(res.table) == 2 * 2 * 2 and (res.table["solved_before"] == 2).all()


def test_mean_difference_and_random_control():
    a = np.ones((4, 3))
    b = np.zeros((5, 3))
    d = mean_difference(a, b, "y")
    np.testing.assert_allclose(d.vector.numpy(), [1, 1, 1])
    r = random_like(d, 0)
    assert r.control and r.kind == "random" and abs(r.norm - d.norm) < 1e-5
    assert abs(float(r.vector @ d.vector)) < d.norm ** 2  # not the same direction
    s = d.scaled_to(2.0)
    assert abs(s.norm - 2.0) < 1e-6


@pytest.mark.parametrize("make, message", [
    (lambda: Direction("bad", torch.tensor([1.0, float("nan")]), "y"), "NaN"),
    (lambda: Direction("zero", torch.zeros(3), "y"), "zero"),
    (lambda: sae_feature(SparseAutoencoder(4, 3), 3, "y"), "unknown feature 3"),
    (lambda: direction_hooks(Direction("v", torch.ones(3), "y"), ["h"], "add", float("inf")), "finite"),
    (lambda: direction_hooks(Direction("v", torch.ones(3), "y"), ["h"], "shift"), "mode"),
])
def test_bad_directions_are_one_line(make, message):
    with pytest.raises(DirectionError, match=message) as e:
        make()
    assert "\n" not in str(e.value)


def test_a_direction_of_the_wrong_width_is_refused_at_the_hook():
    model = tiny_trm().eval()
    x, y = _puzzles(1)
    runner = SegmentRunner(model)
    with pytest.raises(DirectionError, match="width 5"):
        _run(model, x, y, direction_hooks(Direction("v", torch.ones(5), "y"), answer_hooks(runner)[-1:]))


def test_experiment_runs_on_hrm_text():
    transformers = pytest.importorskip("transformers")
    from models.hrm_text import wrap_hrm_text

    torch.manual_seed(0)
    cfg = transformers.HrmTextConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=2, head_dim=16, H_cycles=2, L_cycles=2,
                                     max_position_embeddings=32)
    model = wrap_hrm_text(transformers.HrmTextForCausalLM(cfg).eval())
    g = np.random.default_rng(1)
    x = g.integers(0, 40, size=(8, 10))
    runner = SegmentRunner(model)
    with torch.no_grad():
        batch = runner.prepare(torch.as_tensor(x))
        logits, _ = runner.run(batch, runner.start_states(batch))
    y = np.full_like(x, -100)
    y[:, -1] = (logits[:, -1].argmax(-1).numpy() + 1) % 40
    y[::2, -1] = logits[::2, -1].argmax(-1).numpy()
    res = steering_experiment(model, x, y, SteerSettings(directions=("mean_diff", "clamp"), on="all", scales=(1.0,)))
    assert res.info["state"] == "z_H" and res.info["unsteered_solved"] == 4
    assert len(res.table) == len(res.info["steps"]) * 2 * 2 and (res.table["solved_before"] == 2).all()


def test_a_zero_push_reproduces_the_unsteered_run_and_ablation_uses_no_scale():
    model = tiny_trm(halt_max_steps=3).eval()
    x, y = _self_labelled(model, 4)
    zero = Direction("user", torch.ones(32), "y")
    res = steering_experiment(model, x, y, SteerSettings(directions=("user",), user=zero, scales=(0.0,), on="all",
                                                         fit_fraction=0.5))
    t = res.table
    steered = t[t["control"] == 0]
    assert (steered["solved_after"] == steered["solved_before"]).all() and (steered["cells_changed"] == 0).all()
    np.testing.assert_allclose(steered["metric_after"], steered["metric_before"], rtol=1e-5)
    assert (steered["critical_shift"].dropna() == 0).all() and steered["critical_shift"].notna().any()
    res = steering_experiment(model, x, y, SteerSettings(directions=("user",), user=zero, mode="ablate", on="all",
                                                         controls=3))
    assert res.table["scale"].isna().all() and (res.table["mode"] == "ablate").all()
    assert len(res.table) == 4 * len(res.info["steps"]) and res.table["control"].sum() == 3 * len(res.info["steps"])
    assert res.table["direction"].nunique() == 4  # three distinct random controls


def _y_hooks(model) -> list[str]:
    return [h for h in model.hook_names() if h.endswith(".hook_y")]


def test_a_saelens_folder_is_bound_to_its_model_hook_state_and_width(tmp_path):
    from interp.tracing.model_hash import model_sha256
    from probes.sae_files import DictionaryError, load_for_model, save_sae

    model = tiny_trm().eval()
    runner = SegmentRunner(model)
    hooks = _y_hooks(model)
    sae = SparseAutoencoder(32, 8, seed=2)
    sha = model_sha256(model)
    folder = save_sae(sae, tmp_path / "sae", {"hook_names": hooks, "state": "y", "model_sha256": sha})
    back, cfg, matched = load_for_model(folder, 32, hooks, sha, "y")
    t = torch.randn(5, 32)
    torch.testing.assert_close(back.encode(t), sae.encode(t), rtol=1e-4, atol=1e-5)
    assert matched == list(range(len(hooks))) and answer_hooks(runner)[0] in hooks
    other = tiny_trm()
    with torch.no_grad():
        other.lm_head.weight.add_(1.0)
    with pytest.raises(DictionaryError, match="another model"):
        load_for_model(folder, 32, hooks, model_sha256(other), "y")
    with pytest.raises(DictionaryError, match="state 'y'"):
        load_for_model(folder, 32, hooks, sha, "z")
    with pytest.raises(DictionaryError, match="width"):
        load_for_model(folder, 64, hooks, sha, "y")
    elsewhere = save_sae(sae, tmp_path / "sae2", {"hook_names": ["seg0.h0.hook_z_H"], "state": "y"})
    with pytest.raises(DictionaryError, match="hook_z_H"):
        load_for_model(elsewhere, 32, hooks, sha, "y")

def test_a_crosscoder_feature_is_its_decoder_row_at_a_step_slot():
    from interp.steering.directions import crosscoder_feature
    from probes.crosscoder import StepCrosscoder

    cc = StepCrosscoder(3, 32, 8, seed=5)
    with torch.no_grad():
        cc.scale.copy_(torch.tensor([1.0, 2.5, 0.5]))
    d = crosscoder_feature(cc, 4, 1, "y", "seg0.t1.hook_y")
    assert d.name == "crosscoder[4]@seg0.t1.hook_y" and d.kind == "sae"
    torch.testing.assert_close(d.vector, cc.W_dec[4, 1].detach() * 2.5)
    torch.testing.assert_close(d.vector / d.vector.norm(), cc.decoder_direction(4, 1))
    with pytest.raises(DirectionError, match="unknown feature 8"):
        crosscoder_feature(cc, 8, 0, "y")
    with pytest.raises(DirectionError, match="slot 3"):
        crosscoder_feature(cc, 0, 3, "y")
