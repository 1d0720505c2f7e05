"""Traces on disk: chunked safetensors files plus a JSON manifest.

Layout of a trace directory::

    manifest.json             format, completeness, fingerprint, metadata, step table,
                              array dtypes/shapes, the list of finished chunks
    chunk_00000.safetensors   puzzles [0, chunk_size): every per-puzzle array,
    chunk_00001.safetensors   plus full states of the selected puzzles in that range
    ...

Why safetensors and not npz: the same no-pickle format as our checkpoints,
a JSON header that gives every array's dtype and shape without reading the
data (``load_trace`` validates shapes and sizes lazily-loaded states that
way), and direct reads of one named array from a file. npz would need a zip
directory walk and, when compressed, decompression of the whole member; its
only gain, compression, is small for float states.

Crash safety: every chunk is written to a temporary file and renamed into
place; the manifest is rewritten atomically after each chunk with
``"complete": false`` and a final time with ``"complete": true``, so a reader
can always tell a finished trace from an interrupted one. Re-running
``trace_to_disk`` with the same model, data and settings resumes: chunks the
manifest lists (and whose files check out) are skipped.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file
from torch import nn

from common.io import atomic_write, atomic_write_text
from interp.tracing.schema import STEP_COLUMNS, build_schema
from interp.tracing.tracer import (
    _DTYPES,
    compute_arrays,
    base_arrays,
    decode_state_list,
    keep_mask,
    model_sha256,
    prepare_inputs,
    resolve_states,
    trace_meta,
)
from interp.tracing.trace import FORMAT, MemoryStates, Trace, TraceError

MANIFEST = "manifest.json"
DataLike = Union[str, os.PathLike, np.ndarray, torch.Tensor, tuple, dict]


class TraceIncompleteError(TraceError):
    """The trace directory was written by a run that did not finish."""


# ----------------------------------------------------------------------------- small I/O helpers
def _atomic_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, default=_json_default), fsync=True, mkdir=False)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _atomic_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> int:
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=metadata), fsync=True, mkdir=False)
    return path.stat().st_size


def _chunk_name(i: int) -> str:
    return f"chunk_{i:05d}.safetensors"


def _specs(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {k: {"dtype": str(v.dtype), "tail": list(v.shape[1:])} for k, v in arrays.items()}


def _steps_records(steps: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(steps.to_json(orient="records"))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a trace directory, with format checks."""
    d = Path(out_dir)
    if not d.is_dir():
        raise TraceError(f"trace directory not found: {d}")
    p = d / MANIFEST
    if not p.exists():
        raise TraceError(f"{d} has no {MANIFEST}: not a trace directory (or its writer stopped before the first chunk)")
    try:
        man = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TraceError(f"{p} is not valid JSON ({e})") from None
    fmt = man.get("format") if isinstance(man, dict) else None
    if not isinstance(fmt, str) or not fmt.startswith("recurse-interp-trace/"):
        raise TraceError(f"{p} is not a recurse-interp trace manifest (format {fmt!r})")
    if fmt != FORMAT:
        raise TraceError(f"{d}: trace format {fmt!r} is not supported by this version (expected {FORMAT!r})")
    for key in ("complete", "chunks", "meta", "steps", "arrays", "n_puzzles"):
        if key not in man:
            raise TraceError(f"{p} lacks the field {key!r}")
    _check_manifest_types(man, p)
    return man


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_manifest_types(man: dict[str, Any], p: Path) -> None:
    """Field types of a manifest (a damaged or hand-edited one fails here, not deep inside ``load_trace``)."""
    def bad(what: str) -> TraceError:
        return TraceError(f"{p}: {what}")

    if not isinstance(man["complete"], bool):
        raise bad(f"'complete' must be true or false, got {man['complete']!r}")
    if not _is_int(man["n_puzzles"]) or man["n_puzzles"] < 0:
        raise bad(f"'n_puzzles' must be a count, got {man['n_puzzles']!r}")
    if "n_chunks" in man and (not _is_int(man["n_chunks"]) or man["n_chunks"] < 0):
        raise bad(f"'n_chunks' must be a count, got {man['n_chunks']!r}")
    if not isinstance(man["meta"], dict):
        raise bad("'meta' must be a mapping")
    if not isinstance(man["steps"], list) or not all(isinstance(r, dict) for r in man["steps"]):
        raise bad("'steps' must be a list of step records")
    for key in ("arrays", "state_arrays"):
        specs = man.get(key, {})
        ok = isinstance(specs, dict) and all(
            isinstance(v, dict) and isinstance(v.get("dtype"), str) and isinstance(v.get("tail"), list)
            and all(_is_int(n) and n >= 0 for n in v["tail"]) for v in specs.values())
        if not ok:
            raise bad(f"'{key}' must map array names to {{dtype, tail}} specs")
    if not isinstance(man["chunks"], list):
        raise bad("'chunks' must be a list")
    for i, c in enumerate(man["chunks"]):
        ok = (isinstance(c, dict) and all(_is_int(c.get(k)) for k in ("index", "start", "stop", "bytes"))
              and _is_int(c.get("n_state_puzzles", 0)) and 0 <= c["start"] <= c["stop"]
              and c.get("file") == _chunk_name(c["index"]))
        if not ok:
            raise bad(f"chunk entry {i} is malformed: {str(c)[:120]}")


# ----------------------------------------------------------------------------- data sources
class _Data:
    """Inputs/labels/puzzle ids that can be sliced chunk by chunk (memory-mapped for dataset dirs)."""

    def __init__(self, inputs, labels=None, puzzle_ids=None, task: Any = None, ignore_label: int | None = None,
                 source: str = "arrays"):
        self.inputs, self.labels, self.puzzle_ids = inputs, labels, puzzle_ids
        self.task, self.ignore_label, self.source = task, ignore_label, source
        if np.ndim(inputs) != 2:
            raise TraceError(f"inputs must be a [N, L] array, got shape {np.shape(inputs)}")
        if labels is not None and np.shape(labels) != np.shape(inputs):
            raise TraceError(f"labels must have the inputs' shape {np.shape(inputs)}, got {np.shape(labels)}")
        if puzzle_ids is not None and len(puzzle_ids) != len(inputs):
            raise TraceError(f"puzzle_ids must have {len(inputs)} entries, got {len(puzzle_ids)}")

    def __len__(self) -> int:
        return int(np.shape(self.inputs)[0])

    def slice(self, a: int, b: int):
        x = np.array(self.inputs[a:b])  # a copy: memory maps are read-only
        y = None
        if self.labels is not None:
            y = np.asarray(self.labels[a:b]).astype(np.int64)
            if self.ignore_label is not None:
                y[y == self.ignore_label] = -100
        pid = None if self.puzzle_ids is None else np.asarray(self.puzzle_ids[a:b])
        return x, y, pid

    def digest(self) -> str:
        h = hashlib.sha256()
        for a in (self.inputs, self.labels, self.puzzle_ids):
            if a is None:
                h.update(b"none")
                continue
            arr = np.asarray(a)
            h.update(f"{arr.dtype}|{arr.shape}|".encode())
            step = 1 << 16
            for i in range(0, len(arr), step):
                h.update(np.ascontiguousarray(arr[i:i + step]).tobytes())
        h.update(str(self.ignore_label).encode())
        return h.hexdigest()


def _np(a):
    return a.cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def open_data(data: DataLike, labels=None, puzzle_ids=None, split: str = "test") -> _Data:
    """Inputs from a puzzle dataset directory (``<root>/<split>`` or the split dir), arrays, a tuple or a dict."""
    if isinstance(data, (str, os.PathLike)):
        d = Path(data)
        if not (d / "dataset.json").exists() and (d / split / "dataset.json").exists():
            d = d / split
        if not (d / "dataset.json").exists():
            raise TraceError(f"{d} is not a puzzle dataset directory (no dataset.json)")
        info = json.loads((d / "dataset.json").read_text())
        try:
            x = np.load(d / "all__inputs.npy", mmap_mode="r")
            y = np.load(d / "all__labels.npy", mmap_mode="r") if (d / "all__labels.npy").exists() else None
        except (OSError, ValueError) as e:
            raise TraceError(f"cannot read the arrays of dataset {d}: {e}") from None
        pid = None
        ids_p, idx_p = d / "all__puzzle_identifiers.npy", d / "all__puzzle_indices.npy"
        if ids_p.exists() and idx_p.exists():
            ids, idx = np.load(ids_p), np.load(idx_p)
            owner = np.searchsorted(idx, np.arange(len(x)), side="right") - 1
            pid = ids[np.clip(owner, 0, len(ids) - 1)]
        task = info.get("task")
        return _Data(x, y, pid, task=task, ignore_label=info.get("ignore_label_id"), source=str(d))
    if isinstance(data, dict):
        return _Data(_np(data["inputs"]), None if data.get("labels") is None else _np(data["labels"]),
                     None if data.get("puzzle_identifiers", data.get("puzzle_ids")) is None
                     else _np(data.get("puzzle_identifiers", data.get("puzzle_ids"))), task=data.get("task"))
    if isinstance(data, tuple):
        parts = [None if a is None else _np(a) for a in data] + [None, None]
        return _Data(parts[0], parts[1], parts[2])
    x = _np(data)
    return _Data(x, None if labels is None else _np(labels), None if puzzle_ids is None else _np(puzzle_ids))


# ----------------------------------------------------------------------------- writing
def _fingerprint(model_hash: str, data_hash: str, settings: dict[str, Any]) -> str:
    blob = json.dumps({"format": FORMAT, "model": model_hash, "data": data_hash, "settings": settings},
                      sort_keys=True, default=_json_default)
    return hashlib.sha256(blob.encode()).hexdigest()


def _prepare_dir(out: Path, fingerprint: str, overwrite: bool, resume: bool) -> dict[str, Any] | None:
    """Returns the manifest to resume from (or None for a fresh start)."""
    if out.exists() and not out.is_dir():
        raise TraceError(f"{out} exists and is not a directory")
    if overwrite and out.exists():
        if (out / MANIFEST).exists() or not any(out.iterdir()):
            shutil.rmtree(out)
        else:
            raise TraceError(f"refusing to overwrite {out}: it is not empty and holds no trace manifest")
    if not out.exists():
        out.mkdir(parents=True)
        return None
    if not (out / MANIFEST).exists():
        if any(p for p in out.iterdir() if not p.name.startswith(".")):
            raise TraceError(f"{out} is not empty and holds no trace manifest; choose another directory")
        _remove_stale_temporaries(out)
        return None
    man = read_manifest(out)
    if man.get("fingerprint") != fingerprint:
        raise TraceError(f"{out} holds a different trace (other model, data or settings); "
                         "pass overwrite=True or choose another directory")
    if not resume:
        raise TraceError(f"{out} already holds this trace; pass resume=True to continue it or overwrite=True")
    _remove_stale_temporaries(out)
    return man


def _remove_stale_temporaries(out: Path) -> None:
    """Delete ``.<name>.tmp-*`` files a killed writer left behind (readers never look at them)."""
    for p in out.glob(".*.tmp-*"):
        if p.is_file():
            p.unlink(missing_ok=True)


def _chunk_ok(out: Path, c: dict[str, Any], fingerprint: str) -> bool:
    p = out / c["file"]
    if not p.exists() or p.stat().st_size != c.get("bytes"):
        return False
    try:
        with safe_open(str(p), framework="np") as f:
            return (f.metadata() or {}).get("fingerprint") == fingerprint
    except (SafetensorError, OSError):
        return False


def trace_to_disk(
    model: nn.Module,
    data: DataLike,
    out_dir: str | os.PathLike,
    chunk_size: int = 1024,
    batch_size: int = 64,
    states: str | Sequence[str] | None = "summary",
    state_puzzles: Sequence[int] | np.ndarray | None = None,
    labels=None,
    puzzle_ids=None,
    n_segments: int | None = None,
    decode_latents: bool = True,
    state_dtype: str = "float32",
    task: Any = None,
    checkpoint: str | os.PathLike | None = None,
    split: str = "test",
    limit: int | None = None,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    confidence: bool = True,
) -> Path:
    """Trace a whole dataset into ``out_dir`` chunk by chunk, in memory bounded by one chunk.

    ``data``: a puzzle dataset directory (memory-mapped), an inputs array, an
    ``(inputs, labels[, puzzle_ids])`` tuple or a dict. Summaries are always
    written; full states only for ``states`` (``"summary"`` = none, ``"all"``
    or a list of names) and, if given, only for the puzzles ``state_puzzles``.
    ``limit`` traces only the first ``limit`` puzzles; ``confidence=False``
    drops the per-cell confidence arrays (the largest summaries). Returns ``out_dir``.
    """
    if chunk_size < 1 or batch_size < 1:
        raise TraceError(f"chunk_size and batch_size must be >= 1, got {chunk_size}, {batch_size}")
    if state_dtype not in _DTYPES:
        raise TraceError(f"state_dtype must be one of {sorted(_DTYPES)}, got {state_dtype!r}")
    src = open_data(data, labels, puzzle_ids, split)
    N = len(src) if limit is None else min(len(src), int(limit))
    if N == 0:
        raise TraceError("no puzzles to trace")
    schema = build_schema(model, n_segments)
    keep_states = resolve_states(schema, states)
    decode_states = decode_state_list(schema, decode_latents, model)
    sp = None if state_puzzles is None else np.unique(np.asarray(state_puzzles, dtype=np.int64))
    if sp is not None and len(sp) and (sp.min() < 0 or sp.max() >= N):
        raise TraceError(f"state_puzzles must lie in [0, {N}), got [{sp.min()}, {sp.max()}]")
    settings = {"n_segments": schema.n_segments, "states": keep_states, "decode_latents": decode_latents,
                "state_puzzles": None if sp is None else sp.tolist(), "chunk_size": chunk_size, "n": N,
                "state_dtype": state_dtype, "confidence": confidence}
    m_hash = model_sha256(model)
    fingerprint = _fingerprint(m_hash, src.digest(), settings)
    out = Path(out_dir)
    man = _prepare_dir(out, fingerprint, overwrite, resume)
    if man is not None and man.get("complete"):
        return out
    n_chunks = -(-N // chunk_size)
    done = {c["index"]: c for c in (man or {}).get("chunks", []) if _chunk_ok(out, c, fingerprint)}
    task = task if task is not None else src.task
    x0, _, _ = src.slice(0, 1)
    meta = trace_meta(model, schema, seq_len=x0.shape[1], labelled=src.labels is not None or schema.kind == "lm",
                      decode_states=decode_states, stored=keep_states, state_dtype=state_dtype, task=task,
                      checkpoint=checkpoint, extra={"source": src.source})
    man = {
        "format": FORMAT, "complete": False, "fingerprint": fingerprint, "n_puzzles": N, "chunk_size": chunk_size,
        "n_chunks": n_chunks, "chunks": [done[i] for i in sorted(done)], "meta": meta,
        "steps": _steps_records(schema.table()), "arrays": (man or {}).get("arrays", {}),
        "state_arrays": (man or {}).get("state_arrays", {}), "updated": _now(),
    }
    _atomic_json(out / MANIFEST, man)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=N, unit="puzzle", desc=f"trace -> {out.name}", initial=sum(c["stop"] - c["start"] for c in done.values()))
    try:
        for ci in range(n_chunks):
            if ci in done:
                continue
            a, b = ci * chunk_size, min(N, (ci + 1) * chunk_size)
            xs, ys, ps = src.slice(a, b)
            x, y, pid = prepare_inputs(model, xs, ys, ps)
            keep = keep_mask(b - a, keep_states, sp, offset=a)
            arrays, st = compute_arrays(model, schema, x, y, pid, keep, keep_states, decode_states, batch_size,
                                        _DTYPES[state_dtype], progress=bar, confidence=confidence)
            arrays = {**base_arrays(x, y, pid, offset=a), **arrays}
            tensors = dict(arrays)
            if st:
                tensors.update(st)
                tensors["state_index"] = (np.flatnonzero(keep) + a).astype(np.int64)
            size = _atomic_safetensors(out / _chunk_name(ci), tensors,
                                       {"fingerprint": fingerprint, "chunk": str(ci), "start": str(a), "stop": str(b)})
            man["arrays"] = _specs(arrays)
            if st:
                man["state_arrays"] = _specs(st)
            man["chunks"].append({"index": ci, "file": _chunk_name(ci), "start": a, "stop": b, "bytes": size,
                                  "n_state_puzzles": int(keep.sum())})
            man["chunks"].sort(key=lambda c: c["index"])
            man["updated"] = _now()
            _atomic_json(out / MANIFEST, man)
    finally:
        if bar is not None:
            bar.close()
    man["complete"] = True
    man["updated"] = _now()
    _atomic_json(out / MANIFEST, man)
    return out


def save_trace(trace: Trace, out_dir: str | os.PathLike, chunk_size: int = 1024, overwrite: bool = False) -> Path:
    """Write an in-memory ``Trace`` as a (complete) trace directory."""
    out = Path(out_dir)
    h = hashlib.sha256(json.dumps(trace.meta, sort_keys=True, default=_json_default).encode())
    h.update(np.ascontiguousarray(trace.inputs).tobytes())
    fingerprint = "saved-" + h.hexdigest()
    if out.exists() and (out / MANIFEST).exists() and not overwrite:
        raise TraceError(f"{out} already holds a trace; pass overwrite=True")
    _prepare_dir(out, fingerprint, overwrite=True, resume=False)
    trace.load_all_states()
    N = trace.n_puzzles
    idx = trace.state_index
    man = {"format": FORMAT, "complete": False, "fingerprint": fingerprint, "n_puzzles": N, "chunk_size": chunk_size,
           "n_chunks": -(-N // chunk_size), "chunks": [], "meta": trace.meta, "steps": _steps_records(trace.steps),
           "arrays": _specs(trace.arrays), "state_arrays": {}, "updated": _now()}
    _atomic_json(out / MANIFEST, man)
    st_keys = trace._states.keys()
    for ci in range(man["n_chunks"]):
        a, b = ci * chunk_size, min(N, (ci + 1) * chunk_size)
        tensors = {k: v[a:b] for k, v in trace.arrays.items()}
        rows = np.flatnonzero((idx >= a) & (idx < b))
        if len(rows) and st_keys:
            for k in st_keys:
                tensors[k] = trace._states.get(k)[rows]
            tensors["state_index"] = idx[rows].astype(np.int64)
            man["state_arrays"] = {k: {"dtype": str(tensors[k].dtype), "tail": list(tensors[k].shape[1:])}
                                   for k in st_keys}
        size = _atomic_safetensors(out / _chunk_name(ci), tensors,
                                   {"fingerprint": fingerprint, "chunk": str(ci), "start": str(a), "stop": str(b)})
        man["chunks"].append({"index": ci, "file": _chunk_name(ci), "start": a, "stop": b, "bytes": size,
                              "n_state_puzzles": int(len(rows))})
    man["complete"] = True
    _atomic_json(out / MANIFEST, man)
    return out


# ----------------------------------------------------------------------------- reading
class ChunkStates:
    """Full states read on demand from the chunk files (one array at a time)."""

    def __init__(self, root: Path, chunks: list[dict[str, Any]], specs: dict[str, dict[str, Any]]):
        self.root, self.specs = root, specs
        self.chunks = [c for c in chunks if c.get("n_state_puzzles", 0) > 0]
        parts = []
        for c in self.chunks:
            with safe_open(str(root / c["file"]), framework="np") as f:
                parts.append(f.get_tensor("state_index") if "state_index" in f.keys() else np.zeros(0, np.int64))
        self.index = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def keys(self) -> list[str]:
        return list(self.specs) if len(self.index) else []

    def shape(self, key: str) -> tuple[int, ...]:
        return (len(self.index), *self.specs[key]["tail"])

    def get(self, key: str) -> np.ndarray:
        parts = []
        for c in self.chunks:
            with safe_open(str(self.root / c["file"]), framework="np") as f:
                parts.append(f.get_tensor(key))
        return np.concatenate(parts)


def load_trace(trace_dir: str | os.PathLike, allow_incomplete: bool = False, lazy_states: bool = True) -> Trace:
    """Read a trace directory (no model needed); validates format version, sizes, dtypes and shapes.

    An interrupted trace raises ``TraceIncompleteError`` unless ``allow_incomplete``
    (then the finished chunks are returned). Full states stay on disk until
    ``trace.states(name)`` asks for them, unless ``lazy_states=False``.
    """
    root = Path(trace_dir)
    man = read_manifest(root)
    chunks = sorted(man["chunks"], key=lambda c: c["start"])
    if not man["complete"]:
        if not allow_incomplete:
            raise TraceIncompleteError(
                f"trace at {root} is incomplete ({len(chunks)} of {man.get('n_chunks', '?')} chunks written); "
                "re-run trace_to_disk with the same arguments to resume, or pass allow_incomplete=True")
        # keep only the contiguous prefix of finished chunks so puzzle indices stay 0..n-1
        prefix, nxt = [], 0
        for c in chunks:
            if c["start"] != nxt:
                break
            prefix.append(c)
            nxt = c["stop"]
        chunks = prefix
    elif sum(c["stop"] - c["start"] for c in chunks) != man["n_puzzles"]:
        raise TraceError(f"trace at {root}: chunks cover {sum(c['stop'] - c['start'] for c in chunks)} puzzles, "
                         f"manifest says {man['n_puzzles']}")
    if not chunks:
        raise TraceError(f"trace at {root} holds no finished chunk")
    specs, st_specs = man["arrays"], man.get("state_arrays", {})
    parts: dict[str, list[np.ndarray]] = {k: [] for k in specs}
    for c in chunks:
        p = root / c["file"]
        if not p.exists():
            raise TraceError(f"trace at {root}: missing chunk file {c['file']}")
        if p.stat().st_size != c["bytes"]:
            raise TraceError(f"trace at {root}: {c['file']} has {p.stat().st_size} bytes, manifest says {c['bytes']} "
                             "(truncated or replaced)")
        try:
            with safe_open(str(p), framework="np") as f:
                keys = set(f.keys())
                for k, spec in specs.items():
                    if k not in keys:
                        raise TraceError(f"trace at {root}: {c['file']} lacks array {k!r}")
                    a = f.get_tensor(k)
                    n = c["stop"] - c["start"]
                    if list(a.shape) != [n, *spec["tail"]] or str(a.dtype) != spec["dtype"]:
                        raise TraceError(f"trace at {root}: {c['file']}:{k} is {a.dtype}{list(a.shape)}, "
                                         f"expected {spec['dtype']}{[n, *spec['tail']]}")
                    parts[k].append(a)
                for k, spec in st_specs.items():
                    if c.get("n_state_puzzles", 0) > 0:
                        if k not in keys:
                            raise TraceError(f"trace at {root}: {c['file']} lacks state array {k!r}")
                        shape = f.get_slice(k).get_shape()
                        if list(shape) != [c["n_state_puzzles"], *spec["tail"]]:
                            raise TraceError(f"trace at {root}: {c['file']}:{k} has shape {shape}, expected "
                                             f"{[c['n_state_puzzles'], *spec['tail']]}")
        except SafetensorError as e:
            raise TraceError(f"trace at {root}: {c['file']} is corrupt ({e})") from None
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    steps = pd.DataFrame(man["steps"])
    missing = [c for c in STEP_COLUMNS if c not in steps.columns]
    if missing:
        raise TraceError(f"trace at {root}: step table lacks columns {missing}")
    store = ChunkStates(root, chunks, st_specs) if st_specs else MemoryStates()
    meta = dict(man["meta"])
    meta["complete"] = bool(man["complete"])
    tr = Trace(steps, arrays, meta, store)
    if not lazy_states:
        tr.load_all_states()
    return tr


__all__ = ["trace_to_disk", "save_trace", "load_trace", "read_manifest", "open_data", "TraceIncompleteError",
           "MANIFEST"]
