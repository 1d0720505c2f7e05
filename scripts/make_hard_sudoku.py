"""Write the training file of the hard-Sudoku zoo models (zoo/configs/*_sudoku9_hard.yaml).

    python scripts/make_hard_sudoku.py --sudoku17 ../shared/data/sudoku/sudoku17.sdm --out .hard/hard_train.csv

Rows (CSV: source, question, answer, rating = the solver's guesses):

* 28,000 generated puzzles with 52-60 blanks (seed 11) and 12,000 with 44-52 blanks (seed 12),
  each with a unique solution (``tasks.sudoku.generate``);
* 10,000 minimal-clue puzzles: lines 1001-11000 of Gordon Royle's 17-clue collection, solved
  here. Lines 1-1000 are never trained on: they are the held-out ``sudoku17`` evaluation set.

With ``--heldout-out FILE`` it also writes the *honest* held-out set: lines 1-1000 less those whose solution
grid equals a training grid up to symmetry (``tasks.sudoku.canonical``; 38 of the 1000, all of them equivalent
to one of the training 17-clue lines), as ``data/sudoku/sudoku17_first1000_dedup.sdm``:

    python scripts/make_hard_sudoku.py --sudoku17 PATH/sudoku17.sdm --heldout-out data/sudoku/sudoku17_first1000_dedup.sdm

The order is fixed by two seeded shuffles, so the file is identical on every run (its SHA-256
is printed). The zoo configs read it from ``.hard/hard_train.csv``.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.atomic import atomic_write  # noqa: E402
from common.hashing import file_sha256  # noqa: E402
from common.cli_format import Parser  # noqa: E402
from common.cli_types import bounded_int, path_str  # noqa: E402
from tasks.sudoku.generate import generate  # noqa: E402
from tasks.sudoku.grid import grid_to_line, parse_puzzle, read_puzzle_file  # noqa: E402
from tasks.sudoku.heldout import held_out_mask, keys_of  # noqa: E402
from tasks.sudoku.solver import solve  # noqa: E402

GENERATED = (("gen-a", 28000, 52, 60, 11), ("gen-b", 12000, 44, 52, 12))
MINIMAL_LINES = (1001, 11000)  # 1-based, inclusive; lines 1..1000 are held out
HELD_OUT = 1000


def _write_heldout(path: Path, sudoku17: Path, rows: list[list[str]]) -> int:
    """Lines 1..HELD_OUT of ``sudoku17`` not equivalent to any training answer; returns how many were dropped."""
    held = read_puzzle_file(sudoku17, limit=HELD_OUT)
    sols = np.stack([solve(r.puzzle).solution for r in held])
    train = set(keys_of(np.stack([parse_puzzle(r[2]) for r in rows]), progress=True,
                        desc="canonical forms of the training answers"))
    keep = held_out_mask(sols, train)
    head = (f"# lines 1-{HELD_OUT} of Gordon Royle's 17-clue collection less the {int((~keep).sum())} whose solution "
            "grid equals a training grid of scripts/make_hard_sudoku.py up to symmetry\n")
    atomic_write(path, lambda tmp: Path(tmp).write_text(
        head + "".join(grid_to_line(r.puzzle) + "\n" for r, k in zip(held, keep) if k)))
    return int((~keep).sum())


def _write_csv(path: str, rows: list[list[str]]) -> None:
    """The puzzle table as CSV with its header row."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "question", "answer", "rating"])
        w.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    ap = Parser(description=__doc__)
    ap.add_argument("--sudoku17", type=path_str, required=True, help="the 17-clue collection (one puzzle per line)")
    ap.add_argument("--out", type=path_str, default=REPO / ".hard" / "hard_train.csv")
    ap.add_argument("--workers", type=bounded_int(0, 1024), default=0, help="generator processes (the puzzles do not depend on it)")
    ap.add_argument("--heldout-out", type=path_str, default=None,
                    help="also write lines 1-1000 less those equivalent to a training puzzle (up to symmetry) here")
    args = ap.parse_cli(argv)
    args.sudoku17, args.out = Path(args.sudoku17), Path(args.out)
    args.heldout_out = Path(args.heldout_out) if args.heldout_out else None
    rows: list[list[str]] = []
    for name, n, lo, hi, seed in GENERATED:
        for rec in generate(n, size=9, min_blanks=lo, max_blanks=hi, seed=seed, workers=args.workers):
            rows.append([name, grid_to_line(rec.puzzle), grid_to_line(rec.solution), str(int(rec.rating))])
    random.Random(0).shuffle(rows)
    first, last = MINIMAL_LINES
    minimal = read_puzzle_file(args.sudoku17, limit=last)[first - 1:last]
    if len(minimal) != last - first + 1:
        print(f"error: {args.sudoku17} has fewer than {last} puzzles", file=sys.stderr)
        return 2
    for i, rec in enumerate(minimal, start=first):
        res = solve(rec.puzzle)
        if not res.unique:
            print(f"error: {args.sudoku17}:{i} has no unique solution", file=sys.stderr)
            return 2
        rows.append([f"sudoku17:{i}", grid_to_line(rec.puzzle), grid_to_line(res.solution), str(res.guesses)])
    random.Random(1).shuffle(rows)
    atomic_write(args.out, lambda tmp: _write_csv(tmp, rows))
    print(f"wrote {args.out}: {len(rows)} puzzles, sha256 {file_sha256(args.out)}")
    if args.heldout_out is not None:
        dropped = _write_heldout(args.heldout_out, args.sudoku17, rows)
        print(f"wrote {args.heldout_out}: {HELD_OUT - dropped} held-out puzzles ({dropped} of {HELD_OUT} dropped: "
              "solution grid equivalent to a training grid)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
