"""Maze command line: build a dataset or print a generated maze.

    python -m tasks.maze build --out out/maze-11 --size 11 --n-train 100 --n-test 50 --n-aug 1
    python -m tasks.maze show --size 11 --seed 3
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from common.cli_format import Parser, UsageError, print_error
from common.cli_types import bounded_int, nonneg_int, path_str, positive_int, probability, seed_int

from tasks.maze.build import build_maze_dataset
from tasks.maze.generate import generate_maze
from tasks.maze.grid import format_maze
from tasks.maze.solver import path_length

DESCRIPTION = 'Maze path finding (the "Maze-Hard" task): generate, parse, solve, check, augment, build.'


SIZE = bounded_int(5, 201, "maze side in [5, 201]")


def build_parser() -> Parser:
    """The parser of ``python -m tasks.maze``."""
    parser = Parser(prog="python -m tasks.maze", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write a maze puzzle dataset")
    b.add_argument("--out", type=path_str, required=True)
    b.add_argument("--n-train", type=positive_int, default=1000)
    b.add_argument("--n-test", type=positive_int, default=1000)
    b.add_argument("--size", type=SIZE, default=30)
    b.add_argument("--min-path-length", type=positive_int, default=None)
    b.add_argument("--n-aug", type=nonneg_int, default=0)
    b.add_argument("--seed", type=seed_int, default=0)
    b.add_argument("--loop-fraction", type=probability, default=0.05)
    s = sub.add_parser("show", help="print one generated maze and its solution")
    s.add_argument("--size", type=SIZE, default=15)
    s.add_argument("--min-path-length", type=positive_int, default=None)
    s.add_argument("--seed", type=seed_int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tasks.maze {build,show}``: build a dataset or print a generated maze."""
    try:
        args = build_parser().parse_args(argv)
        if args.cmd == "build":
            out = build_maze_dataset(
                args.out, args.n_train, args.n_test, args.size, args.min_path_length, args.n_aug, args.seed,
                args.loop_fraction,
            )
            print(f"wrote {out}/train and {out}/test")
        else:
            puzzle, label = generate_maze(args.size, args.seed, args.min_path_length)
            print(format_maze(puzzle))
            print()
            print(format_maze(label))
            print(f"shortest path: {path_length(puzzle)} moves")
    except (UsageError, ValueError, OSError) as exc:
        return print_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
