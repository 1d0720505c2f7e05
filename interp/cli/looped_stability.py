"""``interp stability --loop-module``: FTLE, drift and residual of any transformers causal LM's loop.

    interp stability --ckpt DIR --loop-module model.norm --tokens "1 2 3 4" --out out/stability/ouro
    interp stability --ckpt DIR --loop-module z_L=model.L_module,z_H=model.H_module --text "The capital of"

The model, the tokens and the loop are read and checked as by ``interp trace --loop-module`` (same flags,
same one-line errors, nothing written on bad input); the step map is the replayed forward of
``interp.stability.looped_map``. Writes per_puzzle.csv (one row: the input), per_step.csv, settings.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_stability_looped(args: argparse.Namespace) -> int:
    """Check the options, load, plan the loop, measure, write and print the per-step table."""
    from common.cli_options import set_threads
    from common.outputs import check_replaceable
    from interp.cli.looped_trace import load_looped_lm, parse_loop

    if args.text is None and args.tokens is None:
        raise ValueError("--loop-module measures a language model on --text or --tokens, not on puzzles")
    if args.segments is not None or args.unit != "segment":
        raise ValueError("--segments and --unit do not apply to --loop-module (one step = one loop-module call)")
    loop = parse_loop(args.loop_module)
    norm = None if args.lens_norm == "none" else args.lens_norm
    out = Path(args.out) if args.out else Path("out") / "stability" / Path(args.ckpt).resolve().name
    check_replaceable(out, ValueError, "stability output")
    set_threads(args)
    model, folder, device, inputs, _ = load_looped_lm(args)
    from interp.stability.looped_run import looped_stability
    from interp.stability.report import write_stability_report

    result = looped_stability(model, inputs, loop, head=args.lens_head, norm=norm, k=args.tangents,
                              burn_in=args.burn_in, seed=args.seed, progress=sys.stderr.isatty())
    prov = {"checkpoint": folder, "tokens": inputs[0].tolist()[:64], "device": str(device)}
    paths = write_stability_report(result, out, title=f"Stability of {Path(folder).name}", provenance=prov)
    row = result.per_puzzle.iloc[0]
    print(f"loop {', '.join(f'{s}={p}' for s, p in result.settings['loop'].items())}: {int(row['calls'])} calls, "
          f"{int(row['n_steps'])} steps measured; largest FTLE {row['ftle']:.4g} per step, "
          f"residual {row['residual']:.4g}")
    if len(result.per_step):
        print(result.per_step.drop(columns="puzzle").to_string(index=False))
    print(f"written to {out}: " + ", ".join(p.name for p in paths.values()))
    return 0


__all__ = ["cmd_stability_looped"]
