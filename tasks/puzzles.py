"""Puzzles for the command line: which task a checkpoint solves, reading puzzles, labels, grid rendering.

Parsing, encoding and solving come from the task modules in ``tasks/``
(imported only when needed); this module only decides which to call and
checks that a puzzle fits the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.labels import IGNORE_LABEL

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


def _sudoku_size(seq_len: int) -> int | None:
    s = math.isqrt(seq_len)
    n = math.isqrt(s)
    return s if s * s == seq_len and n * n == s and n >= 2 else None


def infer_task(model_cfg: dict[str, Any], task_meta: Any) -> TaskInfo | None:
    """The task named in the checkpoint's metadata, else a guess from vocab size and sequence length."""
    fam = model_cfg.get("family")
    V, L = int(model_cfg.get("vocab_size", 0)), int(model_cfg.get("seq_len", 0))
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
        return TaskInfo(name, (int(size), int(size)) if size else (side, side), "checkpoint")
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


# ----------------------------------------------------------------------------- reading puzzles
@dataclass
class PuzzleBatch:
    inputs: np.ndarray  # [N, L] uint8
    labels: np.ndarray | None  # [N, L] int64, -100 where unknown
    names: list[str]
    notes: list[str]  # messages for the user (e.g. several solutions)


def _sudoku(texts: list[tuple[str, str]], size: int) -> PuzzleBatch:
    from tasks.sudoku.grid import encode_grid, parse_puzzle
    from tasks.sudoku.solver import solve

    xs, ys, names, notes = [], [], [], []
    for name, text in texts:
        grid = parse_puzzle(text, size=size)
        res = solve(grid, max_solutions=2)
        if res.solution is None:
            raise PuzzleInputError(f"{name}: the puzzle has no solution")
        if res.n_solutions > 1:
            notes.append(f"{name}: more than one solution; scoring against the solver's first")
        xs.append(encode_grid(grid))
        ys.append(encode_grid(res.solution).astype(np.int64))
        names.append(name)
    return PuzzleBatch(np.stack(xs), np.stack(ys), names, notes)


def _sudoku_file(path: Path, size: int, limit: int | None) -> PuzzleBatch:
    from tasks.sudoku.grid import SkippedLines, encode_grid, read_puzzle_file
    from tasks.sudoku.solver import solve

    skipped = SkippedLines()
    recs = read_puzzle_file(path, size=size, limit=limit, skipped=skipped)
    if not recs:
        why = f" ({skipped.count} line(s) without one, e.g. line {skipped.first[0][0]}: {skipped.first[0][1]!r})" \
            if skipped.count else " (the file is empty)"
        raise PuzzleInputError(f"{path}: no {size}x{size} Sudoku puzzle in the file{why}")
    xs, ys, names = [], [], []
    notes = [m] if (m := skipped.message(path.name)) else []
    for i, r in enumerate(recs):
        sol = r.solution
        name = r.source or f"{path.name}:{i + 1}"
        if sol is None:
            res = solve(r.puzzle, max_solutions=2)
            if res.solution is None:
                raise PuzzleInputError(f"{name}: the puzzle has no solution")
            if res.n_solutions > 1:
                notes.append(f"{name}: more than one solution; scoring against the solver's first")
            sol = res.solution
        xs.append(encode_grid(r.puzzle))
        ys.append(encode_grid(sol).astype(np.int64))
        names.append(name)
    return PuzzleBatch(np.stack(xs), np.stack(ys), names, notes)


class SudokuFileStream:
    """A Sudoku puzzle file read chunk by chunk, for tracing files too large to hold (``interp trace`` without --limit).

    The constructor reads the file once without solving (to count the puzzles, hash
    them and keep the first ``n_names`` names); ``slice(a, b)`` then yields encoded
    inputs and labels of puzzles ``a..b`` (labels from the file's solutions or the
    solver), reading forward from where the previous slice stopped. Memory stays
    bounded by one slice. Duck-types the chunk sources of ``interp.tracing.stream``.
    """

    def __init__(self, path: str | Path, size: int = 9, n_names: int = 64) -> None:
        import hashlib

        from tasks.sudoku.grid import SkippedLines, encode_grid, iter_puzzle_file

        self.path, self.size, self.task, self.puzzle_ids = Path(path), size, None, None
        self.source = str(self.path)
        self.labels = True  # every puzzle gets a label (from the file or the solver)
        skipped = SkippedLines()
        h = hashlib.sha256(f"sudoku{size}".encode())
        self.names: list[str] = []
        n = 0
        for r in iter_puzzle_file(self.path, size=size, skipped=skipped):
            h.update(encode_grid(r.puzzle).tobytes())
            if r.solution is not None:
                h.update(encode_grid(r.solution).tobytes())
            if n < n_names:
                self.names.append(r.source or f"{self.path.name}:{n + 1}")
            n += 1
        if not n:
            why = f" ({skipped.count} line(s) without one, e.g. line {skipped.first[0][0]}: {skipped.first[0][1]!r})" \
                if skipped.count else " (the file is empty)"
            raise PuzzleInputError(f"{self.path}: no {size}x{size} Sudoku puzzle in the file{why}")
        self.n, self._digest = n, h.hexdigest()
        self.notes = [m] if (m := skipped.message(self.path.name)) else []
        self._it, self._pos = None, 0

    def __len__(self) -> int:
        return self.n

    def digest(self) -> str:
        return self._digest

    def slice(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray, None]:
        from tasks.sudoku.grid import encode_grid, iter_puzzle_file
        from tasks.sudoku.solver import solve

        if self._it is None or a < self._pos:
            self._it, self._pos = iter(iter_puzzle_file(self.path, size=self.size)), 0
        while self._pos < a:  # resuming: skip finished chunks without solving them
            next(self._it)
            self._pos += 1
        xs, ys = [], []
        for r in self._it:
            sol = r.solution
            if sol is None:
                res = solve(r.puzzle, max_solutions=2)
                if res.solution is None:
                    raise PuzzleInputError(f"{r.source or f'{self.path.name}:{self._pos + 1}'}: the puzzle has no solution")
                if res.n_solutions > 1 and len(self.notes) < 6:
                    self.notes.append(f"{r.source or f'{self.path.name}:{self._pos + 1}'}: more than one solution; "
                                      "scoring against the solver's first")
                sol = res.solution
            xs.append(encode_grid(r.puzzle))
            ys.append(encode_grid(sol).astype(np.int64))
            self._pos += 1
            if self._pos >= b:
                break
        return np.stack(xs), np.stack(ys), None


def _mazes(texts: list[tuple[str, str]], side: int) -> PuzzleBatch:
    from tasks.maze import encode, parse_maze, solve_maze

    xs, ys, names = [], [], []
    for name, text in texts:
        one_line = "\n" not in text.strip()
        grid = parse_maze(text.strip("\n") if not one_line else text.strip(), width=side if one_line else None)
        if grid.shape != (side, side):
            raise PuzzleInputError(f"{name}: maze is {grid.shape[0]}x{grid.shape[1]}, the model reads {side}x{side}")
        xs.append(encode(grid))
        ys.append(encode(solve_maze(grid)).astype(np.int64))
        names.append(name)
    return PuzzleBatch(np.stack(xs), np.stack(ys), names, [])


def _arc(path: Path) -> PuzzleBatch:
    from tasks.arc import encode_grid, load_task_file

    task = load_task_file(path)
    xs, ys, names = [], [], []
    for i, (inp, out) in enumerate(task.test):
        xs.append(encode_grid(inp))
        ys.append(encode_grid(out).astype(np.int64) if out is not None else np.full(900, IGNORE_LABEL))
        names.append(f"{task.task_id}/test{i}")
    if not xs:
        raise PuzzleInputError(f"{path}: the task has no test pairs")
    return PuzzleBatch(np.stack(xs), np.stack(ys), names,
                       ["ARC puzzles run with puzzle id 0: a task unseen in training has no learned embedding"])


def read_puzzles(task: TaskInfo, puzzle: str | None, puzzle_file: str | None, limit: int | None = None) -> PuzzleBatch:
    """Parse ``--puzzle`` text or ``--puzzle-file`` for the task; labels come from the project's solvers."""
    if (puzzle is None) == (puzzle_file is None):
        raise PuzzleInputError("give exactly one of --puzzle or --puzzle-file")
    rows, cols = task.grid
    if task.name == "arc":
        if puzzle is not None:
            check_kind(task, puzzle)
        elif Path(puzzle_file).is_file():
            check_kind(task, _head(Path(puzzle_file)), Path(puzzle_file).name)
        if puzzle_file is None:
            raise PuzzleInputError("ARC puzzles come from a task JSON file: use --puzzle-file TASK.json")
        return _arc(Path(puzzle_file))
    if puzzle is not None:
        check_kind(task, puzzle)
        if task.name == "sudoku":
            return _sudoku([("puzzle", puzzle)], rows)
        return _mazes([("puzzle", puzzle)], rows)
    path = Path(puzzle_file)
    if not path.is_file():
        raise PuzzleInputError(f"{path}: no such file")
    check_kind(task, _head(path), f"{path.name}")
    if task.name == "sudoku":
        return _sudoku_file(path, rows, limit)
    blocks = _maze_blocks(path, rows, cols, limit)
    if not blocks:
        raise PuzzleInputError(f"{path}: no mazes in the file")
    return _mazes(blocks, rows)


def _head(path: Path, n_bytes: int = 4096) -> str:
    """The first puzzle-looking text of a file (from its first 4 KiB), for telling a Sudoku file from a maze file."""
    with open(path, "rb") as f:
        text = f.read(n_bytes).decode("utf-8", errors="replace").lstrip("\ufeff")
    if text.lstrip()[:1] in ("{", "["):
        return text
    lines = text.splitlines()
    for k, line in enumerate(lines[:-1] if len(text) == n_bytes else lines):
        s = line.strip()
        if s and set(s) <= set("# SGo") and "#" in s:
            return "\n".join(lines[k:k + 3])  # maze rows
        if s.startswith(("#", "//", ";")):
            continue
        if sniff_puzzle_kind(s.split(",")[0].split()[0] if s else "") is not None:
            return s.split(",")[0].split()[0]
    return ""


def _maze_blocks(path: Path, rows: int, cols: int, limit: int | None) -> list[tuple[str, str]]:
    """(name, text) of the mazes in a file, streamed so a huge or wrong file is never read whole.

    Mazes are separated by empty lines, or written one ``rows*cols``-character maze per line.
    """
    if limit is not None and limit < 1:
        return []
    max_line = max(4 * rows * cols, 1 << 16)
    out: list[tuple[str, str]] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            out.append((f"{path.name}#{len(out) + 1}", "\n".join(block)))
        block.clear()

    with open(path, "rb") as f:
        for lineno, raw in enumerate(iter(lambda: f.readline(max_line + 1), b""), start=1):
            if len(raw) > max_line:
                raise PuzzleInputError(f"{path}:{lineno}: line longer than {max_line} bytes; not a maze file")
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if lineno == 1:
                line = line.lstrip("\ufeff")
            if not line:
                flush()
            elif not block and rows > 1 and len(line) == rows * cols:
                out.append((f"{path.name}#{len(out) + 1}", line))
            elif block or line.strip():
                block.append(line)
                if len(block) > rows:
                    raise PuzzleInputError(f"{path}:{lineno}: maze #{len(out) + 1} has more than {rows} rows; "
                                           f"the model reads {rows}x{cols} mazes")
            if limit is not None and len(out) >= limit:
                return out
        flush()
    return out if limit is None else out[:limit]


# ----------------------------------------------------------------------------- rendering
def cell_chars(task: str, size: int) -> dict[int, str]:
    """Token -> display character."""
    if task == "sudoku":
        digits = "123456789ABCDEFGHIJKLMNOP"
        return {0: "_", 1: ".", **{t: digits[t - 2] for t in range(2, size + 2)}}
    if task == "maze":
        return {0: "_", 1: "#", 2: " ", 3: "S", 4: "G", 5: "o"}
    return {0: " ", 1: "|", **{t: str(t - 2) for t in range(2, 12)}}


def view_box(task: TaskInfo, *token_grids: np.ndarray) -> tuple[range, range]:
    """Rows and columns to print: the whole grid, or for ARC the box holding any non-pad input/label token."""
    rows, cols = task.grid
    if task.name != "arc":
        return range(rows), range(cols)
    used = np.zeros((rows, cols), dtype=bool)
    for g in token_grids:
        used |= np.asarray(g).reshape(rows, cols) > 0
    if not used.any():
        return range(rows), range(cols)
    r, c = np.flatnonzero(used.any(1)), np.flatnonzero(used.any(0))
    return range(int(r[0]), int(r[-1]) + 1), range(int(c[0]), int(c[-1]) + 1)


def render_grid(tokens: np.ndarray, task: TaskInfo, changed: np.ndarray | None = None,
                wrong: np.ndarray | None = None, given: np.ndarray | None = None, color: bool = False,
                box: tuple[range, range] | None = None) -> str:
    """A grid as text: changed cells in [brackets]; with ``color``, wrong cells red, right ones green, givens dim.

    ``box`` limits the printed rows/columns (``view_box``; ARC's 30x30 canvas is mostly padding).
    """
    rows, cols = task.grid
    row_range, col_range = box or (range(rows), range(cols))
    chars = cell_chars(task.name, rows)
    n = math.isqrt(rows) if task.name == "sudoku" else 0
    lines = []
    for r in row_range:
        if n and r and r % n == 0:
            lines.append("-" * (3 * cols + (n - 1)))
        out = []
        for c in col_range:
            i = r * cols + c
            ch = chars.get(int(tokens[i]), "?")
            ch = f"[{ch}]" if changed is not None and changed[i] else f" {ch} "
            if color:
                if given is not None and given[i]:
                    ch = f"\033[2m{ch}\033[0m"
                elif wrong is not None and wrong[i]:
                    ch = f"\033[31m{ch}\033[0m"
                elif changed is not None and changed[i]:
                    ch = f"\033[32;1m{ch}\033[0m"
            if n and c and c % n == 0:
                out.append("|")
            out.append(ch)
        lines.append("".join(out).rstrip() if not color else "".join(out))
    return "\n".join(lines)


__all__ = ["TASKS", "TaskInfo", "check_kind", "sniff_puzzle_kind", "PuzzleBatch", "PuzzleInputError", "infer_task", "resolve_task", "read_puzzles",
           "render_grid", "view_box"]
