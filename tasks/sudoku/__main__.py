"""Sudoku command line: solve one puzzle, generate puzzles, build a dataset.

    python -m tasks.sudoku solve "4...3.......6..8....<81 chars>"
    python -m tasks.sudoku generate -n 5 --seed 0
    python -m tasks.sudoku build --out data/sudoku-gen --n-train 1000 --n-test 200 --n-aug 8
"""

from __future__ import annotations

import argparse
import sys
from common.cli_format import Parser, UsageError, print_error
from common.cli_types import bounded_int, nonempty_str, nonneg_int, path_str, positive_int, seed_int
from typing import Optional, Sequence

from tasks.sudoku.grid import SEPARATOR_CHARS, format_grid, grid_to_line, parse_puzzle


def _cmd_solve(args: argparse.Namespace) -> int:
    from tasks.sudoku.solver import solve_puzzle

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
    from tasks.sudoku.generate import generate

    records = generate(
        args.n, size=args.size, min_blanks=args.min_blanks, max_blanks=args.max_blanks,
        min_guesses=args.min_guesses, seed=args.seed, workers=args.workers,
    )
    for rec in records:
        print(f"{grid_to_line(rec.puzzle)} {grid_to_line(rec.solution)} {int(rec.rating)}")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from tasks.sudoku.build import build_sudoku_dataset

    summary = build_sudoku_dataset(
        args.out, source=args.source, n_train=args.n_train, n_test=args.n_test, n_aug=args.n_aug,
        seed=args.seed, size=args.size, min_blanks=args.min_blanks, max_blanks=args.max_blanks,
        min_guesses=args.min_guesses, data_mixing=args.data_mixing, progress=not args.quiet,
        workers=args.workers,
    )
    for split, info in summary.items():
        print(f"{split}: {info}")
    return 0


SIZE = bounded_int(1, 25, "grid side in [1, 25]")


def build_parser() -> Parser:
    """The parser of ``python -m tasks.sudoku``."""
    parser = Parser(prog="python -m tasks.sudoku", description="Sudoku tools")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("solve", help="solve one puzzle and report uniqueness and guesses")
    p.add_argument("puzzle", type=nonempty_str, help="S*S cells ('.' or '0' blank), or '-' to read a pasted grid from stdin")
    p.add_argument("--size", type=SIZE, default=None, help="grid side (default: 4 for 16 cells, else 9)")
    p.set_defaults(func=_cmd_solve)

    def add_generation(q: argparse.ArgumentParser) -> None:
        q.add_argument("--size", type=SIZE, default=9)
        q.add_argument("--min-blanks", type=nonneg_int, default=None)
        q.add_argument("--max-blanks", type=nonneg_int, default=None)
        q.add_argument("--min-guesses", type=nonneg_int, default=0)
        q.add_argument("--seed", type=seed_int, default=0)
        q.add_argument("--workers", type=bounded_int(0, 1024), default=0,
                       help="generator processes (default 0: one per CPU; the puzzles do not depend on it)")

    p = sub.add_parser("generate", help="print generated puzzles: 'puzzle solution guesses' per line")
    p.add_argument("-n", type=positive_int, default=10, help="puzzles to print")
    add_generation(p)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("build", help="write a train/test dataset in the HRM/TRM reference layout")
    p.add_argument("--out", type=path_str, required=True)
    p.add_argument("--source", type=nonempty_str, default="generate", help="'generate' or a puzzle file (.sdm/.txt/.csv)")
    p.add_argument("--n-train", type=positive_int, default=1000)
    p.add_argument("--n-test", type=positive_int, default=200)
    p.add_argument("--n-aug", type=nonneg_int, default=0, help="augmented copies per training puzzle")
    p.add_argument("--data-mixing", action="store_true", help="add an easier twin per training example")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_generation(p)
    p.set_defaults(func=_cmd_build)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, ValueError, OSError) as exc:
        return print_error(exc)


if __name__ == "__main__":
    sys.exit(main())
