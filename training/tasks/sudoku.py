"""Sudoku grids: parse, format, encode/decode, validate, read puzzle files; plus the CLI.

A grid is a numpy ``int8`` array ``[S, S]`` with ``S = n*n`` (``n=3`` -> 9x9,
``n=2`` -> 4x4) and ``0`` for a blank. Token encoding (the HRM/TRM reference
layout): ``0`` pad, ``1`` blank, ``2..S+1`` digits ``1..S``.

Bad input raises :class:`PuzzleFormatError` (a ``ValueError``) with a one-line
message naming the problem and, for files, the file and line number.

CLI::

    python -m training.tasks.sudoku solve "4...3.......6..8....<81 chars>"
    python -m training.tasks.sudoku generate -n 5 --seed 0
    python -m training.tasks.sudoku build --out data/sudoku-gen --n-train 1000 --n-test 200 --n-aug 8
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

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


def _is_csv(path: Path) -> bool:
    if path.suffix.lower() == ".csv":
        return True
    for _, text in _lines(path):
        if text.strip():
            return text.strip().lower().startswith("source,question")
    return False


def _parse_at(text: str, size: int, where: str, check: bool = True) -> np.ndarray:
    try:
        return parse_puzzle(text, size=size, check=check)
    except PuzzleFormatError as exc:
        raise PuzzleFormatError(f"{where}: {exc}") from None


def _iter_lines_file(path: Path, size: int) -> Iterator[PuzzleRecord]:
    for lineno, text in _lines(path):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        field = stripped.split()[0]  # some collections append ratings or names after whitespace
        where = f"{path}:{lineno}"
        yield PuzzleRecord(_parse_at(field, size, where), None, None, f"{path.name}:{lineno}")


def _iter_csv_file(path: Path, size: int, check_solutions: bool) -> Iterator[PuzzleRecord]:
    numbered = _lines(path)
    header_line = None
    for lineno, text in numbered:
        if text.strip():
            header_line = (lineno, text)
            break
    if header_line is None:
        return
    try:
        header = [h.strip().lower() for h in next(csv.reader([header_line[1]]))]
    except csv.Error as exc:
        raise PuzzleFormatError(f"{path}:{header_line[0]}: bad CSV header ({exc})") from None
    if "question" not in header:
        raise PuzzleFormatError(f"{path}:{header_line[0]}: CSV header must name a 'question' column, got {header}")
    col = {name: header.index(name) for name in ("source", "question", "answer", "rating") if name in header}
    for lineno, text in numbered:
        if not text.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = next(csv.reader([text]))
        except csv.Error as exc:
            raise PuzzleFormatError(f"{where}: bad CSV row ({exc})") from None
        if len(row) != len(header):
            raise PuzzleFormatError(f"{where}: expected {len(header)} CSV fields ({','.join(header)}), got {len(row)}")
        puzzle = _parse_at(row[col["question"]].strip(), size, where)
        solution = None
        if "answer" in col and row[col["answer"]].strip():
            solution = _parse_at(row[col["answer"]].strip(), size, where + " (answer)", check=False)
            if check_solutions and not is_valid_solution(solution, puzzle):
                raise PuzzleFormatError(f"{where}: answer is not a valid solution of the question")
        rating = None
        if "rating" in col and row[col["rating"]].strip():
            raw = row[col["rating"]].strip()
            try:
                rating = float(raw)
            except ValueError:
                raise PuzzleFormatError(f"{where}: rating {raw!r} is not a number") from None
        source = row[col["source"]].strip() if "source" in col else f"{path.name}:{lineno}"
        yield PuzzleRecord(puzzle, solution, rating, source)


def iter_puzzle_file(path: "str | Path", size: int = 9, check_solutions: bool = True) -> Iterator[PuzzleRecord]:
    """Stream records from a puzzle file (see :func:`read_puzzle_file`) without loading it whole."""
    path = Path(path)
    box_size(size)
    if not path.is_file():
        raise PuzzleFormatError(f"{path}: no such file")
    if _is_csv(path):
        yield from _iter_csv_file(path, size, check_solutions)
    else:
        yield from _iter_lines_file(path, size)


def read_puzzle_file(
    path: "str | Path", size: int = 9, limit: Optional[int] = None, check_solutions: bool = True
) -> list[PuzzleRecord]:
    """Read puzzles from ``.sdm``/``.txt`` (one ``S*S``-char puzzle a line) or a Sudoku-Extreme CSV.

    Line files: blank lines and ``#`` comments are skipped; anything after the first
    whitespace on a line (ratings, names) is ignored. CSV: header
    ``source,question,answer,rating``; answers are checked against their questions.
    ``limit`` stops after that many records. Errors name the file and line.
    """
    records = []
    for record in iter_puzzle_file(path, size=size, check_solutions=check_solutions):
        if limit is not None and len(records) >= limit:
            break
        records.append(record)
    return records


# --------------------------------------------------------------------------- CLI


def _cmd_solve(args: argparse.Namespace) -> int:
    from .sudoku_solver import solve_puzzle

    text = args.puzzle
    if text == "-":
        text = sys.stdin.read()
    size = args.size
    if size is None:
        cells = sum(1 for ch in text if not ch.isspace() and ch not in SEPARATOR_CHARS)
        size = 4 if cells == 16 else 9
    grid = parse_puzzle(text, size=size)
    result = solve_puzzle(grid)
    print(format_grid(result.solution))
    print(grid_to_line(result.solution))
    verdict = "unique" if result.unique else "NOT unique (at least 2 solutions)"
    print(f"solution: {verdict}; guesses: {result.guesses}; backtracks: {result.backtracks}; "
          f"blanks: {int((grid == 0).sum())}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .sudoku_generate import generate

    records = generate(
        args.n, size=args.size, min_blanks=args.min_blanks, max_blanks=args.max_blanks,
        min_guesses=args.min_guesses, seed=args.seed, workers=args.workers,
    )
    for rec in records:
        print(f"{grid_to_line(rec.puzzle)} {grid_to_line(rec.solution)} {int(rec.rating)}")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from .sudoku_build import build_sudoku_dataset

    summary = build_sudoku_dataset(
        args.out, source=args.source, n_train=args.n_train, n_test=args.n_test, n_aug=args.n_aug,
        seed=args.seed, size=args.size, min_blanks=args.min_blanks, max_blanks=args.max_blanks,
        min_guesses=args.min_guesses, data_mixing=args.data_mixing, progress=not args.quiet,
        workers=args.workers,
    )
    for split, info in summary.items():
        print(f"{split}: {info}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.tasks.sudoku", description="Sudoku tools")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("solve", help="solve one puzzle and report uniqueness and guesses")
    p.add_argument("puzzle", help="S*S cells ('.' or '0' blank), or '-' to read a pasted grid from stdin")
    p.add_argument("--size", type=int, default=None, help="grid side (default: 4 for 16 cells, else 9)")
    p.set_defaults(func=_cmd_solve)

    def add_generation(q: argparse.ArgumentParser) -> None:
        q.add_argument("--size", type=int, default=9)
        q.add_argument("--min-blanks", type=int, default=None)
        q.add_argument("--max-blanks", type=int, default=None)
        q.add_argument("--min-guesses", type=int, default=0)
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--workers", type=int, default=0,
                       help="generator processes (default 0: one per CPU; the puzzles do not depend on it)")

    p = sub.add_parser("generate", help="print generated puzzles: 'puzzle solution guesses' per line")
    p.add_argument("-n", type=int, default=10)
    add_generation(p)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("build", help="write a train/test dataset in the HRM/TRM reference layout")
    p.add_argument("--out", required=True)
    p.add_argument("--source", default="generate", help="'generate' or a puzzle file (.sdm/.txt/.csv)")
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--n-aug", type=int, default=0, help="augmented copies per training puzzle")
    p.add_argument("--data-mixing", action="store_true", help="add an easier twin per training example")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_generation(p)
    p.set_defaults(func=_cmd_build)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
