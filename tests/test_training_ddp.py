"""Data-parallel training on CPU: ``torchrun --nproc_per_node=2 -m training train`` with gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from test_training_loop import TRM, write_shift_task

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_torchrun_two_ranks_gloo(tmp_path):
    data = write_shift_task(tmp_path / "data")
    cfg = dict(model=TRM, task=dict(name="sudoku", data=str(data)), batch_size=8, steps=3, ckpt_interval=2,
               log_interval=1, ema_decay=0.8, optim=dict(lr=3e-3), eval_n=8)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "training", "train", "--config", str(tmp_path / "cfg.json"), "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "last" / "config.json").read_text())
    assert meta["state"]["step"] == 3 and meta["state"]["world_size"] == 2
    assert len(meta["state"]["stream_positions"]) == 2
    carry = load_file(str(out / "last" / "carry.safetensors"))
    assert carry["inputs"].shape == (2, 4, 8)  # [ranks, local batch, seq_len]
    assert (out / "step_2").is_dir()
    train = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]  # only rank 0 logs
