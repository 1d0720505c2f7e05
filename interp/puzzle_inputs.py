"""The puzzles a command runs on: a dataset directory or a puzzle file, read the same way everywhere.

``interp guess-scale`` (``--data`` / ``--puzzle-file``) and ``interp report``
(a run's ``data`` / ``puzzle_file``) choose between the two sources here: a
dataset directory is opened with :func:`interp.tracing.stream.open_data`, a
puzzle file is read with :func:`tasks.puzzles.read_puzzles` (labels from the
project's solvers) for the checkpoint's task.
"""

from __future__ import annotations

import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Any


@dataclass
class PuzzleInputs:
    """Inputs ``[N, L]``, labels (None when unknown), puzzle ids (None for a file) and the task as a dict (or None)."""

    inputs: Any
    labels: Any
    puzzle_ids: Any
    task: dict[str, Any] | None


BIG_FILE_BYTES = 20 << 20
"""A puzzle file above this size read whole gets a note on stderr first."""


def load_puzzle_inputs(meta: dict[str, Any], data: Any = None, puzzle_file: Any = None, split: str = "test",
                       limit: int | None = None, task: str | None = None) -> PuzzleInputs:
    """The first ``limit`` puzzles of dataset directory ``data`` (its ``split``) or of ``puzzle_file``.

    ``meta`` is the checkpoint's config (``{"model": ..., "task": ...}``); it names the task of a puzzle
    file, which ``task`` may confirm or override. Exactly one of ``data`` and ``puzzle_file`` is used
    (``puzzle_file`` when both are given)."""
    if puzzle_file is not None:
        from tasks.puzzles import read_puzzles, resolve_task

        info = resolve_task(meta["model"], meta.get("task"), task)
        big = Path(puzzle_file).stat().st_size if Path(puzzle_file).is_file() else 0
        if limit is None and big > BIG_FILE_BYTES:  # say why nothing happens for a while
            print(f"note: reading all of {puzzle_file} ({big / 1e6:.0f} MB) without --limit; this takes a while "
                  "(--limit N reads the first N puzzles only)", file=sys.stderr, flush=True)
        batch = read_puzzles(info, None, str(puzzle_file), limit)
        return PuzzleInputs(batch.inputs, batch.labels, None, {"name": info.name, "grid": list(info.grid)})
    from interp.tracing.stream import open_data

    src = open_data(str(data), split=split)
    n = len(src) if limit is None else min(len(src), limit)
    x, y, pid = src.slice(0, n)
    found = {"name": src.task} if isinstance(src.task, str) else src.task
    return PuzzleInputs(x, y, pid, found)
