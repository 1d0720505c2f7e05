"""Streaming a whole dataset through the tracer onto disk, chunk by chunk, resumable.

``trace_to_disk`` reads its inputs (``open_data``: a puzzle dataset directory,
memory-mapped, or arrays), runs the tracer one chunk at a time and writes each
finished chunk in the trace directory format of ``interp.tracing.store``, so
memory stays bounded by one chunk and a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from common.io import file_sha256, read_json
from common.labels import IGNORE_LABEL
from interp.tracing.inputs import base_arrays, keep_mask, prepare_inputs
from interp.tracing.memory import check_trace_memory
from interp.tracing.meta import trace_meta
from interp.tracing.model_hash import model_sha256
from interp.tracing.schema import build_schema
from interp.tracing.settings import (
    STATE_DTYPES,
    attention_recording,
    decode_state_list,
    resolve_states,
)
from interp.tracing.store import (
    array_specs,
    json_default,
    prepare_dir,
    record_trace_files,
    verify_chunks,
    steps_records,
    utc_now,
    write_chunk_entry,
    write_manifest,
)
from interp.tracing.trace import FORMAT, TraceError
from interp.tracing.tracer import compute_arrays

DataLike = Union[str, os.PathLike, np.ndarray, torch.Tensor, tuple, dict]


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
                y[y == self.ignore_label] = IGNORE_LABEL
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
    """Inputs from a puzzle dataset directory (``<root>/<split>`` or the split dir), arrays, a tuple or a dict.

    An object with ``slice(a, b)``, ``digest()`` and ``len()`` (e.g.
    ``tasks.puzzles.SudokuFileStream``) is used as it is: a chunk source read forward.
    """
    if all(hasattr(data, a) for a in ("slice", "digest", "__len__", "labels", "task", "source")):
        return data  # type: ignore[return-value]
    if isinstance(data, (str, os.PathLike)):
        d = Path(data)
        if not (d / "dataset.json").exists() and (d / split / "dataset.json").exists():
            d = d / split
        if not (d / "dataset.json").exists():
            raise TraceError(f"{d} is not a puzzle dataset directory (no dataset.json)")
        info = read_json(d / "dataset.json", TraceError)
        if not isinstance(info, dict):
            raise TraceError(f"{d / 'dataset.json'} is not a mapping")
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
                      sort_keys=True, default=json_default)
    return hashlib.sha256(blob.encode()).hexdigest()


def _chunk_ok(out: Path, c: dict[str, Any], fingerprint: str) -> bool:
    p = out / c["file"]
    if not p.is_file() or p.stat().st_size != c.get("bytes"):
        return False
    if not isinstance(c.get("sha256"), str) or file_sha256(p) != c["sha256"]:
        return False  # changed since it was written (or written before checksums): trace it again
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
    attention: bool = False,
    distributed: bool = False,
) -> Path:
    """Trace a whole dataset into ``out_dir`` chunk by chunk, in memory bounded by one chunk.

    ``data``: a puzzle dataset directory (memory-mapped), an inputs array, an
    ``(inputs, labels[, puzzle_ids])`` tuple or a dict. Summaries are always
    written; full states only for ``states`` (``"summary"`` = none, ``"all"``
    or a list of names) and, if given, only for the puzzles ``state_puzzles``.
    ``limit`` traces only the first ``limit`` puzzles; ``confidence=False``
    drops the per-cell confidence arrays (the largest summaries). ``attention=True`` records the
    attention patterns too (``pattern.layer{k}``, kept like states; see ``interp.tracing.tracer.trace``).

    ``distributed=True`` (every rank of an initialised ``torch.distributed`` process group calls it
    with the same arguments, e.g. under ``torchrun``): chunk ``i`` is traced by rank ``i % world``,
    each rank writes its own chunk files, and rank 0 alone writes the manifest, once per round of
    ``world`` chunks after gathering the ranks' chunk entries. The files are those of a one-process
    run (same fingerprint, same chunk assignment by index), and a killed run resumes with any number
    of processes. Only rank 0 shows progress. Returns ``out_dir``.
    """
    kwargs = dict(locals())
    with attention_recording(model, kwargs.pop("attention")):
        return _trace_to_disk(**kwargs)


class PeerError(TraceError):
    """Another rank of a distributed trace failed (that rank reports the error itself)."""


class _Group:
    """The ranks of a distributed trace (one process: rank 0 of 1, no collectives)."""

    def __init__(self, distributed: bool):
        self.rank, self.world = 0, 1
        if distributed:
            import torch.distributed as dist

            if not (dist.is_available() and dist.is_initialized()):
                raise TraceError("distributed=True needs an initialised torch.distributed process group "
                                 "(launch with torchrun)")
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def _failure(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _raise_peers(group: _Group, results: list[Any], own: BaseException | None) -> None:
    """After a collective: re-raise this rank's own error, or stop because another rank failed."""
    if own is not None:
        raise own
    bad = [(r, res[1]) for r, res in enumerate(results) if isinstance(res, tuple) and res and res[0] == "error"]
    if bad:
        r, msg = bad[0]
        raise PeerError(f"rank {r} of {group.world} failed ({msg})")


@dataclass
class _Plan:
    """What every rank of one ``trace_to_disk`` call works from: the data, the schema, what to keep, the identity."""

    src: _Data
    n: int  # puzzles to trace
    schema: Any
    keep_states: list[str]
    decode_states: list[str]
    state_puzzles: np.ndarray | None
    seq_len: int
    settings: dict[str, Any]
    model_hash: str
    fingerprint: str
    chunk_size: int

    @property
    def n_chunks(self) -> int:
        return -(-self.n // self.chunk_size)


def _trace_to_disk(model, data, out_dir, chunk_size, batch_size, states, state_puzzles, labels, puzzle_ids,
                   n_segments, decode_latents, state_dtype, task, checkpoint, split, limit, resume, overwrite,
                   progress, confidence, distributed) -> Path:
    if chunk_size < 1 or batch_size < 1:
        raise TraceError(f"chunk_size and batch_size must be >= 1, got {chunk_size}, {batch_size}")
    if state_dtype not in STATE_DTYPES:
        raise TraceError(f"state_dtype must be one of {sorted(STATE_DTYPES)}, got {state_dtype!r}")
    group = _Group(distributed)
    main = group.rank == 0
    plan = _plan(model, data, labels, puzzle_ids, split, limit, n_segments, states, state_puzzles, decode_latents,
                 chunk_size, state_dtype, confidence)
    out = Path(out_dir)
    task = task if task is not None else plan.src.task
    # rank 0 alone prepares the directory and decides which chunks are already done; the others follow
    man: dict[str, Any] | None = None
    setup: Any = None
    own_err: BaseException | None = None
    if main:
        try:
            man, setup = _start_manifest(model, plan, out, overwrite, resume, state_dtype, task, checkpoint)
        except Exception as e:  # noqa: BLE001 - re-raised below, after telling the other ranks
            own_err, setup = e, ("error", _failure(e))
    setup = group.broadcast(setup)
    _raise_peers(group, [setup], own_err)
    if setup[0] == "complete":
        return out
    done_idx = set(setup[1])
    from common.progress import Progress

    # updated once per batch (not per chunk); a resumed trace starts at the puzzles already written
    with Progress(plan.n, f"trace -> {out.name}", enabled=bool(progress and main),
                  initial=sum(c["stop"] - c["start"] for c in man["chunks"]) if man is not None else 0) as bar:  # only rank 0 holds the manifest
        _trace_rounds(model, plan, group, out, man, done_idx, batch_size, state_dtype, confidence,
                      bar if bar.enabled else None)
    if main:
        man["complete"] = True
        man["updated"] = utc_now()
        write_manifest(out, man)
        record_trace_files(out)
    group.gather(None)  # every rank returns once the manifest is complete
    return out


def _plan(model, data, labels, puzzle_ids, split, limit, n_segments, states, state_puzzles, decode_latents,
          chunk_size, state_dtype, confidence) -> _Plan:
    """Open the data, check the settings and the memory one chunk needs, and fingerprint the run."""
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
    x_peek = src.slice(0, 1)[0]
    kept = 0 if not keep_states else (min(chunk_size, N) if sp is None else int(np.bincount(sp // chunk_size).max(initial=0)))
    check_trace_memory(model, schema, keep_states, kept, min(chunk_size, N), int(np.shape(x_peek)[1]),
                       len(decode_states), f"one chunk of {min(chunk_size, N)}")
    settings = {"n_segments": schema.n_segments, "states": keep_states, "decode_latents": decode_latents,
                "state_puzzles": None if sp is None else sp.tolist(), "chunk_size": chunk_size, "n": N,
                "state_dtype": state_dtype, "confidence": confidence}
    m_hash = model_sha256(model)
    fingerprint = _fingerprint(m_hash, src.digest(), settings)
    return _Plan(src, N, schema, keep_states, decode_states, sp, np.shape(x_peek)[1], settings, m_hash, fingerprint,
                 chunk_size)


def _start_manifest(model, plan: _Plan, out: Path, overwrite: bool, resume: bool, state_dtype: str, task: Any,
                    checkpoint) -> tuple[dict[str, Any] | None, tuple]:
    """Rank 0: prepare ``out`` and write the manifest listing the chunks already done.

    Returns (manifest, setup) where setup, broadcast to every rank, is ``("complete", None)`` for a finished
    trace or ``("go", done chunk indices)``.
    """
    man = prepare_dir(out, plan.fingerprint, overwrite, resume)
    if man is not None and man.get("complete"):
        try:  # a complete trace is reused only after every chunk checks out (hash, size, place, fingerprint)
            verify_chunks(out, man, sorted(man["chunks"], key=lambda c: c["start"]), verify=True)
            if sum(c["stop"] - c["start"] for c in man["chunks"]) != man["n_puzzles"]:
                raise TraceError("its chunks do not cover every puzzle")
            print(f"{out}: already complete, verified ({len(man['chunks'])} chunk(s), SHA-256)", file=sys.stderr)
            return man, ("complete", None)
        except TraceError as e:
            why = str(e).split(": ", 1)[-1]
            print(f"note: {out} was marked complete but {why}; tracing the missing or damaged chunks again",
                  file=sys.stderr)
    done = {c["index"]: c for c in (man or {}).get("chunks", []) if _chunk_ok(out, c, plan.fingerprint)}
    schema, src = plan.schema, plan.src
    meta = trace_meta(model, schema, seq_len=plan.seq_len,
                      labelled=src.labels is not None or schema.kind == "lm",
                      decode_states=plan.decode_states, stored=plan.keep_states, state_dtype=state_dtype, task=task,
                      checkpoint=checkpoint, extra={"source": src.source}, model_hash=plan.model_hash)
    man = {
        "format": FORMAT, "complete": False, "fingerprint": plan.fingerprint, "n_puzzles": plan.n,
        "chunk_size": plan.chunk_size, "n_chunks": plan.n_chunks, "chunks": [done[i] for i in sorted(done)],
        "meta": meta, "steps": steps_records(schema.table()), "arrays": (man or {}).get("arrays", {}),
        "state_arrays": (man or {}).get("state_arrays", {}), "updated": utc_now(),
    }
    write_manifest(out, man)
    return man, ("go", sorted(done))


def _trace_rounds(model, plan: _Plan, group: _Group, out: Path, man: dict[str, Any] | None, done_idx: set[int],
                  batch_size: int, state_dtype: str, confidence: bool, bar: Any) -> None:
    """Trace the chunks not yet done, ``world`` at a time (chunk i on rank i % world); rank 0 records each round."""
    todo = [ci for ci in range(plan.n_chunks) if ci not in done_idx]
    rounds = sorted({ci // group.world for ci in todo})
    for rnd in rounds:
        ci = rnd * group.world + group.rank
        result: Any = None
        own_err = None
        if ci < plan.n_chunks and ci not in done_idx:
            try:
                result = ("ok", *_trace_chunk(model, plan.schema, plan.src, out, ci, plan.chunk_size, plan.n,
                                              plan.keep_states, plan.state_puzzles, plan.decode_states, batch_size,
                                              state_dtype, confidence, plan.fingerprint, bar))
            except Exception as e:  # noqa: BLE001 - re-raised below, after telling the other ranks
                own_err, result = e, ("error", _failure(e))
        results = group.gather(result)
        _raise_peers(group, results, own_err)
        if group.rank == 0:
            _record_round(out, man, results, group.rank, bar)


def _record_round(out: Path, man: dict[str, Any], results: list[Any], rank: int, bar: Any) -> None:
    """Rank 0: add a round's chunk entries (and array specs) to the manifest and write it."""
    for r, res in enumerate(results):
        if res is None:
            continue
        _, entry, specs, st_specs = res
        man["arrays"] = specs
        if st_specs:
            man["state_arrays"] = st_specs
        man["chunks"].append(entry)
        if bar is not None and r != rank:
            bar.update(entry["stop"] - entry["start"])
    man["chunks"].sort(key=lambda c: c["index"])
    man["updated"] = utc_now()
    write_manifest(out, man)


def _trace_chunk(model, schema, src, out, ci, chunk_size, N, keep_states, sp, decode_states, batch_size, state_dtype,
                 confidence, fingerprint, bar):
    """Trace chunk ``ci`` and write its file: (manifest entry, array specs, state array specs)."""
    a, b = ci * chunk_size, min(N, (ci + 1) * chunk_size)
    xs, ys, ps = src.slice(a, b)
    x, y, pid = prepare_inputs(model, xs, ys, ps)
    keep = keep_mask(b - a, keep_states, sp, offset=a)
    arrays, st = compute_arrays(model, schema, x, y, pid, keep, keep_states, decode_states, batch_size,
                                STATE_DTYPES[state_dtype], progress=bar, confidence=confidence)
    arrays = {**base_arrays(x, y, pid, offset=a), **arrays}
    tensors = dict(arrays)
    if st:
        tensors.update(st)
        tensors["state_index"] = (np.flatnonzero(keep) + a).astype(np.int64)
    entry = write_chunk_entry(out, ci, a, b, tensors, fingerprint, int(keep.sum()))
    return entry, array_specs(arrays), array_specs(st) if st else {}


__all__ = ["trace_to_disk", "open_data", "DataLike", "PeerError"]
