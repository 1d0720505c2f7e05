"""Traces on disk: round trips, chunk resume, the incomplete marker, validation on load."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import interp.tracing.store as storage
import interp.tracing.stream as stream
from interp import TraceError, load_trace, save_trace, trace, trace_to_disk
from interp.tracing.store import TraceIncompleteError
from helpers.tiny_models import tiny_hrm, tiny_hrm_lm


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tiny_hrm(H_cycles=2, L_cycles=2, halt_max_steps=2, puzzle_emb_ndim=32, num_puzzle_identifiers=4).eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(3)
    y = torch.randint(2, 6, (11, 16), generator=g)
    x = torch.where(torch.rand(11, 16, generator=g) < 0.5, torch.ones_like(y), y)
    pid = torch.randint(0, 4, (11,), generator=g)
    return x, y, pid


def _assert_same(a, b, states=()):
    assert list(a.arrays) == list(b.arrays) or set(a.arrays) == set(b.arrays)
    for k, v in a.arrays.items():
        assert b.arrays[k].dtype == v.dtype, k
        np.testing.assert_array_equal(b.arrays[k], v, err_msg=k)
    assert a.steps.drop(columns=[]).equals(b.steps), "step tables differ"
    for s in states:
        np.testing.assert_array_equal(a.states(s, b.state_index), b.states(s))


def test_round_trip_equals_in_memory_trace(model, data, tmp_path):
    x, y, pid = data
    mem = trace(model, x, y, pid, batch_size=4)  # same batches as the chunks below: bit-identical results
    out = trace_to_disk(model, (x, y, pid), tmp_path / "t", chunk_size=4, batch_size=4, states=["z_H", "z_L"],
                        state_puzzles=[0, 5, 10], progress=False)
    disk = load_trace(out)
    _assert_same(mem, disk, states=["z_H", "z_L"])
    assert list(disk.state_index) == [0, 5, 10]
    np.testing.assert_array_equal(disk.initial_states("z_H"), mem.initial_states("z_H", [0, 5, 10]))
    assert disk.meta["complete"] and disk.meta["model_sha256"] == mem.meta["model_sha256"]
    man = json.loads((out / "manifest.json").read_text())
    assert man["n_chunks"] == 3 and [c["stop"] - c["start"] for c in man["chunks"]] == [4, 4, 3]
    # save_trace of an in-memory trace gives the same on reload
    again = load_trace(save_trace(mem, tmp_path / "saved", chunk_size=5), lazy_states=False)
    _assert_same(mem, again, states=["z_H", "z_L"])


def test_states_stay_on_disk_until_asked(model, data, tmp_path):
    x, y, pid = data
    out = trace_to_disk(model, (x, y, pid), tmp_path / "t", chunk_size=4, states="all", state_puzzles=[1],
                        progress=False)
    tr = load_trace(out)
    assert isinstance(tr._states, storage.ChunkStates)  # nothing read yet
    assert tr.states("z_L").shape == (1, tr.n_steps, 17, 32)  # prefix token + 16 cells
    assert tr.states("z_L", drop_prefix=True).shape == (1, tr.n_steps, 16, 32)


def test_interrupted_trace_is_marked_incomplete_and_resumes(model, data, tmp_path, monkeypatch):
    x, y, pid = data
    out = tmp_path / "t"
    real = stream.compute_arrays
    calls = {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the job dies while tracing the third chunk
        return real(*a, **k)

    monkeypatch.setattr(stream, "compute_arrays", failing)
    with pytest.raises(KeyboardInterrupt):
        trace_to_disk(model, (x, y, pid), out, chunk_size=4, progress=False)
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    with pytest.raises(TraceIncompleteError, match="incomplete"):
        load_trace(out)
    partial = load_trace(out, allow_incomplete=True)
    assert partial.n_puzzles == 8 and not partial.meta["complete"]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("chunk_*")}
    assert sorted(before) == ["chunk_00000.safetensors", "chunk_00001.safetensors"]

    calls["n"] = -100  # never fail again; count the chunks that are traced on resume
    trace_to_disk(model, (x, y, pid), out, chunk_size=4, progress=False)
    assert calls["n"] == -100 + 1  # only the last chunk was computed
    for name, t in before.items():
        assert (out / name).stat().st_mtime_ns == t  # finished chunks untouched
    _assert_same(trace(model, x, y, pid, states="summary", batch_size=4), load_trace(out))


def test_other_trace_in_directory_is_refused_unless_overwrite(model, data, tmp_path):
    x, y, pid = data
    out = trace_to_disk(model, (x, y, pid), tmp_path / "t", chunk_size=8, progress=False)
    with pytest.raises(TraceError, match="different trace"):
        trace_to_disk(model, (x[:5], y[:5], pid[:5]), out, chunk_size=8, progress=False)
    trace_to_disk(model, (x[:5], y[:5], pid[:5]), out, chunk_size=8, progress=False, overwrite=True)
    assert load_trace(out).n_puzzles == 5
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(TraceError, match="not empty"):
        trace_to_disk(model, (x, y, pid), tmp_path / "junk", progress=False)


def test_load_validates_format_sizes_and_shapes(model, data, tmp_path):
    x, y, pid = data
    out = trace_to_disk(model, (x, y, pid), tmp_path / "t", chunk_size=6, progress=False)
    with pytest.raises(TraceError, match="no manifest.json"):
        load_trace(tmp_path)
    man_path = out / "manifest.json"
    man = json.loads(man_path.read_text())

    bad = dict(man, format="recurse-interp-trace/99")
    man_path.write_text(json.dumps(bad))
    with pytest.raises(TraceError, match="not supported"):
        load_trace(out)
    man_path.write_text(json.dumps(dict(man, format="something-else")))
    with pytest.raises(TraceError, match="not a recurse-interp trace"):
        load_trace(out)

    bad = json.loads(json.dumps(man))
    bad["arrays"]["step/ce.z_H"]["tail"] = [99]
    man_path.write_text(json.dumps(bad))
    with pytest.raises(TraceError, match="checksum"):
        load_trace(out)
    with pytest.raises(TraceError, match="step/ce.z_H"):
        load_trace(out, verify=False)

    man_path.write_text(json.dumps(man))
    chunk = out / man["chunks"][1]["file"]
    blob = chunk.read_bytes()
    chunk.write_bytes(blob[:-100])
    with pytest.raises(TraceError, match="truncated"):
        load_trace(out)
    chunk.unlink()
    with pytest.raises(TraceError, match="missing chunk"):
        load_trace(out)


def test_dataset_directory_input(model, tmp_path):
    d = tmp_path / "data" / "test"
    d.mkdir(parents=True)
    g = np.random.default_rng(0)
    labels = g.integers(2, 6, (6, 16)).astype(np.uint8)
    labels[0, :3] = 0  # pad = ignore_label_id: not scored
    inputs = np.where(g.random((6, 16)) < 0.5, 1, labels).astype(np.uint8)
    np.save(d / "all__inputs.npy", inputs)
    np.save(d / "all__labels.npy", labels)
    np.save(d / "all__puzzle_identifiers.npy", np.array([0, 3, 2], np.int32))
    np.save(d / "all__puzzle_indices.npy", np.array([0, 2, 3, 6], np.int32))
    (d / "dataset.json").write_text(json.dumps({"ignore_label_id": 0, "seq_len": 16, "vocab_size": 6, "task": "sudoku"}))
    out = trace_to_disk(model, tmp_path / "data", tmp_path / "t", chunk_size=4, progress=False)
    tr = load_trace(out)
    assert list(tr.puzzle_ids) == [0, 0, 3, 2, 2, 2]
    assert (tr.labels[0, :3] == -100).all() and tr.meta["task"] == {"name": "sudoku"}
    y = labels.astype(np.int64)
    y[y == 0] = -100
    ref = trace(model, inputs, y, np.array([0, 0, 3, 2, 2, 2]), states="summary", batch_size=4)
    np.testing.assert_array_equal(ref.metric("ce"), tr.metric("ce"))
    with pytest.raises(TraceError, match="not a puzzle dataset"):
        trace_to_disk(model, tmp_path, tmp_path / "u", progress=False)


def test_hrm_lm_trace_round_trip(tmp_path):
    model = tiny_hrm_lm().eval()
    tokens = np.random.default_rng(0).integers(0, 256, (5, 10))
    out = trace_to_disk(model, tokens, tmp_path / "lm", chunk_size=2, states=["slow", "gate_slow"], state_puzzles=[4],
                        progress=False)
    tr = load_trace(out)
    mem = trace(model, tokens, batch_size=2)
    for k, v in mem.arrays.items():
        np.testing.assert_array_equal(tr.arrays[k], v, err_msg=k)
    np.testing.assert_array_equal(tr.states("gate_slow"), mem.states("gate_slow", [4]))
    assert tr.meta["fusion_sources"] == ["fast", "slow", "encoded"]


def test_atomic_writes_leave_no_temporaries(model, data, tmp_path):
    x, y, pid = data
    out = trace_to_disk(model, (x, y, pid), tmp_path / "t", chunk_size=3, progress=False)
    assert sorted(os.listdir(out)) == ["chunk_00000.safetensors", "chunk_00001.safetensors", "chunk_00002.safetensors",
                                       "chunk_00003.safetensors", "manifest.json", "provenance.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert all((p.stat().st_mode & 0o777) == (0o666 & ~umask) for p in out.iterdir())
