"""The training loop end to end on tiny synthetic data: learning, resume, rollback, CLI, text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from models.checkpoint import load_checkpoint
from models.config import ConfigError
from training.cli import main
from training.config import TrainConfig
from training.evaluate import evaluate
from tasks.puzzle_dataset import write_puzzle_split
from training.trainer import Trainer, TrainingDiverged

HRM = dict(family="hrm", hidden_size=32, num_heads=2, expansion=2, H_cycles=1, L_cycles=2, H_layers=1, L_layers=1, halt_max_steps=3)
TRM = dict(family="trm", hidden_size=32, num_heads=2, expansion=2, H_cycles=2, L_cycles=2, num_layers=1, halt_max_steps=3)


def write_shift_task(root: Path, n_train: int = 48, n_test: int = 16, L: int = 8, seed: int = 0) -> Path:
    """label = (input digit + 1) mod 4, tokens 2..5: a per-cell map a tiny model learns in a few steps."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(2, 6, size=(n, L))
        y = (x - 2 + 1) % 4 + 2
        write_puzzle_split(
            root / split, x, y, np.zeros(n, np.int32), np.arange(n + 1), np.arange(n + 1),
            {"vocab_size": 6, "task": "sudoku"},
        )
    return root


@pytest.fixture
def data(tmp_path) -> Path:
    return write_shift_task(tmp_path / "data")


def _cfg(data: Path, model: dict, **kw) -> TrainConfig:
    d = dict(model=model, task=dict(name="sudoku", data=str(data)), batch_size=8, steps=6, ema_decay=0.8,
             optim=dict(lr=3e-3), log_interval=1)
    d.update(kw)
    return TrainConfig.from_dict(d)


def _records(out: Path, split: str = "train") -> list[dict]:
    return [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["split"] == split]


@pytest.mark.slow
def test_training_reduces_the_loss(data, tmp_path):
    cfg = _cfg(data, TRM, steps=24, halting="none", ema_decay=0.0, log_interval=6)
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    before = evaluate(tr.model, tr.test_data, n_boot=10)["loss"]
    tr.train()
    after = evaluate(tr.model, tr.test_data, n_boot=10)["loss"]
    recs = _records(tmp_path / "run")
    assert recs[-1]["lm_loss"] < 0.8 * recs[0]["lm_loss"]
    assert after < 0.8 * before
    # the checkpoint holds a loadable model that reproduces the trainer's evaluation
    model, meta = load_checkpoint(tmp_path / "run" / "last")
    assert meta["train"]["steps"] == 24 and meta["task"]["name"] == "sudoku" and meta["state"]["step"] == 24
    assert evaluate(model, tr.test_data, n_boot=10)["loss"] == pytest.approx(after, rel=1e-5)


def test_resume_is_bit_identical(data, tmp_path):
    cfg = _cfg(
        data, HRM, steps=7, ckpt_interval=3, optim=dict(lr=3e-3, warmup_steps=2, lr_min_ratio=0.1),
        cgar=dict(pdc=True, hsw=True), eval_interval=5, eval_n=8,
    )
    Trainer(cfg, tmp_path / "A", progress=False).train()
    Trainer(cfg, tmp_path / "B", progress=False).train(stop_at=4)  # "killed" after step 4; last = step 3
    assert json.loads((tmp_path / "B" / "last" / "config.json").read_text())["state"]["step"] == 3
    # a crash between the two renames of a checkpoint save leaves only `last.old`: resume recovers it
    (tmp_path / "B" / "last").rename(tmp_path / "B" / "last.old")
    resumed = Trainer(cfg, tmp_path / "B", resume=True, progress=False)
    assert resumed.resumed_from == 3
    resumed.train()
    a_dir, b_dir = tmp_path / "A" / "last", tmp_path / "B" / "last"
    files = sorted(p.name for p in a_dir.glob("*.safetensors"))
    assert files == ["carry.safetensors", "live.safetensors", "model.safetensors", "optimizer.safetensors", "rng.safetensors"]
    for name in files:
        a, b = load_file(str(a_dir / name)), load_file(str(b_dir / name))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}:{k} differs after resume"
    # the resumed run rewrote the killed run's records after step 3 instead of duplicating them
    steps = [r["step"] for r in _records(tmp_path / "B")]
    assert steps == list(range(1, 8))
    assert {p.name for p in (tmp_path / "B").iterdir()} >= {"last", "best", "step_3", "step_6", "metrics.jsonl"}
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(cfg, tmp_path / "A", progress=False)


def test_nan_rolls_back_and_continues(data, tmp_path, capsys):
    cfg = _cfg(data, TRM, steps=6, ckpt_interval=2, inject_nan_steps=[4])
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    result = tr.train()
    assert result["step"] == 6
    assert "divergence at step 4" in capsys.readouterr().err
    events = _records(tmp_path / "run", "event")
    assert len(events) == 1 and events[0]["step"] == 3 and events[0]["failures"] == 1
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())
    # after the rollback to step 2, steps 3..6 ran again: the train records show step 3 twice
    steps = [r["step"] for r in _records(tmp_path / "run")]
    assert steps == [1, 2, 3, 3, 4, 5, 6]


def test_repeated_divergence_aborts(data, tmp_path):
    # step 3 fails, rolls back to step 2, and fails again on the retry
    cfg = _cfg(data, TRM, steps=6, ckpt_interval=2, inject_nan_steps=[3, 3], max_failures=2)
    with pytest.raises(TrainingDiverged, match="2 consecutive"):
        Trainer(cfg, tmp_path / "run", progress=False).train()


def test_cli_train_and_eval(data, tmp_path, capsys):
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(_cfg(data, TRM, steps=3).to_dict()))
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--no-progress", "--set", "steps=2"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 2
    assert main(["eval", "--ckpt", str(out / "last"), "--n", "12", "--json", "--n-boot", "50"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 12 and res["weights"] == "ema"
    lo, hi = res["exact_accuracy_ci"]
    assert lo <= res["exact_accuracy"] <= hi
    assert 1 <= res["avg_halt_steps"] <= 3
    # --resume without --config reads the run's own config (and takes overrides)
    assert main(["train", "--out", str(out), "--resume", "--no-progress", "--set", "steps=3"]) == 0
    captured = capsys.readouterr()
    assert "resuming" in captured.err and json.loads(captured.out.strip().splitlines()[-1])["step"] == 3
    # bad input: one line on stderr, exit status 2
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.startswith("error: config file not found")
    assert main(["eval", "--ckpt", str(tmp_path / "nope")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--set", "model.family=hrm_lm"]) == 2
    assert "unknown hrm_lm config field" in capsys.readouterr().err


def test_task_model_mismatch_is_a_clear_error(data, tmp_path):
    with pytest.raises(ConfigError, match="seq_len = 9 but the dataset has seq_len = 8"):
        Trainer(_cfg(data, {**TRM, "seq_len": 9}), tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="needs an hrm_lm model or a causal"):
        TrainConfig.from_dict(dict(model=TRM, task=dict(name="text", data=str(data)), steps=1))


def test_evaluate_matches_forward_semantics(data, tmp_path):
    tr = Trainer(_cfg(data, HRM, steps=1), tmp_path / "run", progress=False)
    model = tr.model
    res = evaluate(model, tr.test_data, batch_size=5, n_boot=20)
    x = torch.from_numpy(tr.test_data.get_inputs(slice(None)))
    y = torch.from_numpy(tr.test_data.get_labels(slice(None)))
    with torch.no_grad():
        pred = model(x).argmax(-1)  # fresh states, all segments, last logits
    assert res["exact_accuracy"] == pytest.approx(float((pred == y).all(-1).float().mean()))
    assert res["token_accuracy"] == pytest.approx(float((pred == y).float().mean()))
    assert res["exact_accuracy_by_segment"][-1] == pytest.approx(res["exact_accuracy"])
    assert res["avg_halt_steps"] == 3.0  # untrained q_head: q_halt == q_continue == -5, never fires


def test_text_training_with_hrm_lm_and_resume(tmp_path):
    from training.lm import lm_loss
    from tasks.text import build_text_dataset

    build_text_dataset(tmp_path / "text", source=b"the quick brown fox jumps over the lazy dog. " * 40, val_fraction=0.2)
    model = dict(family="hrm_lm", hidden_size=32, num_heads=2, expansion=2, seq_len=16, passes=2)
    cfg = TrainConfig.from_dict(dict(model=model, task=dict(name="text", data=str(tmp_path / "text")), batch_size=4, steps=4,
                                     loss="softmax", eval_n=4, optim=dict(lr=1e-3), ema_decay=0.5, ckpt_interval=2))
    tr = Trainer(cfg, tmp_path / "A", progress=False)
    # our multi-pass objective equals the model's own loss (same sign convention for the gate entropy)
    w = torch.from_numpy(np.frombuffer(b"the quick brown fox jumps over t", dtype=np.uint8).astype(np.int64)).view(2, 16)
    ours, _ = lm_loss(tr.model, w, torch.roll(w, -1, 1), "softmax")
    theirs, _ = tr.model.loss(w, torch.roll(w, -1, 1))
    assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=1e-5)
    ev = tr.train()["eval"]
    assert set(ev) >= {"val_loss", "val_loss_pass0", "val_loss_pass1", "val_ppl"}
    assert 0 < ev["val_loss"] < 7
    Trainer(cfg, tmp_path / "B", progress=False).train(stop_at=3)
    Trainer(cfg, tmp_path / "B", resume=True, progress=False).train()
    for name in ("model", "live", "optimizer"):
        a = load_file(str(tmp_path / "A" / "last" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "B" / "last" / f"{name}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), name
