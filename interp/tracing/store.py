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

Integrity: every chunk entry records the chunk file's SHA-256 and size, and
``manifest["integrity"]["meta_sha256"]`` hashes the manifest's metadata (format,
counts, task, step table, array specs); each chunk also carries its index,
range and the trace fingerprint in its own safetensors metadata. ``load_trace``
checks all of it and refuses a tampered trace (flipped bytes, swapped,
duplicated or re-listed chunks, edited metadata) with one line naming the
chunk; ``verify=False`` skips the hashes (structure and sizes are still checked).

Crash safety: every chunk is written to a temporary file and renamed into
place; the manifest is rewritten atomically after each chunk with
``"complete": false`` and a final time with ``"complete": true``, so a reader
can always tell a finished trace from an interrupted one. Re-running
``trace_to_disk`` (``interp.tracing.stream``, which writes this format while
the tracer runs) with the same model, data and settings resumes: chunks the
manifest lists (and whose files check out) are skipped.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors import SafetensorError, safe_open

from common.io import atomic_write, atomic_write_text, ensure_out_not_symlink, file_sha256, read_json
from common.outputs import PROVENANCE, record_outputs, recorded_files, unowned_files
from interp.tracing.schema import STEP_COLUMNS
from interp.tracing.trace import FORMAT, MemoryStates, Trace, TraceError

MANIFEST = "manifest.json"
VIEWER = "viewer.html"
_META_KEYS = ("format", "fingerprint", "n_puzzles", "chunk_size", "n_chunks", "meta", "steps", "arrays", "state_arrays")
_LEGACY_OWN = re.compile(r"^(viewer\.html|plotly\.min\.js|attention_mass\.csv|attention_heads\.png)$")
_CHUNK = re.compile(r"^chunk_\d{5}\.safetensors$")
_STALE_TMP = re.compile(r"^(\.tmp[A-Za-z0-9]{6}|\..+\.tmp-.+)$")  # safetensors' own, and atomic_write's


class TraceIncompleteError(TraceError):
    """The trace directory was written by a run that did not finish."""


# ----------------------------------------------------------------------------- small I/O helpers
def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, default=json_default), fsync=True, mkdir=False)


def json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_ST_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32", "int16": "I16",
              "int8": "I8", "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8", "bool": "BOOL"}


def save_file(tensors: dict[str, np.ndarray], filename: str, metadata: dict[str, str] | None = None) -> None:
    """A safetensors file whose bytes depend only on its contents (``safetensors.numpy.save_file`` orders the
    metadata in a per-process hash order, so two runs of one trace would differ in their header bytes and
    SHA-256). Layout as the reference writer: tensors by alignment then name, header padded to 8 bytes."""
    arrays = {}
    for k, v in tensors.items():
        a = np.ascontiguousarray(v)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        if a.dtype.name not in _ST_DTYPES:
            raise TraceError(f"cannot store array {k!r} of dtype {a.dtype} in a safetensors chunk")
        arrays[k] = a
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(metadata[k]) for k in sorted(metadata)}
    off = 0
    for k in order:
        n = arrays[k].nbytes
        header[k] = {"dtype": _ST_DTYPES[arrays[k].dtype.name], "shape": list(arrays[k].shape), "data_offsets": [off, off + n]}
        off += n
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(filename, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for k in order:
            f.write(arrays[k].reshape(-1).view(np.uint8).data)


def write_chunk(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> int:
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=metadata), fsync=True, mkdir=False)
    return path.stat().st_size


def write_chunk_entry(out: Path, index: int, start: int, stop: int, tensors: dict[str, np.ndarray], fingerprint: str,
                      n_state_puzzles: int) -> dict[str, Any]:
    """Write chunk ``index`` (puzzles ``[start, stop)``) and return its manifest entry with size and SHA-256."""
    path = out / chunk_name(index)
    size = write_chunk(path, tensors, {"fingerprint": fingerprint, "chunk": str(index), "start": str(start),
                                       "stop": str(stop)})
    return {"index": index, "file": chunk_name(index), "start": start, "stop": stop, "bytes": size,
            "sha256": file_sha256(path), "n_state_puzzles": int(n_state_puzzles)}


def meta_sha256(man: dict[str, Any]) -> str:
    """SHA-256 of the manifest's metadata fields (what an edit of grid size, task or chunk count would change)."""
    blob = json.dumps({k: man.get(k) for k in _META_KEYS}, sort_keys=True, default=json_default)
    return hashlib.sha256(blob.encode()).hexdigest()


def write_manifest(out: Path, man: dict[str, Any]) -> None:
    """Write ``man`` atomically with its metadata hash (``integrity``)."""
    man["integrity"] = {"algorithm": "sha256", "meta_sha256": meta_sha256(man)}
    write_json(out / MANIFEST, man)


def chunk_name(i: int) -> str:
    return f"chunk_{i:05d}.safetensors"


def array_specs(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {k: {"dtype": str(v.dtype), "tail": list(v.shape[1:])} for k, v in arrays.items()}


def steps_records(steps: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(steps.to_json(orient="records"))


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a trace directory, with format and type checks (a bounded regular file, bounded nesting)."""
    d = Path(out_dir)
    if not d.is_dir():
        raise TraceError(f"trace directory not found: {d}")
    p = d / MANIFEST
    if not p.exists():
        raise TraceError(f"{d} has no {MANIFEST}: not a trace directory (or its writer stopped before the first chunk)")
    man = read_json(p, TraceError)
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
    for key in ("n_chunks", "chunk_size"):
        if key in man and (not _is_int(man[key]) or man[key] < (1 if key == "chunk_size" else 0)):
            raise bad(f"{key!r} must be a count, got {str(man[key])[:60]!r}")
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
    _check_meta_values(man, bad)
    if not isinstance(man["chunks"], list):
        raise bad("'chunks' must be a list")
    for i, c in enumerate(man["chunks"]):
        ok = (isinstance(c, dict) and all(_is_int(c.get(k)) for k in ("index", "start", "stop", "bytes"))
              and _is_int(c.get("n_state_puzzles", 0)) and 0 <= c["start"] <= c["stop"]
              and c["index"] >= 0 and c.get("file") == chunk_name(c["index"])
              and (c.get("sha256") is None or isinstance(c.get("sha256"), str)))
        if not ok:
            raise bad(f"chunk entry {i} is malformed: {str(c)[:120]}")


MAX_SEQ_LEN = 1 << 20  # tokens per puzzle a trace may claim (a forged manifest cannot claim more)
_GRID_LIMIT = {"sudoku": 25, "maze": 1024, "arc": 30}


def _check_meta_values(man: dict[str, Any], bad: Any) -> None:
    """The metadata values the readers trust (sizes, grid, step count), checked against the schema whatever the
    manifest's hash says (the hash is recomputable by anyone who edits the manifest)."""
    meta = man["meta"]
    for key, hi in (("seq_len", MAX_SEQ_LEN), ("hidden_size", 1 << 20), ("vocab_size", 1 << 24),
                    ("n_segments", 1 << 16), ("n_steps", 1 << 24), ("prefix_len", MAX_SEQ_LEN)):
        if key in meta and not (_is_int(meta[key]) and 0 <= meta[key] <= hi):
            raise bad(f"meta {key!r} must be a count up to {hi}, got {str(meta[key])[:60]!r}")
    if _is_int(meta.get("n_steps")) and meta["n_steps"] != len(man["steps"]):
        raise bad(f"meta 'n_steps' is {meta['n_steps']} but the step table has {len(man['steps'])} rows")
    spec = man["arrays"].get("inputs") if isinstance(man["arrays"], dict) else None
    if _is_int(meta.get("seq_len")) and isinstance(spec, dict) and isinstance(spec.get("tail"), list) \
            and spec["tail"][:1] and spec["tail"][0] != meta["seq_len"]:
        raise bad(f"the stored inputs hold {spec['tail'][0]} tokens per puzzle, expected {meta['seq_len']} "
                  "(meta 'seq_len')")
    task = meta.get("task")
    if task is None or isinstance(task, str):
        return
    if not isinstance(task, dict) or not isinstance(task.get("name", ""), (str, type(None))):
        raise bad(f"meta 'task' must be a name or {{name, grid}}, got {str(task)[:60]!r}")
    grid = task.get("grid")
    if grid is None:
        return
    side = _GRID_LIMIT.get(task.get("name") or "", 1 << 10)
    if not (isinstance(grid, list) and len(grid) == 2 and all(_is_int(g) and 1 <= g <= side for g in grid)):
        raise bad(f"meta task grid must be [rows, cols] with 1..{side} each, got {str(grid)[:60]!r}")
    if _is_int(meta.get("seq_len")) and grid[0] * grid[1] > meta["seq_len"]:
        raise bad(f"meta task grid {grid} has more cells than the {meta['seq_len']} tokens per puzzle")
    if task.get("name") == "sudoku" and (grid[0] != grid[1] or round(grid[0] ** 0.5) ** 2 != grid[0]):
        raise bad(f"meta task grid {grid} is not a Sudoku grid (S x S with S = n*n)")


# ----------------------------------------------------------------------------- writing
def owned_hashes(out: Path) -> dict[str, str | None]:
    """Files of a trace directory this tool owns by its own manifest: the manifest itself when it is a trace
    manifest, the chunks it lists (a damaged one is re-traced on resume, so it is owned whatever its bytes) and
    chunks of the same trace a killed run wrote before listing them. Other files (viewer, attention tables) are
    owned through the folder's ``provenance.json`` record (``common.outputs``), not by their name; only a trace
    written before those records existed (a trace manifest, no record) owns them by name."""
    if not is_own_trace(out):
        return {}
    try:
        man = read_manifest(out)
    except TraceError:
        return {}
    known: dict[str, str | None] = {c["file"]: None for c in man["chunks"]}
    known[MANIFEST] = file_sha256(out / MANIFEST)
    if recorded_files(out, TraceError) is None:  # a trace written before provenance records: its files by name
        known.update({p.name: None for p in out.iterdir() if _LEGACY_OWN.match(p.name)})
    for p in out.glob("chunk_*.safetensors"):  # written by a run killed before it listed the chunk
        if p.name not in known and _CHUNK.match(p.name) and p.is_file() and not p.is_symlink():
            try:
                with safe_open(str(p), framework="np") as f:
                    ours = (f.metadata() or {}).get("fingerprint") == man.get("fingerprint")
            except (SafetensorError, OSError):
                ours = False
            if ours:
                known[p.name] = file_sha256(p)
    return known


def foreign_files(out: Path) -> list[str]:
    """Files in a trace directory this tool may not replace, as ``"name (why)"``: not recorded as written by it,
    changed since, or links (stale temporaries of a killed writer are its own)."""
    return [f for f in unowned_files(out, TraceError, owned_hashes(out)) if not _STALE_TMP.match(f.split(" (")[0])]


def record_trace_files(out: Path, command: str = "trace") -> None:
    """Record every file of the trace directory with its SHA-256 in ``provenance.json`` (``common.outputs``;
    chunk hashes are taken from the manifest, which the writer computed)."""
    man = read_manifest(out)
    known = {c["file"]: c["sha256"] for c in man["chunks"] if isinstance(c.get("sha256"), str)}
    record_outputs(out, {"command": command}, known=known)


def is_own_trace(out: Path) -> bool:
    """Whether ``out`` holds a manifest written by this tool (format ``recurse-interp-trace/...``)."""
    try:
        man = read_json(out / MANIFEST, TraceError)
    except (OSError, TraceError):
        return False
    return isinstance(man, dict) and str(man.get("format", "")).startswith("recurse-interp-trace/")


def remove_own_files(out: Path) -> None:
    """Delete what this tool wrote in ``out`` (recorded files, manifest, chunks, temporaries); call after
    ``foreign_files`` found nothing else."""
    owned = {**(recorded_files(out, TraceError) or {}), **owned_hashes(out), PROVENANCE: ""}
    for p in out.iterdir():
        if (p.name in owned or _STALE_TMP.match(p.name)) and p.is_file() and not p.is_symlink():
            p.unlink()


def prepare_dir(out: Path, fingerprint: str, overwrite: bool, resume: bool) -> dict[str, Any] | None:
    """Returns the manifest to resume from (or None for a fresh start).

    ``overwrite`` replaces only a trace this tool wrote (recognised by its manifest format) and
    never deletes other files; a symlinked ``out`` is refused.
    """
    ensure_out_not_symlink(out, TraceError)
    if out.exists() and not out.is_dir():
        raise TraceError(f"{out} exists and is not a directory")
    if out.exists():
        foreign = foreign_files(out)
        has_manifest = (out / MANIFEST).exists()
        if has_manifest and not is_own_trace(out):
            raise TraceError(f"refusing to use {out}: its {MANIFEST} was not written by this tool; choose another directory")
        if foreign:
            raise TraceError(f"refusing to use {out}: it is not empty and holds files this tool did not write or that changed since "
                             f"({'; '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); choose another directory")
        if overwrite:
            remove_own_files(out)
    if not out.exists():
        out.mkdir(parents=True)
        return None
    if not (out / MANIFEST).exists():
        remove_stale_temporaries(out)
        return None
    man = read_manifest(out)
    if man.get("fingerprint") != fingerprint:
        raise TraceError(f"{out} holds a different trace (other model, data or settings); "
                         "pass overwrite=True or choose another directory")
    if not resume:
        raise TraceError(f"{out} already holds this trace; pass resume=True to continue it or overwrite=True")
    remove_stale_temporaries(out)
    return man


def remove_stale_temporaries(out: Path) -> None:
    """Delete the temporaries a killed writer left: ``.<name>.tmp-*`` (ours) and ``.tmpXXXXXX`` (safetensors')."""
    for p in out.iterdir():
        if _STALE_TMP.match(p.name) and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)


def save_trace(trace: Trace, out_dir: str | os.PathLike, chunk_size: int = 1024, overwrite: bool = False) -> Path:
    """Write an in-memory ``Trace`` as a (complete) trace directory."""
    out = Path(out_dir)
    h = hashlib.sha256(json.dumps(trace.meta, sort_keys=True, default=json_default).encode())
    h.update(np.ascontiguousarray(trace.inputs).tobytes())
    fingerprint = "saved-" + h.hexdigest()
    if out.exists() and (out / MANIFEST).exists() and not overwrite:
        raise TraceError(f"{out} already holds a trace; pass overwrite=True")
    prepare_dir(out, fingerprint, overwrite=True, resume=False)
    trace.load_all_states()
    N = trace.n_puzzles
    idx = trace.state_index
    man = {"format": FORMAT, "complete": False, "fingerprint": fingerprint, "n_puzzles": N, "chunk_size": chunk_size,
           "n_chunks": -(-N // chunk_size), "chunks": [], "meta": trace.meta, "steps": steps_records(trace.steps),
           "arrays": array_specs(trace.arrays), "state_arrays": {}, "updated": utc_now()}
    write_manifest(out, man)
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
        man["chunks"].append(write_chunk_entry(out, ci, a, b, tensors, fingerprint, len(rows)))
    man["complete"] = True
    write_manifest(out, man)
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


def verify_chunks(root: Path, man: dict[str, Any], chunks: list[dict[str, Any]], verify: bool = True) -> None:
    """Refuse a tampered trace: order, duplicates, counts, sizes, each chunk's embedded index/range/fingerprint,
    and (``verify``) the SHA-256 of every chunk and of the manifest's metadata. One line naming the chunk."""
    where = f"trace at {root}"
    integ = man.get("integrity")
    if verify:
        if not isinstance(integ, dict) or not isinstance(integ.get("meta_sha256"), str):
            raise TraceError(f"{where} has no checksums (written by an older version or edited); re-trace it, "
                             "or pass --no-verify (verify=False) to read it unchecked")
        if integ["meta_sha256"] != meta_sha256(man):
            raise TraceError(f"{where}: manifest metadata does not match its checksum (edited: grid, task, "
                             "counts or step table); re-trace it")
    seen_idx: set[int] = set()
    for c in man["chunks"]:
        if c["index"] in seen_idx:
            raise TraceError(f"{where}: {c['file']} is listed twice in the manifest")
        seen_idx.add(c["index"])
    size, N = man.get("chunk_size"), man["n_puzzles"]
    if man["complete"]:
        want = -(-N // size) if _is_int(size) and size > 0 else None
        if man.get("n_chunks", want) != want or len(man["chunks"]) != want:
            raise TraceError(f"{where}: manifest lists {len(man['chunks'])} chunks, n_chunks "
                             f"{man.get('n_chunks')!r}, but {N} puzzles in chunks of {size} need {want}")
    for c in chunks:
        if _is_int(size) and (c["start"] != c["index"] * size or c["stop"] != min(N, c["start"] + size)):
            raise TraceError(f"{where}: {c['file']} covers [{c['start']}, {c['stop']}), not its place "
                             f"in chunks of {size} (manifest edited)")
        p = root / c["file"]
        if not p.exists():
            raise TraceError(f"{where}: missing chunk file {c['file']}")
        if not p.is_file():
            raise TraceError(f"{where}: {c['file']} is not a regular file")
        if p.stat().st_size != c["bytes"]:
            raise TraceError(f"{where}: {c['file']} has {p.stat().st_size} bytes, manifest says {c['bytes']} "
                             "(truncated or replaced)")
        if verify:
            if not isinstance(c.get("sha256"), str):
                raise TraceError(f"{where}: {c['file']} has no checksum in the manifest; re-trace it or pass --no-verify")
            if file_sha256(p) != c["sha256"]:
                raise TraceError(f"{where}: {c['file']} does not match its SHA-256 (changed, swapped or copied "
                                 "over after writing); re-trace it")
        try:
            with safe_open(str(p), framework="np") as f:
                md = f.metadata() or {}
        except SafetensorError as e:
            raise TraceError(f"{where}: {c['file']} is corrupt ({' '.join(str(e).split())})") from None
        if md and (md.get("chunk") != str(c["index"]) or md.get("start") != str(c["start"])
                   or md.get("stop") != str(c["stop"]) or md.get("fingerprint") != man.get("fingerprint")):
            raise TraceError(f"{where}: {c['file']} holds chunk {md.get('chunk')!r} [{md.get('start')}, {md.get('stop')}) "
                             f"of another trace or place (swapped or copied); re-trace it")


def load_trace(trace_dir: str | os.PathLike, allow_incomplete: bool = False, lazy_states: bool = True,
               verify: bool = True, head: int | None = None) -> Trace:
    """Read a trace directory (no model needed); validates format version, sizes, dtypes and shapes.

    An interrupted trace raises ``TraceIncompleteError`` unless ``allow_incomplete``
    (then the finished chunks are returned). Full states stay on disk until
    ``trace.states(name)`` asks for them, unless ``lazy_states=False``.
    ``verify`` checks every chunk's SHA-256 and the manifest's metadata hash (``verify_chunks``).
    ``head``: read only the chunks that hold the first ``head`` puzzles (a look at a big trace
    in bounded memory; the Trace then holds whole chunks, at least ``head`` puzzles if there are).
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
    if head is not None:
        chunks = [c for c in chunks if c["start"] < max(1, int(head))]
    if not chunks:
        raise TraceError(f"trace at {root} holds no finished chunk")
    verify_chunks(root, man, chunks, verify)
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


__all__ = ["save_trace", "load_trace", "read_manifest", "TraceIncompleteError",
           "MANIFEST"]
