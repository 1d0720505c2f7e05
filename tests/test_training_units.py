"""Pure pieces of the training pipeline checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.config import ConfigError
from training.cgar import depth_at, hsw_batch_scale, hsw_normaliser, hsw_row_weights
from training.config import OptimConfig, TrainConfig, apply_overrides, load_train_config
from training.data import PuzzleArrays, PuzzleStream, epoch_order, text_batch
from common.stats import bootstrap_ci
from common.labels import IGNORE_LABEL
from training.losses import log_stablemax, row_mean_loss, row_stats, token_cross_entropy
from training.optim import EMA, lr_at


# ----- losses ---------------------------------------------------------------------------


def test_stablemax_matches_hand_computation():
    logits = torch.tensor([[[2.0, -1.0, 0.0]]])
    # s = [3, 1/(1+1) = 0.5, 1]; sum 4.5
    loss0 = token_cross_entropy(logits, torch.tensor([[0]]), "stablemax")
    loss1 = token_cross_entropy(logits, torch.tensor([[1]]), "stablemax")
    assert loss0.dtype == torch.float64
    assert float(loss0) == pytest.approx(math.log(4.5 / 3.0), abs=1e-12)
    assert float(loss1) == pytest.approx(math.log(9.0), abs=1e-12)
    assert torch.exp(log_stablemax(logits)).sum().item() == pytest.approx(1.0)


def test_stablemax_gradient_is_finite_for_large_logits():
    logits = torch.tensor([[[1e4, -1e4, 0.0]]], requires_grad=True)
    token_cross_entropy(logits, torch.tensor([[1]]), "stablemax").sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_softmax_ce_and_ignore_label():
    torch.manual_seed(1)
    logits = torch.randn(2, 5, 7)
    labels = torch.randint(0, 7, (2, 5))
    labels[0, 1] = IGNORE_LABEL
    ours = token_cross_entropy(logits, labels, "softmax")
    ref = F.cross_entropy(logits.reshape(-1, 7), labels.reshape(-1), ignore_index=IGNORE_LABEL, reduction="none").view(2, 5)
    assert torch.allclose(ours, ref, atol=1e-6)
    assert ours[0, 1] == 0
    # per-row mean over supervised tokens only
    assert row_mean_loss(ours, labels)[0] == pytest.approx(float(ref[0].sum() / 4), rel=1e-6)
    with pytest.raises(ValueError, match="stablemax or softmax"):
        token_cross_entropy(logits, labels, "hinge")


def test_row_stats_exact_and_token_accuracy():
    logits = torch.zeros(2, 3, 4)
    labels = torch.tensor([[1, 2, IGNORE_LABEL], [1, 1, 1]])
    logits[0, 0, 1] = logits[0, 1, 2] = 1  # row 0: both supervised cells right
    logits[1, 0, 1] = logits[1, 1, 3] = logits[1, 2, 1] = 1  # row 1: 2 of 3
    st = row_stats(logits, labels)
    assert st.exact.tolist() == [True, False]
    assert st.token_accuracy.tolist() == pytest.approx([1.0, 2 / 3])


# ----- CGAR -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "progress,H,L,expected",
    [
        (0.0, 3, 6, (1, 2)), (0.29, 3, 6, (1, 2)), (0.3, 3, 6, (2, 4)), (0.59, 3, 6, (2, 4)),
        (0.6, 3, 6, (3, 6)), (1.0, 3, 6, (3, 6)),
        (0.1, 2, 2, (1, 2)), (0.4, 2, 2, (2, 2)),  # ceil(2/3)=1 -> L floor of 2; ceil(4/3)=2
        (0.1, 4, 9, (2, 3)), (0.5, 4, 9, (3, 6)),
        (0.0, 1, 1, (1, 1)),  # never deeper than the base
    ],
)
def test_depth_curriculum(progress, H, L, expected):
    assert depth_at(progress, H, L) == expected


def test_hierarchical_supervision_weights_by_hand():
    Z = 1 + 0.7 + 0.49 + 0.343
    assert hsw_normaliser(0.7, 4) == pytest.approx(Z)
    w = hsw_row_weights(torch.tensor([1, 2, 4]), 0.7, 4)
    assert w.tolist() == pytest.approx([1 / Z, 0.7 / Z, 0.343 / Z])
    assert float(hsw_row_weights(torch.arange(1, 5), 0.7, 4).sum()) == pytest.approx(1.0)
    assert float(hsw_batch_scale(torch.tensor([1, 2, 3]), 0.7)) == pytest.approx(0.49)


# ----- schedule / EMA ------------------------------------------------------------------------


def test_warmup_cosine_schedule_by_hand():
    cfg = OptimConfig(lr=1.0, warmup_steps=4, lr_min_ratio=0.1)
    assert lr_at(1, 14, cfg) == pytest.approx(0.25)
    assert lr_at(2, 14, cfg) == pytest.approx(0.5)
    assert lr_at(4, 14, cfg) == pytest.approx(1.0)
    assert lr_at(9, 14, cfg) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_at(14, 14, cfg) == pytest.approx(0.1)
    const = OptimConfig(lr=2.0, warmup_steps=0, lr_min_ratio=1.0)
    assert {lr_at(s, 10, const) for s in range(1, 11)} == {2.0}


def test_ema_update():
    m = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema = EMA(m, decay=0.9)
    with torch.no_grad():
        m.weight.fill_(3.0)
    ema.update(m)
    assert torch.allclose(ema.shadow.weight, torch.full((1, 2), 0.9 * 1 + 0.1 * 3))
    assert not ema.shadow.weight.requires_grad


# ----- bootstrap -------------------------------------------------------------------------------


def test_bootstrap_ci_contains_estimate_and_shrinks():
    rng = np.random.default_rng(0)
    small = (rng.random(100) < 0.3).astype(float)
    large = (rng.random(10000) < 0.3).astype(float)
    lo_s, hi_s = bootstrap_ci(small, n_boot=500)
    lo_l, hi_l = bootstrap_ci(large, n_boot=500)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # width ~ 1/sqrt(n): 10x narrower
    # normal-approximation check of the width for the large sample
    se = math.sqrt(large.mean() * (1 - large.mean()) / large.size)
    assert hi_l - lo_l == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert bootstrap_ci(np.ones(5)) == (1.0, 1.0)


# ----- data order -------------------------------------------------------------------------------


def _arrays(n_groups: int, per_group: int = 1) -> PuzzleArrays:
    n = n_groups * per_group
    x = np.arange(n)[:, None].repeat(3, axis=1).astype(np.uint8)
    return PuzzleArrays(
        inputs=x, labels=x, puzzle_identifiers=np.zeros(n, np.int64), puzzle_indices=np.arange(n + 1),
        group_indices=np.arange(0, n + 1, per_group), meta={},
    )


def test_epoch_order_visits_each_group_once_and_is_pure():
    d = _arrays(10, per_group=3)
    a, b = epoch_order(d, seed=5, epoch=2), epoch_order(d, seed=5, epoch=2)
    assert np.array_equal(a, b)
    assert sorted(a // 3) == list(range(10))  # one example per group
    assert not np.array_equal(a, epoch_order(d, seed=5, epoch=3))


def test_stream_position_determines_future_and_shards_disjoint():
    d = _arrays(10)
    s = PuzzleStream(d, seed=0)
    first = s.take(7)
    s2 = PuzzleStream(d, seed=0)
    s2.position = 4
    assert np.array_equal(s2.take(3), first[4:7])
    r0, r1 = PuzzleStream(d, 0, rank=0, world=2), PuzzleStream(d, 0, rank=1, world=2)
    e0, e1 = r0.take(5), r1.take(5)
    assert set(e0).isdisjoint(e1) and len(set(e0) | set(e1)) == 10


def test_text_batch_is_a_pure_function_of_seed_and_step():
    tokens = np.arange(1000) % 251
    a = text_batch(tokens, 16, 4, seed=1, step=3)
    assert a.shape == (4, 17) and np.array_equal(a, text_batch(tokens, 16, 4, seed=1, step=3))
    assert not np.array_equal(a, text_batch(tokens, 16, 4, seed=1, step=4))
    assert (np.diff(a, axis=1) % 251 == 1).all()  # contiguous windows


# ----- config ----------------------------------------------------------------------------------------


def test_config_overrides_base_and_errors(tmp_path):
    (tmp_path / "base.yaml").write_text("model: {family: trm, hidden_size: 32, num_heads: 2}\ntask: {name: sudoku, data: x}\nsteps: 5\n")
    (tmp_path / "arm.yaml").write_text("base: base.yaml\ncgar: {pdc: true}\nmodel: {H_cycles: 2}\n")
    cfg = load_train_config(tmp_path / "arm.yaml", ["optim.lr=3e-4", "cgar.hsw=true", "model.L_cycles=4"])
    assert cfg.model == {"family": "trm", "hidden_size": 32, "num_heads": 2, "H_cycles": 2, "L_cycles": 4}
    assert cfg.optim.lr == 3e-4 and cfg.cgar.pdc and cfg.cgar.hsw and cfg.steps == 5
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown training config field.*optim.lrr"):
        load_train_config(tmp_path / "arm.yaml", ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["steps"])
    with pytest.raises(ConfigError, match="loss must be"):
        load_train_config(tmp_path / "arm.yaml", ["loss=mse"])
    with pytest.raises(ConfigError, match="unknown trm config field"):
        load_train_config(tmp_path / "arm.yaml", ["model.depth=3"])
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "missing.yaml")
    assert cfg.resolved_halting() == "bce"
    assert load_train_config(tmp_path / "arm.yaml", ["model.family=hrm", "model.L_cycles=2", "model.H_cycles=2"]).resolved_halting() == "act_q"


# ----- shipped configs --------------------------------------------------------------------------------


def test_shipped_configs_validate_and_arms_differ_only_where_intended():
    from pathlib import Path

    from models.registry import build_model

    root = Path(__file__).resolve().parents[1] / "training" / "configs"
    cfgs = {p.stem: load_train_config(p) for p in sorted(root.glob("*.yaml"))}
    assert len(cfgs) >= 15
    base = cfgs["cgar_base"].to_dict()
    for arm, (pdc, hsw) in {"cgar_pdc": (True, False), "cgar_hsw": (False, True), "cgar_full": (True, True)}.items():
        d = cfgs[arm].to_dict()
        assert (d["cgar"]["pdc"], d["cgar"]["hsw"]) == (pdc, hsw)
        assert {k: v for k, v in d.items() if k != "cgar"} == {k: v for k, v in base.items() if k != "cgar"}
    seed = [cfgs[f"seed000_{a}_{g}"] for a in ("hrm", "flat") for g in ("one_step", "full_bptt")]
    assert [(c.model["family"], c.model["grad_mode"]) for c in seed] == [
        ("hrm", "one_step"), ("hrm", "full_bptt"), ("trm", "one_step"), ("trm", "full_bptt")]
    assert len({str({k: v for k, v in c.to_dict().items() if k != "model"}) for c in seed}) == 1
    # the three language models share a parameter budget (within 3%)
    counts = {n: sum(p.numel() for p in build_model(cfgs[n].model).parameters()) for n in ("lm_hrm_lm", "lm_unitf", "lm_transformer")}
    assert max(counts.values()) / min(counts.values()) < 1.03, counts
    # the augmentation study: the two arms differ only in the number of augmented copies
    no, aug = cfgs["aug_trm_sudoku9_noaug"].to_dict(), cfgs["aug_trm_sudoku9_aug99"].to_dict()
    assert (no["task"]["data"]["n_aug"], aug["task"]["data"]["n_aug"]) == (0, 99)
    aug["task"]["data"]["n_aug"] = 0
    assert aug == no


def test_zoo_configs_validate_and_build():
    from pathlib import Path

    from models.registry import build_model

    root = Path(__file__).resolve().parents[1] / "zoo" / "configs"
    cfgs = {p.stem: load_train_config(p) for p in sorted(root.glob("*.yaml"))}
    assert {"trm_sudoku9", "hrm_sudoku9", "hrm_attn_sudoku9", "trm_maze9"} <= set(cfgs)
    for name, c in cfgs.items():
        build_model(c.model)
    assert cfgs["hrm_sudoku9"].model["mlp_t"] is True and "mlp_t" not in cfgs["hrm_attn_sudoku9"].model
