"""ARC command line: build a dataset or count the tasks of a source.

    python -m tasks.arc list --source arc1
    python -m tasks.arc build --out out/arc1-small --subset 20 --n-aug 4
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from common.cli_format import Parser, UsageError, print_error
from common.cli_types import nonempty_str, nonneg_int, path_str, positive_int, seed_int

from tasks.arc.build import build_arc_dataset
from tasks.arc.task import load_arc_tasks


def build_parser() -> Parser:
    """The parser of ``python -m tasks.arc``."""
    parser = Parser(prog="python -m tasks.arc", description="ARC-AGI tasks")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write an ARC puzzle dataset")
    b.add_argument("--out", type=path_str, required=True)
    b.add_argument("--source", type=nonempty_str, default="arc1", help="arc1, arc2, or a directory of task JSON files")
    b.add_argument("--n-aug", type=nonneg_int, default=8)
    b.add_argument("--seed", type=seed_int, default=0)
    b.add_argument("--subset", type=positive_int, default=None, help="only the first N tasks")
    b.add_argument("--no-translate", action="store_true")
    b.add_argument("--reference-split", action="store_true", help="test pairs of 'training' tasks go to train")
    ls = sub.add_parser("list", help="count the tasks of a source")
    ls.add_argument("--source", type=nonempty_str, default="arc1")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tasks.arc {build,list}``."""
    try:
        args = build_parser().parse_args(argv)
        if args.cmd == "build":
            out = build_arc_dataset(
                args.out, args.source, args.n_aug, args.seed, args.subset, not args.no_translate,
                ("training",) if args.reference_split else (),
            )
            print(f"wrote {out}/train and {out}/test")
        else:
            tasks = load_arc_tasks(args.source)
            counts: dict[str, int] = {}
            for t in tasks:
                counts[t.collection] = counts.get(t.collection, 0) + 1
            print(f"{len(tasks)} tasks: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    except (UsageError, ValueError, OSError) as exc:
        return print_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
