"""Which task a checkpoint solves: ``TaskInfo``, inferred from its metadata or its vocab and length, or chosen.

``resolve_task`` combines the checkpoint's task with a requested ``--task``; ``check_kind`` refuses a puzzle
text that is clearly another task's. Incompatible choices raise ``PuzzleInputError`` with one line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

TASKS = ("sudoku", "maze", "arc")


class PuzzleInputError(ValueError):
    """A puzzle or task the checkpoint cannot take; one-line message."""


@dataclass
class TaskInfo:
    name: str  # sudoku | maze | arc | text
    grid: tuple[int, int] | None  # rows, cols of the answer grid shown to the user (None: text)
    source: str  # "checkpoint" | "inferred" | "argument"
    ckpt: str | None = None  # the checkpoint it came from, for messages


TASK_NOUN = {"sudoku": "Sudoku", "maze": "maze", "arc": "ARC task", "text": "language"}


def sniff_puzzle_kind(text: str) -> str | None:
    """What a puzzle text looks like: ``sudoku``, ``maze``, ``arc`` (JSON) or None (cannot tell)."""
    t = text.lstrip("\ufeff").strip()
    if not t:
        return None
    if t[0] in "{[":
        return "arc"
    chars = set(t) - set(" \t\r\n")
    if "#" in chars and chars <= set("#SGo") and len(t) >= 5:
        return "maze"
    digits = sum(c.isdigit() or c == "." for c in t)
    if digits >= 16 and digits >= 0.9 * len(t.replace("\n", "").replace(" ", "")) and "#" not in chars:
        return "sudoku"
    return None


def check_kind(task: TaskInfo, text: str, what: str = "the puzzle") -> None:
    """Raise a task-mismatch error naming the checkpoint's task when ``text`` is clearly another task's puzzle."""
    kind = sniff_puzzle_kind(text)
    if kind is None or kind == task.name:
        return
    ckpt = f"checkpoint {task.ckpt}" if task.ckpt else "the checkpoint"
    noun = TASK_NOUN.get(task.name, task.name)
    article = "an" if noun[0] in "aeiouAEIOU" else "a"
    raise PuzzleInputError(f"{ckpt} is {article} {noun} model; {what} is a {TASK_NOUN[kind]}")


def sudoku_box(side: int) -> int:
    """Box side ``n`` of an ``S x S`` Sudoku with ``S = n*n`` and ``n >= 2``; 0 when ``side`` is no such square."""
    n = math.isqrt(side)
    return n if n * n == side and n >= 2 else 0


def _sudoku_size(seq_len: int) -> int | None:
    s = math.isqrt(seq_len)
    return s if s * s == seq_len and sudoku_box(s) else None


def task_grid(name: str | None, seq_len: int) -> tuple[int, int] | None:
    """The answer grid (rows, cols) of a ``name`` puzzle of ``seq_len`` tokens: ARC's 30x30 canvas (900 tokens)
    or a square Sudoku/maze grid; None when the task is none of these or the length does not fit it."""
    if name == "arc":
        return (30, 30) if seq_len == 900 else None
    side = math.isqrt(seq_len)
    if name in ("sudoku", "maze") and side * side == seq_len:
        return side, side
    return None


def _whole(value: Any, what: str, hi: int = 1 << 20) -> int:
    """A size read from a checkpoint's config: a whole number in [0, ``hi``], else one-line ``PuzzleInputError``
    (a list or a string where a number belongs is refused here, before any code uses it)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
        raise PuzzleInputError(f"checkpoint config: {what} must be a whole number in [0, {hi}], got "
                               f"{type(value).__name__} {str(value)[:40]!r}")
    return value


def infer_task(model_cfg: dict[str, Any], task_meta: Any) -> TaskInfo | None:
    """The task named in the checkpoint's metadata, else a guess from vocab size and sequence length."""
    fam = model_cfg.get("family")
    V, L = _whole(model_cfg.get("vocab_size", 0), "vocab_size"), _whole(model_cfg.get("seq_len", 0), "seq_len")
    if fam == "hrm_lm" or model_cfg.get("causal"):
        return TaskInfo("text", None, "inferred")
    name = None
    if isinstance(task_meta, dict):
        name = task_meta.get("name") or task_meta.get("task")
    elif isinstance(task_meta, str):
        name = task_meta
    side = math.isqrt(L)
    if name in TASKS:
        if name == "arc":
            return TaskInfo("arc", (30, 30), "checkpoint")
        size = task_meta.get("grid_size") if isinstance(task_meta, dict) else None
        size = _whole(size, "task.grid_size", 1024) if size is not None else None
        return TaskInfo(name, (size, size) if size else (side, side), "checkpoint")
    if V == 11 and L == 81:
        return TaskInfo("sudoku", (9, 9), "inferred")
    if V == 12 and L == 900:
        return TaskInfo("arc", (30, 30), "inferred")
    if V == 6 and side * side == L and L != 16:
        return TaskInfo("maze", (side, side), "inferred")
    if V == 6 and L == 16:
        return None  # a 4x4 Sudoku and a 4x4 maze look alike: the user must say --task
    s = _sudoku_size(L)
    if s and V == s + 2:
        return TaskInfo("sudoku", (s, s), "inferred")
    return None


def resolve_task(model_cfg: dict[str, Any], task_meta: Any, requested: str | None, ckpt: str | None = None,
                 command: str = "trace") -> TaskInfo:
    """Combine the checkpoint's task with ``--task``; incompatible choices raise ``PuzzleInputError``.

    ``ckpt`` names the checkpoint in messages and ``command`` the ``interp`` command that asked.
    """
    info = _resolve_task(model_cfg, task_meta, requested, ckpt, command)
    info.ckpt = ckpt
    return info


def _resolve_task(model_cfg: dict[str, Any], task_meta: Any, requested: str | None, ckpt: str | None,
                  command: str) -> TaskInfo:
    found = infer_task(model_cfg, task_meta)
    fam, V, L = model_cfg.get("family"), model_cfg.get("vocab_size"), model_cfg.get("seq_len")
    desc = f"{fam} model with vocab {V} and seq_len {L}"
    name = f"checkpoint {ckpt}" if ckpt else "the checkpoint"
    if found is not None and found.name == "text":
        hint = {"trace": "use interp.trace(model, tokens) in Python to trace text",
                "ablate": "to ablate a language model, use interp.interventions.ablation in Python on token windows",
                }.get(command, "use the Python API for text")
        raise PuzzleInputError(f"{name} is a language model ({desc}); `interp {command}` takes puzzles ({hint})")
    if requested is None:
        if found is None:
            raise PuzzleInputError(f"cannot tell which task this {desc} solves; pass --task sudoku|maze|arc")
        return found
    if requested not in TASKS:
        raise PuzzleInputError(f"unknown task {requested!r} (choose sudoku, maze or arc)")
    if found is not None and found.name != requested:
        raise PuzzleInputError(f"{name} is a {TASK_NOUN[found.name]} model ({desc}); it cannot take a "
                               f"{TASK_NOUN[requested]} puzzle (--task {requested})")
    side = math.isqrt(int(L))
    if requested == "sudoku":
        s = _sudoku_size(int(L))
        if not s or int(V) < s + 2:
            raise PuzzleInputError(f"a {desc} cannot read Sudoku grids (needs seq_len S*S with S=n*n and vocab >= S+2)")
        return TaskInfo("sudoku", (s, s), "argument")
    if requested == "maze":
        if side * side != int(L) or int(V) < 6:
            raise PuzzleInputError(f"a {desc} cannot read mazes (needs a square seq_len and vocab >= 6)")
        return TaskInfo("maze", (side, side), "argument")
    if int(L) != 900 or int(V) < 12:
        raise PuzzleInputError(f"a {desc} cannot read ARC grids (needs seq_len 900 and vocab >= 12)")
    return TaskInfo("arc", (30, 30), "argument")


def trace_task(model_cfg: dict[str, Any], task_meta: Any, seq_len: int) -> TaskInfo | None:
    """The puzzle task of a trace of ``seq_len``-token answers and its grid, for drawing them.

    A Sudoku or maze grid stored in the task metadata is used when it holds ``seq_len`` cells; otherwise the
    task named there or inferred from the model config (``infer_task``), laid out by ``task_grid``. None for
    text and for anything that is not a puzzle grid.
    """
    name = None
    if isinstance(task_meta, dict):
        name = task_meta.get("name") or task_meta.get("task")
        grid = task_meta.get("grid")
        if name in ("sudoku", "maze") and grid and int(grid[0]) * int(grid[1]) == seq_len:
            return TaskInfo(name, (int(grid[0]), int(grid[1])), "trace")
    elif isinstance(task_meta, str):
        name = task_meta
    if model_cfg:
        info = infer_task({**model_cfg, "seq_len": seq_len}, task_meta)
        if info is not None and info.grid is not None:
            name = info.name
    grid = task_grid(name, seq_len)
    return TaskInfo(name, grid, "trace") if grid is not None else None


__all__ = ["TASKS", "TASK_NOUN", "PuzzleInputError", "TaskInfo", "sniff_puzzle_kind", "check_kind", "sudoku_box",
           "task_grid", "infer_task", "resolve_task", "trace_task"]
