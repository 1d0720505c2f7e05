"""``interp demo``: the README's main job — trace a shipped zoo checkpoint on fresh puzzles.

No download: the checkpoint is committed under ``zoo/`` and the puzzles come
from the project's own generator (deterministic seed, never seen in training,
since the zoo's training/test sets use other seeds). Prints the step-by-step
story of the first puzzle and a per-puzzle summary, writes the trace and the
HTML viewer.
"""

from __future__ import annotations

import argparse

DEFAULT_CKPT = "trm-sudoku9"
DEMO_STATE_PUZZLES = 2  # full per-step states of the first puzzles only (2 MB each for the zoo TRM); summaries of all


def demo_puzzles(n: int, seed: int, size: int = 9) -> list[str]:
    """``n`` generated puzzles with unique solutions (same blank range as the zoo's training data)."""
    from tasks.sudoku.grid import grid_to_line
    from tasks.sudoku.generate import generate

    return [grid_to_line(r.puzzle) for r in generate(n, size=size, min_blanks=30, max_blanks=45, seed=seed)]


def cmd_demo(args: argparse.Namespace) -> int:
    import hashlib

    from common.io import atomic_write_text, ensure_out_not_symlink
    from common.outputs import check_replaceable, listed_files, record_outputs, recorded_files
    from common.cli_format import Parser
    from interp.cli.common import checkpoint_task, load_model
    from interp.cli.trace import add_trace_parsers, cmd_trace
    from models.zoo import zoo_checkpoint

    ckpt = zoo_checkpoint(args.ckpt)
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    out = ensure_out_not_symlink(args.out)
    checkpoint_task(str(ckpt), None)  # validate the checkpoint before anything is written
    load_model(str(ckpt))
    from common.progress import status

    # the generator proves every puzzle unique with the compiled solver: numba compiles it on the first use in a
    # fresh install (about a minute on a 2-core laptop), later runs load the cached machine code
    status(f"demo: generating {args.n} puzzles (seed {args.seed}); the first run after installing also compiles the "
           "Sudoku solver once, which can take a minute", enabled=not args.quiet)
    text = "\n".join(demo_puzzles(args.n, args.seed)) + "\n"
    puzzle_file = out / "puzzles.sdm"
    # only an earlier demo's files (recorded with their SHA-256) are replaced; trace/ is checked by the trace itself
    known = {f: None for f in listed_files(out) if f.startswith("trace/")} if out.is_dir() else {}
    if out.is_dir() and recorded_files(out) is None:  # a demo from before records: its puzzles if unchanged
        known["puzzles.sdm"] = hashlib.sha256(text.encode()).hexdigest()
    check_replaceable(out, ValueError, "demo output", known=known)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(puzzle_file, text)
    print(f"demo: tracing {ckpt} on {args.n} freshly generated 9x9 puzzles (seed {args.seed}) -> {out}\n")
    # the trace command's own parser fills every other option with its defaults (one source of truth)
    parser = Parser(prog="interp")
    add_trace_parsers(parser.add_subparsers(dest="command", parser_class=Parser))
    trace_args = parser.parse_args([
        "trace", "--ckpt", str(ckpt), "--puzzle-file", str(puzzle_file), "--out", str(out / "trace"),
        "--state-puzzles", str(min(args.n, DEMO_STATE_PUZZLES)), "--viewer-puzzles", str(min(args.n, 16)), "--color", args.color, "--overwrite", *(["--quiet"] if args.quiet else []),
    ])
    rc = cmd_trace(trace_args)
    record_outputs(out, {"command": "demo"})
    return rc


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    from common.cli_format import examples
    from common.cli_options import add_quiet
    from common.cli_types import bounded_int, cap_note, path_str, seed_int

    DEMO_N = bounded_int(1, 10_000, "puzzles in [1, 10000]")

    p = sub.add_parser("demo", help="trace a shipped zoo checkpoint on generated puzzles (no download)",
                       epilog=examples("interp demo", "interp demo --ckpt hrm-sudoku9 --n 4 --out out/demo-hrm"))
    p.add_argument("--ckpt", type=path_str, default=DEFAULT_CKPT, help="zoo name or checkpoint path")
    p.add_argument("--n", type=DEMO_N, default=16, help=f"number of puzzles{cap_note(DEMO_N)}")
    p.add_argument("--seed", type=seed_int, default=20261123, help="generator seed for the demo puzzles")
    p.add_argument("--out", type=path_str, default="out/demo", help="output directory (trace, viewer.html, puzzles)")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="coloured grids")
    add_quiet(p)
    p.set_defaults(func=cmd_demo)
