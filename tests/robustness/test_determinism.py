"""Same seed, same machine (CPU) -> bit-identical training and traces; another seed -> different weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from robust_helpers import HRM, TRM, sudoku_rows, write_shift_task
from safetensors.torch import load_file

from interp import load_trace, trace_to_disk
from training.config import TrainConfig
from training.trainer import Trainer

pytestmark = pytest.mark.timeout(120)

FILES = ("model", "live", "optimizer", "rng", "carry")


def _train(data, out, model, seed):
    cfg = TrainConfig.from_dict(dict(model=model, task=dict(name="sudoku", data=str(data)), batch_size=8, steps=5,
                                     ema_decay=0.8, optim=dict(lr=3e-3), log_interval=1, seed=seed,
                                     halting="act_q" if model["family"] == "hrm" else "bce"))
    Trainer(cfg, out, progress=False).train()
    return {name: load_file(str(out / "last" / f"{name}.safetensors")) for name in FILES}


@pytest.mark.parametrize("model", [HRM, TRM], ids=["hrm", "trm"])
def test_training_is_bit_identical_for_a_seed(tmp_path, model):
    data = write_shift_task(tmp_path / "data")
    torch.manual_seed(123)  # the trainer must not depend on the global RNG state it is started with
    a = _train(data, tmp_path / "a", model, seed=7)
    torch.manual_seed(456)
    np.random.seed(9)
    b = _train(data, tmp_path / "b", model, seed=7)
    for name in FILES:
        assert a[name].keys() == b[name].keys()
        for k in a[name]:
            assert torch.equal(a[name][k], b[name][k]), f"{name}:{k} differs between two runs with seed 7"
    c = _train(data, tmp_path / "c", model, seed=8)
    assert any(not torch.equal(a["model"][k], c["model"][k]) for k in a["model"]), "the seed has no effect"
    # the loss curves agree to the bit as well
    rec = lambda d: [r["loss"] for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())
                     if r["split"] == "train"]
    assert rec(tmp_path / "a") == rec(tmp_path / "b")


def _split_safetensors(blob: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def test_traces_are_bit_identical(tmp_path, tiny_ckpts):
    from models.checkpoint import load_checkpoint

    x, y = sudoku_rows(7, seed=2)
    dirs = []
    for name in ("a", "b"):
        model, _ = load_checkpoint(tiny_ckpts / "trm")  # a fresh load each time
        dirs.append(trace_to_disk(model, (x, y), tmp_path / name, chunk_size=4, batch_size=3, states="all",
                                  progress=False))
    a, b = (load_trace(d) for d in dirs)
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k], err_msg=k)
    for s in a.stored_states:
        np.testing.assert_array_equal(a.states(s), b.states(s), err_msg=s)
    for f in sorted(dirs[0].glob("chunk_*.safetensors")):  # the files: same header, same data bytes
        ha, da = _split_safetensors(f.read_bytes())
        hb, db = _split_safetensors((dirs[1] / f.name).read_bytes())
        assert ha == hb and da == db, f.name  # (safetensors writes its metadata map in hash order: compare parsed)
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in dirs)
    ma.pop("updated", None), mb.pop("updated", None)
    ma["meta"].pop("created", None), mb["meta"].pop("created", None)
    for m in (ma, mb):  # checksums hash the file bytes, and safetensors orders its metadata map arbitrarily
        m.pop("integrity", None)
        for c in m["chunks"]:
            c.pop("sha256", None)
    assert ma == mb
