"""Training under kill -9 and divergence: resume reaches bit-identical weights, no half-written checkpoint is loadable.

The child processes are real ``python -m training train`` runs. Some kill
themselves with SIGKILL at a random call of ``os.replace`` / ``shutil.rmtree``
(so every point of a checkpoint write, including the window between the two
renames of a directory swap, gets hit over time); one is killed from outside
after a random delay.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from robust_helpers import PYTHON, TRM, one_error_line, subprocess_env, write_shift_task
from safetensors.torch import load_file

from models.checkpoint import checkpoint_dir, load_checkpoint
from training.checkpointing import read_tensors
from training.config import TrainConfig
from training.trainer import Trainer

pytestmark = pytest.mark.timeout(240)

STEPS = 16
TRAIN_FILES = ("model", "live", "optimizer", "rng", "carry")

# the child: SIGKILL itself at the KILL_AT-th os.replace / shutil.rmtree call (0 = never), then run the CLI
CHILD = """
import os, shutil, signal, sys
import torch
torch.set_num_threads(1)
kill_at, calls = int(os.environ.get("KILL_AT", "0")), [0]
def counted(fn):
    def wrapper(*a, **k):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*a, **k)
    return wrapper
os.replace, shutil.rmtree = counted(os.replace), counted(shutil.rmtree)
from training.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _config(data: Path, **kw) -> dict:
    d = dict(model=TRM, task=dict(name="sudoku", data=str(data)), batch_size=8, steps=STEPS, ema_decay=0.8,
             optim=dict(lr=3e-3, warmup_steps=3), log_interval=1, ckpt_interval=1, seed=3)
    d.update(kw)
    return d


def _child(cfg_path: Path, out: Path, kill_at: int = 0, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    env = dict(subprocess_env(), KILL_AT=str(kill_at))
    return subprocess.Popen([PYTHON, "-c", CHILD, "train", "--config", str(cfg_path), "--out", str(out), "--resume",
                             "--no-progress", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def assert_every_checkpoint_whole(out: Path) -> int:
    """Each visible checkpoint directory loads completely (temporary ``.x.tmp-*`` and ``*.old`` dirs are ignored).

    Returns the step of the checkpoint a resume would use (``last``, or ``last.old`` after a crash mid-swap).
    """
    for d in sorted(out.iterdir()):
        if not d.is_dir() or d.name.startswith(".") or d.name.endswith(".old") or d.name == "tb":
            continue
        _, meta = load_checkpoint(d)
        assert meta["state"]["step"] >= 0
        for name in TRAIN_FILES:
            read_tensors(d, name)
        if d.name.startswith("step_"):
            assert meta["state"]["step"] == int(d.name[5:]), d
    last = checkpoint_dir(out / "last")
    return load_checkpoint(last)[1]["state"]["step"] if last.exists() else -1


def assert_same_training_state(a: Path, b: Path) -> None:
    for name in TRAIN_FILES:
        ta, tb = load_file(str(a / f"{name}.safetensors")), load_file(str(b / f"{name}.safetensors"))
        assert ta.keys() == tb.keys(), name
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{name}.safetensors:{k} differs from the uninterrupted run"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = write_shift_task(root / "data")
    cfg = _config(data)
    (root / "cfg.json").write_text(json.dumps(cfg))
    ref = root / "reference"
    Trainer(TrainConfig.from_dict(cfg), ref, progress=False).train()  # uninterrupted, in-process
    return root, ref


@pytest.mark.slow
def test_kill_9_during_training_and_checkpointing_then_resume(setup, tmp_path):
    root, ref = setup
    out = tmp_path / "run"
    seed = int(os.environ.get("ROBUST_KILL_SEED") or time.time_ns() % 1_000_000)  # printed on failure
    rng = random.Random(seed)
    seed_note = [f"ROBUST_KILL_SEED={seed}"]
    print(seed_note[0])  # shown by pytest when the test fails
    resumed_steps = []
    # two runs kill themselves at a random os.replace/rmtree call, one is killed from outside at a random time
    for attempt in range(3):
        kill_at = rng.randint(1, 40) if attempt < 2 else 0
        p = _child(root / "cfg.json", out, kill_at)
        if attempt == 2:
            deadline = time.time() + 120
            while not (out / "metrics.jsonl").exists() and p.poll() is None and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.6))
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
        _, err = p.communicate(timeout=120)
        assert p.returncode in (0, -signal.SIGKILL), f"{seed_note[0]}: {err[-2000:]}"
        if out.exists():
            resumed_steps.append(assert_every_checkpoint_whole(out))
    p = _child(root / "cfg.json", out)  # the last resume runs to the end
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, f"{seed_note[0]}: {err[-2000:]}"
    assert_every_checkpoint_whole(out)
    assert_same_training_state(ref / "last", out / "last")
    assert not (out / "last.old").exists()
    assert sorted(json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
                  if json.loads(line)["split"] == "train") == list(range(1, STEPS + 1))


@pytest.mark.slow
def test_crash_between_the_two_renames_of_last(setup, tmp_path):
    """Deterministic version of the window: kill at the rename ``tmp -> last`` right after ``last -> last.old``."""
    root, ref = setup
    out = tmp_path / "run"
    # os.replace/rmtree calls of a fresh run: step-0 save (1 replace), then per step: `last` swap (2 replaces,
    # 1 rmtree), metrics? no; step_N copy (1 replace). Find the first `tmp -> last` of a swap empirically:
    # kill at each candidate until `last` is missing and `last.old` present.
    for kill_at in range(2, 12):
        if out.exists():
            import shutil

            shutil.rmtree(out)
        p = _child(root / "cfg.json", out, kill_at)
        p.communicate(timeout=120)
        if not (out / "last").exists() and (out / "last.old").exists():
            break
    else:
        pytest.fail("no kill point hit the window between the two renames")
    step = assert_every_checkpoint_whole(out)  # readers fall back to last.old
    assert step >= 0
    p = _child(root / "cfg.json", out)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    assert f"from step {step}" in err  # resumed from the recovered checkpoint, not from scratch
    assert_same_training_state(ref / "last", out / "last")


# ----------------------------------------------------------------------------- divergence
def test_divergence_rolls_back_and_never_saves_nan(setup, tmp_path, capsys):
    root, _ = setup
    data = Path(json.loads((root / "cfg.json").read_text())["task"]["data"])
    cfg = TrainConfig.from_dict(_config(data, steps=8, ckpt_interval=2, inject_nan_steps=[3, 6, 6]))
    out = tmp_path / "run"
    tr = Trainer(cfg, out, progress=False)
    saved = []
    real_save = tr.save

    def checked_save(name="last"):
        assert all(torch.isfinite(p).all() for p in tr.model.parameters()), f"non-finite weights saved at {tr.step}"
        saved.append(tr.step)
        return real_save(name)

    tr.save = checked_save
    tr.train()
    err = capsys.readouterr().err
    assert err.count("divergence at step 3") == 1 and err.count("divergence at step 6") == 2
    assert tr.step == 8 and saved[-1] == 8
    for d in out.iterdir():
        if d.is_dir():
            model, _ = load_checkpoint(d)
            assert all(torch.isfinite(p).all() for p in model.parameters()), d
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["split"] == "event"] == [2, 5, 5]  # failed after step 2 (rolled back to 2), twice after step 5 (back to 4)


def test_persistent_divergence_aborts_cleanly_then_resumes(setup, tmp_path, capsys):
    from training.cli import main

    root, ref = setup
    cfg = json.loads((root / "cfg.json").read_text())
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps({**cfg, "inject_nan_steps": [5, 5, 5], "max_failures": 3}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: 3 consecutive non-finite steps")
    assert assert_every_checkpoint_whole(out) == 4
    # the run continues from its last good checkpoint once the cause is gone
    assert main(["train", "--config", str(root / "cfg.json"), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().err
    assert_same_training_state(ref / "last", out / "last")


def test_resume_refuses_a_different_run(setup, tmp_path, capsys):
    """Resuming with another model config, or a tampered training state, is one clear error and writes nothing."""
    from robust_helpers import tree_digest

    from training.cli import main

    root, ref = setup
    out = tmp_path / "run"
    import shutil

    shutil.copytree(ref, out)
    before = tree_digest(out)
    argv = ["train", "--config", str(root / "cfg.json"), "--out", str(out), "--resume", "--no-progress"]
    assert main(argv + ["--set", "model.hidden_size=64"]) == 2
    assert "different model config" in one_error_line(capsys.readouterr().err)
    assert main(["train", "--config", str(root / "cfg.json"), "--out", str(out), "--no-progress"]) == 2
    assert "already holds a run" in one_error_line(capsys.readouterr().err)
    assert tree_digest(out) == before
    # a damaged or hand-edited training state in last/config.json
    meta = json.loads((out / "last" / "config.json").read_text())
    bad_states = {"garbage": None, "list": [], "no_step": {k: v for k, v in meta["state"].items() if k != "step"},
                  "step_str": {**meta["state"], "step": "ten"}, "groups": {**meta["state"], "optimizer_groups": 3},
                  "positions": {**meta["state"], "stream_positions": []}}
    for name, state in bad_states.items():
        d = tmp_path / name
        shutil.copytree(ref, d)
        if name == "garbage":
            (d / "last" / "config.json").write_bytes(b"{\x00 not json")
        else:
            (d / "last" / "config.json").write_text(json.dumps({**meta, "state": state}))
        before = tree_digest(d)
        for args in (["--config", str(root / "cfg.json"), "--set", "steps=20"], ["--set", "steps=20"]):
            assert main(["train", "--out", str(d), "--resume", "--no-progress", *args]) == 2, name
            one_error_line(capsys.readouterr().err)
        assert tree_digest(d) == before, name
