"""Sudoku grids: parse, format, encode/decode, validate, read puzzle files.

A grid is a numpy ``int8`` array ``[S, S]`` with ``S = n*n`` (``n=3`` -> 9x9,
``n=2`` -> 4x4) and ``0`` for a blank. Token encoding (the HRM/TRM reference
layout): ``0`` pad, ``1`` blank, ``2..S+1`` digits ``1..S``.

Bad input raises :class:`PuzzleFormatError` (a ``ValueError``) with a one-line
message naming the problem and, for files, the file and line number.

The command line is ``python -m tasks.sudoku`` (:mod:`tasks.sudoku.__main__`).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

DIGIT_CHARS = "123456789ABCDEFGHIJKLMNOP"  # digits 1..25 (sizes up to 25x25)
BLANK_CHARS = ".0"
SEPARATOR_CHARS = "|+-"  # box separators, tolerated only inside multi-line pasted grids
MAX_LINE_BYTES = 1 << 16  # a puzzle-file line longer than this is not a puzzle file

PAD_TOKEN = 0
BLANK_TOKEN = 1
DIGIT_OFFSET = 1  # token = digit + 1, so digits 1..S -> tokens 2..S+1


class PuzzleFormatError(ValueError):
    """A puzzle that cannot be used; the message names the problem in one line."""


# --------------------------------------------------------------------------- sizes


def box_size(size: int) -> int:
    """Box side ``n`` of an ``S x S`` grid (``S = n*n``); rejects other sizes."""
    n = math.isqrt(int(size)) if int(size) >= 0 else 0
    if n < 2 or n * n != size or size > len(DIGIT_CHARS):
        raise PuzzleFormatError(f"grid size must be n*n with 2 <= n <= 5 (4, 9, 16, 25), got {size}")
    return n


def size_from_cells(n_cells: int) -> int:
    """Grid side ``S`` from a cell count ``S*S`` (16 -> 4, 81 -> 9)."""
    size = math.isqrt(n_cells)
    if size * size != n_cells:
        raise PuzzleFormatError(f"{n_cells} cells is not a square grid")
    box_size(size)
    return size


def check_grid(grid: np.ndarray, name: str = "grid") -> np.ndarray:
    """Validate a single ``[S, S]`` grid with values ``0..S``; returns it as ``int8``."""
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise PuzzleFormatError(f"{name} must be a square [S, S] array, got shape {tuple(arr.shape)}")
    size = arr.shape[0]
    box_size(size)
    if arr.dtype.kind not in "iu":
        raise PuzzleFormatError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > size):
        raise PuzzleFormatError(
            f"{name} values must be in 0..{size} (0 = blank), got {int(arr.min())}..{int(arr.max())}"
        )
    return arr.astype(np.int8, copy=False)


def cell_name(index: int, size: int) -> str:
    """``r{row}c{col}`` (1-based) for a flat cell index."""
    return f"r{index // size + 1}c{index % size + 1}"


# --------------------------------------------------------------------------- text


def _char_table(size: int) -> np.ndarray:
    """Byte -> cell value lookup (255 = illegal) for ``size``."""
    table = np.full(256, 255, dtype=np.uint8)
    for ch in BLANK_CHARS:
        table[ord(ch)] = 0
    for value, ch in enumerate(DIGIT_CHARS[:size], start=1):
        table[ord(ch)] = value
        table[ord(ch.lower())] = value
    return table


_TABLES: dict[int, np.ndarray] = {}


def find_clash(grid: np.ndarray) -> Optional[tuple[int, int, str]]:
    """First pair of givens that share a digit in a row, column or box: ``(cell_a, cell_b, unit)``."""
    size = grid.shape[0]
    n = box_size(size)
    flat = grid.reshape(-1).tolist()
    seen: dict[tuple[str, int, int], int] = {}
    for i, v in enumerate(flat):
        if not v:
            continue
        r, c = divmod(i, size)
        for unit, k in (("row", r), ("column", c), ("box", (r // n) * n + c // n)):
            key = (unit, k, v)
            if key in seen:
                return seen[key], i, unit
            seen[key] = i
    return None


def check_givens(grid: np.ndarray) -> None:
    """Raise :class:`PuzzleFormatError` naming two givens that clash, if any."""
    clash = find_clash(grid)
    if clash is not None:
        a, b, unit = clash
        size = grid.shape[0]
        digit = DIGIT_CHARS[int(grid.reshape(-1)[a]) - 1]
        raise PuzzleFormatError(
            f"contradictory givens: {cell_name(a, size)} and {cell_name(b, size)} are both {digit} in the same {unit}"
        )


def parse_puzzle(text: str, size: int = 9, check: bool = True) -> np.ndarray:
    """Parse ``S*S`` cell characters (``1-9``/``A-P``, blanks ``.`` or ``0``) into an ``int8`` grid.

    Whitespace anywhere and ``| + -`` box separators in a multi-line pasted grid
    (e.g. the output of :func:`format_grid`) are ignored, but the cell count must
    then be exactly ``S*S``. ``check`` also rejects givens that clash.
    """
    if not isinstance(text, str):
        raise PuzzleFormatError(f"puzzle must be a string, got {type(text).__name__}")
    box_size(size)
    n_cells = size * size
    table = _TABLES.get(size)
    if table is None:
        table = _TABLES[size] = _char_table(size)
    values: Optional[np.ndarray] = None
    if len(text) == n_cells and text.isascii():
        values = table[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
        if (values == 255).any():
            values = None  # fall through to the slow path for a precise message
    if values is None:
        skip = set(" \t\r\n\f\v")
        if "\n" in text.strip():
            skip |= set(SEPARATOR_CHARS)
        cells: list[int] = []
        for pos, ch in enumerate(text):
            if ch in skip:
                continue
            code = ord(ch)
            value = int(table[code]) if code < 256 else 255
            if value == 255:
                k = len(cells)
                where = f"position {pos + 1}" + (f" (cell {cell_name(k, size)})" if k < n_cells else "")
                raise PuzzleFormatError(
                    f"illegal character {ch!r} at {where}; use {DIGIT_CHARS[0]}-{DIGIT_CHARS[size - 1]}, '.' or '0'"
                )
            cells.append(value)
        if len(cells) != n_cells:
            raise PuzzleFormatError(
                f"wrong length: got {len(cells)} cells, expected {n_cells} for a {size}x{size} grid"
            )
        values = np.asarray(cells, dtype=np.uint8)
    grid = values.astype(np.int8).reshape(size, size)
    if check:
        check_givens(grid)
    return grid


def grid_to_line(grid: np.ndarray, blank: str = ".") -> str:
    """One-line form: ``S*S`` characters, ``blank`` for empty cells."""
    grid = check_grid(grid)
    chars = blank + DIGIT_CHARS[: grid.shape[0]]
    return "".join(chars[v] for v in grid.reshape(-1).tolist())


def format_grid(grid: np.ndarray, blank: str = ".") -> str:
    """Pretty multi-line grid with ``|`` / ``-+-`` box separators (re-parsable by :func:`parse_puzzle`)."""
    grid = check_grid(grid)
    size = grid.shape[0]
    n = box_size(size)
    chars = blank + DIGIT_CHARS[:size]
    rows = []
    rule = "+".join(["-" * (2 * n + 1)] * n)
    for r in range(size):
        if r and r % n == 0:
            rows.append(rule)
        boxes = [" ".join(chars[v] for v in grid[r, b * n:(b + 1) * n].tolist()) for b in range(n)]
        rows.append(" " + " | ".join(boxes) + " ")
    return "\n".join(line.rstrip() for line in rows)


# --------------------------------------------------------------------------- tokens


def encode_grid(grid: np.ndarray) -> np.ndarray:
    """Grid(s) ``[..., S, S]`` -> tokens ``uint8 [..., S*S]`` (0 pad, 1 blank, 2..S+1 digits)."""
    arr = np.asarray(grid)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise PuzzleFormatError(f"grid must have shape [..., S, S], got {tuple(arr.shape)}")
    size = arr.shape[-1]
    box_size(size)
    if arr.size and (arr.min() < 0 or arr.max() > size):
        raise PuzzleFormatError(f"grid values must be in 0..{size}, got {int(arr.min())}..{int(arr.max())}")
    tokens = np.where(arr == 0, BLANK_TOKEN, arr.astype(np.int64) + DIGIT_OFFSET).astype(np.uint8)
    return tokens.reshape(*arr.shape[:-2], size * size)


def decode_tokens(tokens: np.ndarray) -> np.ndarray:
    """Tokens ``[..., S*S]`` -> grid(s) ``int8 [..., S, S]``; pad and blank become 0."""
    arr = np.asarray(tokens)
    if arr.ndim < 1:
        raise PuzzleFormatError("tokens must have a cell axis [..., S*S]")
    size = size_from_cells(arr.shape[-1])
    if arr.dtype.kind not in "iu":
        raise PuzzleFormatError(f"tokens must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > size + DIGIT_OFFSET):
        raise PuzzleFormatError(
            f"token values must be in 0..{size + DIGIT_OFFSET} for a {size}x{size} grid, "
            f"got {int(arr.min())}..{int(arr.max())}"
        )
    grid = np.where(arr >= 2, arr.astype(np.int64) - DIGIT_OFFSET, 0).astype(np.int8)
    return grid.reshape(*arr.shape[:-1], size, size)


# --------------------------------------------------------------------------- validity


def _unit_counts(grid: np.ndarray) -> np.ndarray:
    """Digit counts per unit: ``[..., 3*S units, S digits]`` (rows, columns, boxes)."""
    size = grid.shape[-1]
    n = box_size(size)
    onehot = grid[..., None] == np.arange(1, size + 1, dtype=grid.dtype)  # [..., S, S, D]
    rows = onehot.sum(axis=-2)
    cols = onehot.sum(axis=-3)
    lead = grid.shape[:-2]
    boxes = onehot.reshape(*lead, n, n, n, n, size)  # [..., band, row, stack, col, D]
    boxes = np.moveaxis(boxes, -3, -4).reshape(*lead, size, size, size).sum(axis=-2)
    return np.concatenate([rows, cols, boxes], axis=-2)


def count_conflicts(grid: np.ndarray) -> "int | np.ndarray":
    """Augmented-HRM error: over rows, columns and boxes, sum of ``relu(count(d) - 1)``; blanks ignored.

    ``grid`` may be one grid ``[S, S]`` (returns ``int``) or a batch ``[..., S, S]``.
    """
    arr = np.asarray(grid)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise PuzzleFormatError(f"grid must have shape [..., S, S], got {tuple(arr.shape)}")
    counts = _unit_counts(arr.astype(np.int16, copy=False)).astype(np.int64)
    conflicts = np.maximum(counts - 1, 0).sum(axis=(-1, -2))
    return int(conflicts) if arr.ndim == 2 else conflicts


def is_valid_solution(grid: np.ndarray, puzzle: Optional[np.ndarray] = None) -> bool:
    """True if ``grid`` is complete, every unit holds each digit once, and it keeps ``puzzle``'s givens."""
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        return False
    size = arr.shape[0]
    if (arr < 1).any() or (arr > size).any():
        return False
    if count_conflicts(arr) != 0:
        return False
    if puzzle is not None:
        given = np.asarray(puzzle)
        if given.shape != arr.shape:
            return False
        mask = given != 0
        if not np.array_equal(arr[mask], given[mask]):
            return False
    return True


# --------------------------------------------------------------------------- files


@dataclass
class PuzzleRecord:
    """One puzzle from a file or the generator.

    ``rating``: the file's difficulty rating (Sudoku-Extreme CSV) or, for generated
    puzzles, the solver's guess count. ``source``: ``file:line`` or the CSV's source field.
    """

    puzzle: np.ndarray
    solution: Optional[np.ndarray] = None
    rating: Optional[float] = None
    source: str = ""


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Stream ``(line_number, text)`` pairs; one-line errors for bad bytes or absurd lines."""
    with open(path, "rb") as fh:
        lineno = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise PuzzleFormatError(f"{path}:{lineno}: line longer than {MAX_LINE_BYTES} bytes; not a puzzle file")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PuzzleFormatError(
                    f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                ) from None
            if lineno == 1:
                text = text.lstrip("\ufeff")
            yield lineno, text.rstrip("\r\n")


class SkippedLines:
    """Lines of a puzzle file that hold no puzzle (titles, comments, headers, other text), counted for one report."""

    def __init__(self) -> None:
        self.count = 0
        self.comments = 0
        self.first: list[tuple[int, str]] = []  # (line, text) of the first few

    def add(self, lineno: int, text: str, comment: bool = False) -> None:
        self.count += 1
        self.comments += comment
        if len(self.first) < 3:
            self.first.append((lineno, text.strip()[:40]))

    def message(self, name: str) -> "str | None":
        """One line for the user, or None when nothing was skipped."""
        if not self.count:
            return None
        where = ", ".join(str(n) for n, _ in self.first) + (", ..." if self.count > len(self.first) else "")
        kind = f"{self.comments} comment(s), {self.count - self.comments} other" if self.comments else "no puzzle"
        return f"{name}: skipped {self.count} line(s) without a puzzle ({kind}; line {where})"


COMMENT_PREFIXES = ("#", "//", ";")
PUZZLE_COLUMNS = ("question", "puzzle", "puzzles", "quiz", "quizzes", "grid", "sudoku", "problem", "board", "givens")
SOLUTION_COLUMNS = ("answer", "answers", "solution", "solutions", "solved")
RATING_COLUMNS = ("rating", "difficulty", "level", "score")
SOURCE_COLUMNS = ("source", "name", "id", "title")
GIVE_UP_LINES = 1000  # this many non-empty lines without any puzzle: not a puzzle file


def _records(path: Path) -> Iterator[tuple[int, list[str], str]]:
    """``(first line, fields, text)`` of each non-empty, non-comment record.

    A record is one line, or several when a quoted CSV field holds a newline. Fields
    are the comma-separated CSV fields (quotes removed). Comment lines (``#``, ``//``,
    ``;``) come out with no fields so they can be counted.
    """
    lines = _lines(path)
    for lineno, text in lines:
        stripped = text.strip()
        if not stripped:
            continue
        if stripped.startswith(COMMENT_PREFIXES):
            yield lineno, [], text
            continue
        if '"' in text:
            buf = text
            while buf.count('"') % 2:  # a quoted field continues on the next line
                nxt = next(lines, None)
                if nxt is None or len(buf) > MAX_LINE_BYTES:
                    raise PuzzleFormatError(f"{path}:{lineno}: unterminated quoted CSV field")
                buf += "\n" + nxt[1]
            try:
                fields = next(csv.reader(io.StringIO(buf)), [])
            except csv.Error as exc:
                raise PuzzleFormatError(f"{path}:{lineno}: bad CSV row ({exc})") from None
            yield lineno, fields, buf
        else:
            yield lineno, text.split(","), text


def _cell_chars(size: int) -> frozenset:
    return frozenset(DIGIT_CHARS[:size] + DIGIT_CHARS[:size].lower() + BLANK_CHARS)


def _grid_in(field: str, size: int, where: str, cells: frozenset) -> Optional[np.ndarray]:
    """The grid a field holds (givens unchecked), None if it holds none; raises if it is a broken puzzle.

    A field is a puzzle when its first whitespace-separated token is one (trailing
    names and ratings are ignored), or when the whole field is a multi-line pasted
    grid. A token of exactly ``S*S`` characters, or of only cell characters and
    nearly ``S*S`` long, is taken for a puzzle with a typo and reported.
    """
    field = field.strip().strip("'\"").strip()
    if not field:
        return None
    n_cells = size * size
    candidates = [field] if "\n" in field else []
    candidates += [t for t in field.replace(";", " ").split()[:1]]
    for tok in candidates:
        if "\n" not in tok:
            if len(tok) != n_cells and not (set(tok) <= cells and abs(len(tok) - n_cells) <= size):
                continue
            if len(tok) == n_cells and sum(c in cells for c in tok) < n_cells * 0.9:
                continue
        try:
            return parse_puzzle(tok, size=size, check=False)
        except PuzzleFormatError as exc:
            if "\n" in tok:
                continue
            raise PuzzleFormatError(f"{where}: {exc}") from None
    return None


def _header(fields: list[str]) -> Optional[dict[str, int]]:
    names = [f.strip().strip("'\"").strip().lower() for f in fields]
    col: dict[str, int] = {}
    for key, options in (("puzzle", PUZZLE_COLUMNS), ("solution", SOLUTION_COLUMNS),
                         ("rating", RATING_COLUMNS), ("source", SOURCE_COLUMNS)):
        hit = [names.index(o) for o in options if o in names]  # the first option named wins
        if hit:
            col[key] = hit[0]
    return col if "puzzle" in col else None


def _iter_any_file(path: Path, size: int, check_solutions: bool, skipped: Optional[SkippedLines]) -> Iterator[PuzzleRecord]:
    skipped = skipped if skipped is not None else SkippedLines()
    cells = _cell_chars(size)
    col: Optional[dict[str, int]] = None
    found = 0
    seen = 0
    for lineno, fields, text in _records(path):
        seen += 1
        where = f"{path}:{lineno}"
        if not fields:
            skipped.add(lineno, text, comment=True)
            continue
        if col is not None and len(fields) > col["puzzle"]:
            grids = [(j, g) for j, f in enumerate(fields)
                     if j in (col["puzzle"], col.get("solution")) and (g := _grid_in(f, size, where, cells)) is not None]
        else:
            grids = [(j, g) for j, f in enumerate(fields) if (g := _grid_in(f, size, where, cells)) is not None]
        if col is not None:
            puzzle = next((g for j, g in grids if j == col["puzzle"]), None)
        else:
            puzzle = next((g for _, g in grids if (g == 0).any()), grids[0][1] if grids else None)
        if puzzle is None:
            head = _header(fields) if col is None and not found else None
            if head is not None:
                col = head  # a header row: not counted as skipped
                continue
            skipped.add(lineno, text)
            if not found and seen >= GIVE_UP_LINES:
                raise PuzzleFormatError(f"{path}:{skipped.first[0][0]}: no {size}x{size} Sudoku puzzle in the first "
                                        f"{seen} lines; not a puzzle file")
            continue
        try:
            check_givens(puzzle)
        except PuzzleFormatError as exc:
            raise PuzzleFormatError(f"{where}: {exc}") from None
        solution = None
        if col is not None and "solution" in col:
            solution = next((g for j, g in grids if j == col["solution"]), None)
            if solution is None and len(fields) > col["solution"] and fields[col["solution"]].strip():
                raise PuzzleFormatError(f"{where}: the answer field is not a {size}x{size} grid")
            if solution is not None and check_solutions and not is_valid_solution(solution, puzzle):
                raise PuzzleFormatError(f"{where}: answer is not a valid solution of the question")
        elif col is None:
            solution = next((g for _, g in grids if g is not puzzle and not (g == 0).any()
                             and is_valid_solution(g, puzzle)), None)
        rating = None
        if col is not None and "rating" in col and len(fields) > col["rating"] and fields[col["rating"]].strip():
            raw = fields[col["rating"]].strip()
            try:
                rating = float(raw)
            except ValueError:
                raise PuzzleFormatError(f"{where}: rating {raw!r} is not a number") from None
        source = f"{path.name}:{lineno}"
        if col is not None and "source" in col and len(fields) > col["source"] and fields[col["source"]].strip():
            source = fields[col["source"]].strip()
        found += 1
        yield PuzzleRecord(puzzle, solution, rating, source)


def iter_puzzle_file(path: "str | Path", size: int = 9, check_solutions: bool = True,
                     skipped: Optional[SkippedLines] = None) -> Iterator[PuzzleRecord]:
    """Stream records from a puzzle file (see :func:`read_puzzle_file`) without loading it whole.

    ``skipped`` (a :class:`SkippedLines`) collects the lines that held no puzzle.
    """
    path = Path(path)
    box_size(size)
    if not path.is_file():
        raise PuzzleFormatError(f"{path}: no such file")
    yield from _iter_any_file(path, size, check_solutions, skipped)


def read_puzzle_file(
    path: "str | Path", size: int = 9, limit: Optional[int] = None, check_solutions: bool = True,
    skipped: Optional[SkippedLines] = None,
) -> list[PuzzleRecord]:
    """Read puzzles from the files people have: ``.sdm``/``.txt`` lines, CSV, collections with titles.

    One puzzle per line (or per CSV record). Skipped and counted in ``skipped``:
    blank lines (not counted), comment lines (``#``, ``//``, ``;``), title lines and
    any other line without a puzzle. On a line, the puzzle may sit in any
    comma-separated field, followed by names or ratings after whitespace; a
    UTF-8 BOM is ignored; quoted CSV fields may hold commas and newlines. A CSV
    header naming a puzzle column (``question``, ``puzzle``, ``quizzes``, ...) picks
    the puzzle, answer (``answer``/``solution``), rating and source columns, and
    answers are checked against their questions; without a header, a full grid on
    the line that solves the puzzle is its answer. A token that is almost a puzzle
    (``S*S`` characters with a typo, or cell characters a few too many or few)
    raises :class:`PuzzleFormatError` naming file and line. ``limit`` stops after
    that many records.
    """
    records = []
    for record in iter_puzzle_file(path, size=size, check_solutions=check_solutions, skipped=skipped):
        if limit is not None and len(records) >= limit:
            break
        records.append(record)
    return records
