"""Puzzles for the command line: reading user puzzles (text, files, ARC task files) with their labels.

Parsing, encoding and solving come from the task modules in ``tasks/``
(imported only when needed); this module only decides which to call and
checks that a puzzle fits the model. Which task a checkpoint solves is
``tasks.task_info``; drawing grids in the terminal is ``tasks.drawing``
(their names stay importable from here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.labels import IGNORE_LABEL
from tasks.drawing import cell_chars, render_grid, view_box
from tasks.task_info import (
    TASK_NOUN,
    TASKS,
    PuzzleInputError,
    TaskInfo,
    check_kind,
    infer_task,
    resolve_task,
    sniff_puzzle_kind,
)


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
    from tasks.maze.grid import encode, parse_maze
    from tasks.maze.solver import solve_maze

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
    from tasks.arc.grid import encode_grid
    from tasks.arc.task import load_task_file

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


__all__ = ["TASKS", "TASK_NOUN", "TaskInfo", "check_kind", "sniff_puzzle_kind", "PuzzleBatch", "PuzzleInputError",
           "SudokuFileStream", "infer_task", "resolve_task", "read_puzzles", "cell_chars", "render_grid", "view_box"]
