"""The resumable collection of ``interp scale``: puzzles in chunks, each (weights, strategy, chunk) saved atomically.

``OUT/chunks/<weights>_<strategy>_<chunk>.npz`` holds one chunk's
:class:`~interp.guess_scaling.depth_runs.DepthRecord` and its wall time;
``OUT/chunks/settings.json`` the settings they were computed with. A rerun with
the same settings skips every chunk already on disk (a killed run resumes where
it stopped); a rerun with other settings is refused before anything is written.
``on_saved()`` is called after every chunk (the caller refreshes its
``provenance.json`` there so the folder stays its own).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from common.atomic import atomic_write_bytes, atomic_write_text
from interp.guess_scaling.depth_runs import BreadthSpec, DepthRecord, collect_depth
from interp.guess_scaling.errors import GuessScalingError

FIELDS = ("grids", "q_halt", "residual", "stable")


def _read_chunk(path: Path) -> tuple[DepthRecord, float] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return DepthRecord(*(z[f] for f in FIELDS)), float(z["seconds"])
    except (OSError, ValueError, KeyError):
        return None  # a damaged chunk is recomputed


def _write_chunk(path: Path, rec: DepthRecord, seconds: float) -> None:
    buf = io.BytesIO()
    np.savez(buf, seconds=np.float64(seconds), **{f: getattr(rec, f) for f in FIELDS})
    atomic_write_bytes(path, buf.getvalue())


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Refuse to resume chunks computed with other settings (raises :class:`GuessScalingError`)."""
    f = Path(out) / "chunks" / "settings.json"
    if f.is_file():
        try:
            old = json.loads(f.read_text())
        except (OSError, ValueError):
            old = None
        if old != json.loads(json.dumps(settings)):
            raise GuessScalingError(f"{out} holds chunks of a run with other settings; choose another --out "
                                    "or delete its chunks/ folder")


def collect_chunked(out: Path, settings: dict[str, Any], models: Sequence[Any], x: np.ndarray, weights: str,
                    specs: Sequence[BreadthSpec], k: int, depth: int, check_depths: Sequence[int], stab_noise: float,
                    chunk: int, puzzle_ids: np.ndarray | None = None, progress: bool = False,
                    on_saved: Callable[[], None] | None = None) -> dict[str, tuple[DepthRecord, float]]:
    """{strategy: (record over all puzzles, wall seconds)}; computes only the chunks not yet on disk."""
    folder = Path(out) / "chunks"
    check_settings(out, settings)
    atomic_write_text(folder / "settings.json", json.dumps(settings, indent=1, sort_keys=True))
    if on_saved is not None:
        on_saved()  # the caller's provenance lists settings.json before any chunk exists
    n = x.shape[0]
    starts = list(range(0, n, chunk))
    todo = [(s, c) for s in specs for c in range(len(starts))
            if _read_chunk(folder / f"{weights}_{s.strategy}_{c:04d}.npz") is None]
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo) * k, desc=f"scale passes ({weights})", unit="cand")
    results: dict[str, tuple[DepthRecord, float]] = {}
    for spec in specs:
        parts, secs = [], 0.0
        for c, a in enumerate(starts):
            path = folder / f"{weights}_{spec.strategy}_{c:04d}.npz"
            got = _read_chunk(path)
            if got is None:
                t0 = time.time()
                ids = None if puzzle_ids is None else puzzle_ids[a:a + chunk]
                rec = collect_depth(models, x[a:a + chunk], spec, k, depth, check_depths, stab_noise, ids,
                                    on_pass=(bar.update if bar is not None else None))
                got = (rec, time.time() - t0)
                _write_chunk(path, *got)
                if on_saved is not None:
                    on_saved()
            parts.append(got[0])
            secs += got[1]
        results[spec.strategy] = (DepthRecord.concat(parts), secs)
    if bar is not None:
        bar.close()
    if not results:
        raise GuessScalingError("no strategy to run")
    return results


__all__ = ["collect_chunked", "check_settings"]
