"""``interp stability``: finite-time Lyapunov exponents, drift and residual of a checkpoint's step map.

    interp stability --ckpt zoo/trm-sudoku9 --puzzle-file puzzles.sdm --limit 300 --out out/stability/trm

Writes per_puzzle.csv, per_step.csv, settings.json, report.md (failure AUCs and
outcome-split statistics) and stability.png to ``--out`` and prints the report.
torch and the analysis are imported inside the command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli_types import batch_int, bounded_int, nonempty_str, nonneg_int, path_str, seed_int
from common.cli_options import add_device_option, add_threads_option, set_threads
from common.outputs import check_replaceable
from interp.cli.common import add_puzzle_inputs, checkpoint_task, load_model
from interp.cli.looped_trace import add_looped_options


def cmd_stability(args: argparse.Namespace) -> int:
    if args.loop_module is not None:  # any transformers LM, per call of its loop module(s)
        from interp.cli.looped_stability import cmd_stability_looped

        return cmd_stability_looped(args)
    if args.text is not None or args.tokens is not None:
        raise ValueError("--text/--tokens need --loop-module (the step map of a looped language model)")
    from tasks.puzzles import read_puzzles

    if args.tangents < 1:
        raise ValueError(f"--tangents must be >= 1, got {args.tangents}")
    task = checkpoint_task(args.ckpt, args.task)
    batch = read_puzzles(task, args.puzzle, args.puzzle_file, args.limit)
    from interp.stability.report import write_stability_report
    from interp.stability.run import stability

    out = Path(args.out) if args.out else Path("out") / "stability" / Path(args.ckpt).resolve().name
    check_replaceable(out, ValueError, "stability output")  # before any work: never a user's files, never a link
    set_threads(args)
    model, _ = load_model(args.ckpt)
    from interp.tracing.memory import check_run_cost

    n = len(batch.inputs)
    check_run_cost(model, n, args.segments or int(getattr(model.cfg, "halt_max_steps", 1)), copies=args.tangents + 1,
                   rows=min(n, args.batch_size), where="stability", hint="use fewer puzzles (--limit), segments "
                   "(--segments) or tangents (--tangents), or a smaller --batch-size")
    result = stability(model, batch.inputs, batch.labels, n_segments=args.segments, unit=args.unit, k=args.tangents,
                       burn_in=args.burn_in, batch_size=args.batch_size, seed=args.seed,
                       progress=sys.stderr.isatty() and len(batch.inputs) > 1)
    prov = {"checkpoint": args.ckpt, "puzzles": args.puzzle_file or "--puzzle", "limit": args.limit}
    paths = write_stability_report(result, out, title=f"Stability of {Path(args.ckpt).name}", provenance=prov)
    if "report" in paths:
        print(paths["report"].read_text())
    else:
        print(result.per_puzzle.describe().to_string())
    print(f"written to {out}: " + ", ".join(p.name for p in paths.values()))
    return 0


def add_stability_parser(sub: argparse._SubParsersAction) -> None:
    from common.cli_format import examples

    p = sub.add_parser("stability", help="FTLE, drift and fixed-point residual of the step map; failure AUCs",
                       epilog=examples("interp stability --ckpt zoo/hrm-sudoku9 --puzzle-file data/sudoku/qqwing_expert.sdm "
                                       "--limit 16 --out out/stability"),
                       description="FTLE, drift and fixed-point residual of the step map; failure AUCs. A looped "
                                   "transformers folder (docs/looped-models.md) takes --loop-module, e.g. "
                                   "interp stability --ckpt FOLDER --loop-module auto --tokens '1 2 3 4'.")
    src = add_puzzle_inputs(p)
    src.add_argument("--text", type=nonempty_str, help="with --loop-module: one text, tokenised with the folder's tokenizer")
    src.add_argument("--tokens", type=nonempty_str, help="with --loop-module: token ids separated by commas or spaces")
    add_looped_options(p)
    add_device_option(p, help="with --loop-module: auto (cuda when available, else cpu), cpu or cuda")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                   help="with --loop-module: override the weights' dtype")
    p.add_argument("--unit", choices=["segment", "cycle"], default="segment",
                   help="one step = one ACT segment (default) or one outer cycle")
    p.add_argument("--tangents", type=bounded_int(1, 1024), default=4, help="tangent vectors k (top-k spectrum; default 4)")
    p.add_argument("--burn-in", type=nonneg_int, default=0, help="steps left out of the exponent average")
    p.add_argument("--batch-size", type=batch_int, default=32, help="puzzles per forward pass")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the random tangent vectors")
    add_threads_option(p, help="torch CPU threads; 0 = torch's own choice (stability's default before it took the "
                               "shared default 1)")
    p.add_argument("--out", type=path_str, help="output directory (default out/stability/<checkpoint>)")
    p.set_defaults(func=cmd_stability)
