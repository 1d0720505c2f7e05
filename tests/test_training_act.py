"""Deep supervision / ACT: carry reset semantics, halting, Q-learning targets and losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.registry import build_model
from training.act import (
    act_train_step,
    halting_decision,
    initial_carry,
    q_continue_target,
    reset_halted,
)
from training.cgar import hsw_row_weights
from training.losses import row_mean_loss, row_stats, token_cross_entropy

TINY = dict(vocab_size=6, seq_len=8, hidden_size=32, num_heads=2, expansion=2, halt_max_steps=4)


def _hrm():
    torch.manual_seed(0)
    m = build_model(dict(family="hrm", H_cycles=1, L_cycles=2, H_layers=1, L_layers=1, **TINY))
    with torch.no_grad():  # make the Q head non-trivial so targets and signals vary
        m.q_head.weight.normal_(0, 0.3)
        m.q_head.bias.zero_()
    return m


def _trm():
    torch.manual_seed(0)
    return build_model(dict(family="trm", H_cycles=2, L_cycles=2, num_layers=1, **TINY))


def _batch(B, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(2, 6, (B, 8), generator=g)
    return x, (x % 4) + 2, torch.zeros(B, dtype=torch.long)


def test_reset_halted_resets_only_halted_rows():
    model = _trm()
    carry = initial_carry(model, 4, torch.device("cpu"))
    x, y, p = _batch(4)
    carry = reset_halted(model, carry, x, y, p)  # all halted at start -> all loaded
    assert torch.equal(carry.inputs, x) and carry.halted.sum() == 0 and carry.steps.sum() == 0
    carry.states = {k: torch.randn_like(v) for k, v in carry.states.items()}
    carry.steps = torch.tensor([2, 3, 1, 4])
    carry.halted = torch.tensor([True, False, True, False])
    old = {k: v.clone() for k, v in carry.states.items()}
    nx, ny, npid = _batch(2, seed=1)
    new = reset_halted(model, carry, nx, ny, npid)
    init = model.init_states(4)
    for k in new.states:
        assert torch.equal(new.states[k][[0, 2]], init[k][[0, 2]])  # halted rows back to the init state
        assert torch.equal(new.states[k][[1, 3]], old[k][[1, 3]])  # the others keep theirs
    assert new.steps.tolist() == [0, 3, 0, 4]
    assert torch.equal(new.inputs[0], nx[0]) and torch.equal(new.inputs[2], nx[1])  # new puzzles in row order
    assert torch.equal(new.inputs[1], x[1]) and torch.equal(new.labels[3], y[3])
    assert not new.halted.any()
    with pytest.raises(ValueError, match="needs 2 new examples"):
        reset_halted(model, carry, nx[:1], ny[:1], npid[:1])


def test_q_continue_target_by_hand():
    nh, nc = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([2.0, -1.0, -3.0])
    t = q_continue_target(nh, nc, torch.tensor([False, True, False]))
    expected = torch.sigmoid(torch.tensor([2.0, 1.0, -2.0]))  # max, last step -> q_halt, max
    assert torch.allclose(t, expected)


def test_halting_decision_rules():
    steps = torch.tensor([1, 2, 4, 3])
    qh = torch.tensor([1.0, -1.0, -1.0, 0.5])
    qc = torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert halting_decision(steps, qh, qc, 4, "act_q", 0.0).tolist() == [True, False, True, False]
    assert halting_decision(steps, qh, qc, 4, "bce", 0.0).tolist() == [True, False, True, True]
    assert halting_decision(steps, qh, qc, 4, "none", 0.0).tolist() == [False, False, True, False]
    # with certain exploration every row needs >= 2 steps: step-1 rows never halt early
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        h = halting_decision(torch.ones(8, dtype=torch.long), torch.ones(8), torch.zeros(8), 4, "bce", 1.0, g)
        assert not h.any()
    # ... but the last step always halts
    assert halting_decision(torch.full((8,), 4), -torch.ones(8), torch.zeros(8), 4, "bce", 1.0, g).all()


def _counting(model):
    calls = []

    def seg(*a, **k):
        calls.append(torch.is_grad_enabled())
        return model.segment(*a, **k)

    return seg, calls


def test_hrm_q_learning_loss_and_targets_match_manual_computation():
    model = _hrm()
    x, y, p = _batch(6)
    carry = reset_halted(model, initial_carry(model, 6, torch.device("cpu")), x, y, p)
    carry.steps = torch.tensor([0, 0, 1, 2, 3, 3])  # some rows reach the last step (4) now
    seg, calls = _counting(model)
    res = act_train_step(model, carry, halting="act_q", segment_fn=seg, generator=torch.Generator().manual_seed(0))
    assert calls == [True, False]  # the target comes from a second, gradient-free segment
    res.loss.backward()
    g_auto = model.q_head.weight.grad.clone()

    # independent recomputation
    model.zero_grad()
    states, out = model.segment(carry.states, x, p)
    with torch.no_grad():
        _, nxt = model.segment(states, x, p)
    steps = carry.steps + 1
    last = steps >= 4
    target = torch.sigmoid(torch.where(last, nxt.q_halt, torch.maximum(nxt.q_halt, nxt.q_continue)))
    correct = row_stats(out.logits, y).exact.float()
    lm = row_mean_loss(token_cross_entropy(out.logits, y, "stablemax"), y)
    qh = F.binary_cross_entropy_with_logits(out.q_halt, correct, reduction="none")
    qc = F.binary_cross_entropy_with_logits(out.q_continue, target, reduction="none")
    manual = (lm + 0.5 * (qh + qc)).sum() / 6
    assert float(res.loss.detach()) == pytest.approx(float(manual.detach()), rel=1e-6)
    manual.backward()
    assert torch.allclose(g_auto, model.q_head.weight.grad, atol=1e-6)
    # the step counter advanced and rows at halt_max_steps halted
    assert res.carry.steps.tolist() == steps.tolist()
    assert res.carry.halted[last].all()


def test_trm_bce_halting_has_no_second_forward_and_no_continue_loss():
    model = _trm()
    x, y, p = _batch(4)
    carry = reset_halted(model, initial_carry(model, 4, torch.device("cpu")), x, y, p)
    seg, calls = _counting(model)
    res = act_train_step(model, carry, halting="bce", segment_fn=seg)
    assert calls == [True]
    assert float(res.metrics["q_continue_loss"]) == 0.0
    _, out = model.segment(carry.states, x, p)
    correct = row_stats(out.logits, y).exact.float()
    lm = row_mean_loss(token_cross_entropy(out.logits, y, "stablemax"), y)
    qh = F.binary_cross_entropy_with_logits(out.q_halt, correct, reduction="none")
    assert float(res.loss.detach()) == pytest.approx(float((lm + 0.5 * qh).sum().detach() / 4), rel=1e-6)
    # halting in training: q_halt > 0 (the initial bias -5 never halts before the last step)
    assert not res.carry.halted.any()


def test_carry_persists_across_steps_and_grad_stays_inside_the_segment():
    model = _trm()
    x, y, p = _batch(3)
    carry = reset_halted(model, initial_carry(model, 3, torch.device("cpu")), x, y, p)
    r1 = act_train_step(model, carry, halting="bce")
    assert all(not v.requires_grad for v in r1.carry.states.values())  # carry detached between segments
    r2 = act_train_step(model, r1.carry, halting="bce")
    assert r2.carry.steps.tolist() == [2, 2, 2]
    # continuing from the carried state differs from a fresh start
    fresh = act_train_step(model, carry, halting="bce")
    assert not torch.equal(r2.carry.states["y"], fresh.carry.states["y"])


def test_hsw_paper_weights_rows_by_their_step():
    model = _trm()
    x, y, p = _batch(4)
    carry = reset_halted(model, initial_carry(model, 4, torch.device("cpu")), x, y, p)
    carry.steps = torch.tensor([0, 1, 2, 3])
    plain = act_train_step(model, carry, halting="none")
    weighted = act_train_step(model, carry, halting="none", hsw=("paper", 0.7))
    _, out = model.segment(carry.states, x, p)
    lm = row_mean_loss(token_cross_entropy(out.logits, y, "stablemax"), y)
    w = hsw_row_weights(torch.tensor([1, 2, 3, 4]), 0.7, 4)
    assert float(weighted.loss.detach()) == pytest.approx(float((lm * w).sum().detach() / 4), rel=1e-6)
    code = act_train_step(model, carry, halting="none", hsw=("code", 0.7))
    assert float(code.loss.detach()) == pytest.approx(float(plain.loss.detach()) * 0.7 ** 2.5, rel=1e-6)
