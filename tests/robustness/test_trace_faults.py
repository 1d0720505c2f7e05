"""Trace directories under faults: disk full, interruption, kill -9, tampering. Never a corrupt trace marked complete."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import PYTHON, one_error_line, sudoku_rows, subprocess_env, tree_digest

import interp.tracing.store as storage
import interp.tracing.stream as stream
from interp import TraceError, load_trace, trace_to_disk
from interp.tracing.store import MANIFEST, TraceIncompleteError, read_manifest

pytestmark = pytest.mark.timeout(120)

N, CHUNK = 10, 3  # four chunks: 3 + 3 + 3 + 1 puzzles


@pytest.fixture(scope="module")
def model(tiny_ckpts):
    from models.checkpoint import load_checkpoint

    return load_checkpoint(tiny_ckpts / "hrm")[0]


@pytest.fixture(scope="module")
def data():
    return sudoku_rows(N, seed=1)


@pytest.fixture(scope="module")
def reference(model, data, tmp_path_factory) -> Path:
    """The uninterrupted trace every recovered one must equal."""
    out = tmp_path_factory.mktemp("ref") / "t"
    return trace_to_disk(model, data, out, chunk_size=CHUNK, batch_size=4, states="all", state_puzzles=[0, 4, 9],
                         progress=False)


def _write(model, data, out, **kw):
    return trace_to_disk(model, data, out, chunk_size=CHUNK, batch_size=4, states="all", state_puzzles=[0, 4, 9],
                         progress=False, **kw)


def assert_same_trace(a_dir: Path, b_dir: Path) -> None:
    a, b = load_trace(a_dir), load_trace(b_dir)
    assert set(a.arrays) == set(b.arrays)
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k], err_msg=k)
    for s in a.stored_states:
        np.testing.assert_array_equal(a.states(s), b.states(s), err_msg=s)
    assert a.steps.equals(b.steps)


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if ".tmp" in p.name)


# ----------------------------------------------------------------------------- disk full
def test_disk_full_while_writing_a_chunk(model, data, reference, tmp_path, monkeypatch):
    out = tmp_path / "t"
    real_save = storage.save_file
    calls = {"n": 0}

    def save_then_fill_disk(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 3:  # the third chunk: half a file lands on disk, then ENOSPC
            with open(filename, "wb") as f:
                f.write(b"\x00" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(storage, "save_file", save_then_fill_disk)
    with pytest.raises(OSError) as exc:
        _write(model, data, out)
    assert exc.value.errno == errno.ENOSPC
    man = read_manifest(out)
    assert man["complete"] is False and [c["index"] for c in man["chunks"]] == [0, 1]
    assert _leftovers(out) == []  # the half-written temporary file was removed
    with pytest.raises(TraceIncompleteError, match=r"incomplete \(2 of 4 chunks"):
        load_trace(out)
    part = load_trace(out, allow_incomplete=True)
    assert part.n_puzzles == 6 and part.meta["complete"] is False
    # space is back: the same call resumes from chunk 2 and the result equals an uninterrupted trace
    monkeypatch.setattr(storage, "save_file", real_save)
    written = []
    monkeypatch.setattr(storage, "save_file", lambda t, f, metadata=None: (written.append(f), real_save(t, f, metadata=metadata))[1])
    _write(model, data, out)
    assert len(written) == 2  # only chunks 2 and 3 were computed again
    assert read_manifest(out)["complete"] is True
    assert_same_trace(reference, out)


def test_disk_full_while_writing_the_manifest(model, data, reference, tmp_path, monkeypatch):
    out = tmp_path / "t"

    from common.io import atomic_write

    real = storage.atomic_write_text

    def fill_disk_on_final_manifest(path, text, **kw):
        if '"complete": true' not in text:
            return real(path, text, **kw)

        def half(tmp):  # half the manifest reaches the temporary file, then the disk is full
            Path(tmp).write_text(text[: len(text) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)

        return atomic_write(path, half, mkdir=False)

    monkeypatch.setattr(storage, "atomic_write_text", fill_disk_on_final_manifest)
    with pytest.raises(OSError):
        _write(model, data, out)
    monkeypatch.undo()
    man = read_manifest(out)  # the previous manifest is intact: all chunks listed, not complete
    assert man["complete"] is False and len(man["chunks"]) == 4
    assert _leftovers(out) == []
    with pytest.raises(TraceIncompleteError):
        load_trace(out)
    _write(model, data, out)
    assert_same_trace(reference, out)



def _limited_file_size(limit: int):
    """``preexec_fn``: the kernel refuses writes past ``limit`` bytes per file (EFBIG), as a full disk would."""
    import resource

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write(), not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_real_write_limit_gives_one_line_and_the_trace_resumes(tiny_ckpts, tmp_path):
    """The kernel itself refuses the chunk file (RLIMIT_FSIZE): one line, nothing marked complete, then a resume."""
    repo = Path(__file__).resolve().parents[2]
    puzzles = tmp_path / "p.sdm"
    puzzles.write_text("\n".join((repo / "data/sudoku/qqwing_easy.sdm").read_text().split()[:7]) + "\n")
    args = ["-m", "interp", "trace", "--ckpt", str(tiny_ckpts / "hrm"), "--puzzle-file", str(puzzles),
            "--chunk-size", "3", "--show", "0", "--quiet", "--plotly", "cdn"]
    run = lambda out, **kw: subprocess.run([PYTHON, *args, "--out", str(out)], capture_output=True, text=True,  # noqa: E731
                                           env=subprocess_env(), cwd=tmp_path, timeout=120, **kw)
    ref = tmp_path / "ref"
    assert run(ref).returncode == 0
    chunk = min(p.stat().st_size for p in ref.glob("chunk_*.safetensors"))
    out = tmp_path / "t"
    r = run(out, preexec_fn=_limited_file_size(chunk // 2))
    assert r.returncode == 2, r.stderr
    assert one_error_line(r.stderr).startswith("error: disk full or file size limit while writing")
    assert read_manifest(out)["complete"] is False and _leftovers(out) == []
    with pytest.raises(TraceIncompleteError):
        load_trace(out)
    r = run(out)  # the limit is lifted: the same command finishes the trace
    assert r.returncode == 0, r.stderr
    assert_same_trace(ref, out)

# ----------------------------------------------------------------------------- interruption
def test_interrupted_trace_resumes(model, data, reference, tmp_path, monkeypatch, capsys):
    out = tmp_path / "t"
    real = stream.compute_arrays
    calls = {"n": 0}

    def interrupt_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of chunk 2
        return real(*a, **k)

    monkeypatch.setattr(stream, "compute_arrays", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        _write(model, data, out)
    monkeypatch.setattr(stream, "compute_arrays", real)
    with pytest.raises(TraceIncompleteError):
        load_trace(out)
    from interp.cli import main

    assert main(["show", str(out)]) == 2  # the command line says so in one line
    assert "incomplete" in one_error_line(capsys.readouterr().err)
    assert main(["show", str(out), "--allow-incomplete"]) == 0
    assert "incomplete" in capsys.readouterr().out
    with pytest.raises(TraceError, match="resume=True"):
        _write(model, data, out, resume=False)  # never silently starts over
    with pytest.raises(TraceError, match="different trace"):
        _write(model, (data[0][:, ::-1].copy(), data[1]), out)  # other data: refuses to mix
    _write(model, data, out)
    assert_same_trace(reference, out)


def test_kill_9_while_tracing_then_resume(model, data, reference, tiny_ckpts, tmp_path):
    """A trace process killed at a random point leaves a trace that is refused, then resumed to the same result."""
    np.save(tmp_path / "x.npy", data[0])
    np.save(tmp_path / "y.npy", data[1])
    out = tmp_path / "t"
    script = (
        "import sys, time, numpy as np, torch\n"
        "torch.set_num_threads(1)\n"
        "import interp.tracing.stream as s\n"
        "from models.checkpoint import load_checkpoint\n"
        "real = s.compute_arrays\n"
        "def slow(*a, **k):\n"
        "    time.sleep(0.5)\n"
        "    return real(*a, **k)\n"
        "s.compute_arrays = slow\n"
        f"m = load_checkpoint({str(tiny_ckpts / 'hrm')!r})[0]\n"
        f"x, y = np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'y.npy')!r})\n"
        "print('ready', flush=True)\n"
        f"s.trace_to_disk(m, (x, y), {str(out)!r}, chunk_size={CHUNK}, batch_size=4, states='all',"
        " state_puzzles=[0, 4, 9], progress=False)\n"
    )
    p = subprocess.Popen([PYTHON, "-c", script], stdout=subprocess.PIPE, env=subprocess_env(), text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        deadline = time.time() + 60
        while time.time() < deadline:  # wait for the first finished chunk, then kill mid-way
            if (out / MANIFEST).exists() and read_manifest(out)["chunks"]:
                break
            time.sleep(0.02)
        time.sleep(float(np.random.default_rng().uniform(0, 0.3)))
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(timeout=60)
    man = read_manifest(out)
    assert man["complete"] is False and 1 <= len(man["chunks"]) < 4
    with pytest.raises(TraceIncompleteError):
        load_trace(out)
    for c in man["chunks"]:  # whatever the manifest lists is whole
        assert (out / c["file"]).stat().st_size == c["bytes"]
    stale = out / ".chunk_00009.safetensors.tmp-killed"  # what a kill during atomic_write leaves
    stale.write_bytes(b"half a chunk")
    _write(model, data, out)
    assert_same_trace(reference, out)
    assert not list(out.glob(".*.tmp-*")), "resuming removes the temporaries of the killed writer"


# ----------------------------------------------------------------------------- tampering
def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _edit_manifest(d: Path, fn) -> None:
    man = json.loads((d / MANIFEST).read_text())
    fn(man)
    (d / MANIFEST).write_text(json.dumps(man))


def test_tampered_traces_fail_with_one_line(reference, tmp_path):
    from safetensors.numpy import save_file
    from safetensors import safe_open

    def rewrite_chunk(d: Path, change) -> None:
        f0 = d / "chunk_00000.safetensors"
        with safe_open(str(f0), framework="np") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            meta = f.metadata()
        change(tensors)
        save_file(tensors, str(f0), metadata=meta)
        _edit_manifest(d, lambda m: m["chunks"][0].__setitem__("bytes", f0.stat().st_size))  # a careful forger

    some = next(iter(load_trace(reference).arrays))
    cases = {
        "version": (lambda d: _edit_manifest(d, lambda m: m.__setitem__("format", "recurse-interp-trace/99")),
                    "not supported by this version"),
        "foreign": (lambda d: _edit_manifest(d, lambda m: m.__setitem__("format", "numpy")), "not a recurse-interp trace"),
        "garbage": (lambda d: (d / MANIFEST).write_bytes(b"\x00{]"), "not valid JSON"),
        "no_manifest": (lambda d: (d / MANIFEST).unlink(), "no manifest.json"),
        "missing_field": (lambda d: _edit_manifest(d, lambda m: m.pop("arrays")), "lacks the field 'arrays'"),
        "missing_chunk": (lambda d: (d / "chunk_00001.safetensors").unlink(), "missing chunk file"),
        "truncated_chunk": (lambda d: (d / "chunk_00001.safetensors").write_bytes(
            (d / "chunk_00001.safetensors").read_bytes()[:-10]), "truncated or replaced"),
        "corrupt_chunk": (lambda d: (d / "chunk_00002.safetensors").write_bytes(
            b"\xff" * (d / "chunk_00002.safetensors").stat().st_size), "corrupt"),
        "chunk_shape": (lambda d: rewrite_chunk(d, lambda t: t.__setitem__(some, np.concatenate([t[some], t[some]]))),
                        "expected"),
        "chunk_dtype": (lambda d: rewrite_chunk(d, lambda t: t.__setitem__(some, t[some].astype(np.float64))),
                        "expected"),
        "chunk_lacks_array": (lambda d: rewrite_chunk(d, lambda t: t.pop(some)), "lacks array"),
        "state_shape": (lambda d: rewrite_chunk(d, lambda t: t.__setitem__("state/z_H", t["state/z_H"][:, :1])), "has shape"),
        "spec_tail": (lambda d: _edit_manifest(d, lambda m: m["arrays"][some].__setitem__("tail", [7, 7])), "expected"),
        "n_puzzles": (lambda d: _edit_manifest(d, lambda m: m.__setitem__("n_puzzles", 11)), "chunks cover 10 puzzles"),
    }
    for name, (make, pattern) in cases.items():
        d = _copy(reference, tmp_path / name)
        make(d)
        before = tree_digest(d)
        with pytest.raises(TraceError, match=pattern) as exc:  # the structural checks behind the checksums
            load_trace(d, lazy_states=False, verify=False)
        with pytest.raises(TraceError) as exc:
            load_trace(d, lazy_states=False)
        assert "\n" not in str(exc.value), name
        assert "\n" not in str(exc.value), name
        assert tree_digest(d) == before, f"{name}: loading changed the directory"


JUNK = [None, 0, -1, 1e300, "x", [], {}, [1, "a"], {"a": None}, True]


@pytest.mark.parametrize("field", ["complete", "chunks", "meta", "steps", "arrays", "n_puzzles", "state_arrays",
                                   "n_chunks"])
def test_manifest_fields_of_the_wrong_type(reference, tmp_path, field):
    """Any junk value in a manifest field is a TraceError (never a TypeError/KeyError deep inside)."""
    for i, junk in enumerate(JUNK):
        d = _copy(reference, tmp_path / f"{field}{i}")
        _edit_manifest(d, lambda m: m.__setitem__(field, junk))
        try:
            tr = load_trace(d, allow_incomplete=True)
        except TraceError as e:
            assert "\n" not in str(e)
            continue
        tr.load_all_states()  # accepted: then it must be usable and faithful
        assert tr.n_puzzles == N


def test_chunk_entries_of_the_wrong_type(reference, tmp_path):
    for i, junk in enumerate(JUNK + [{"index": 0}, {"start": 0, "stop": 3, "file": "../../etc/passwd", "bytes": 1}]):
        d = _copy(reference, tmp_path / f"c{i}")
        _edit_manifest(d, lambda m: m["chunks"].__setitem__(0, junk))
        with pytest.raises(TraceError):
            load_trace(d, allow_incomplete=True)
