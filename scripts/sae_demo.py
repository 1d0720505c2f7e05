"""SAE demonstration (docs/sae.md): trace a checkpoint, train an SAE on one state pooled over steps, name features.

    PYTHONPATH=$PWD python scripts/sae_demo.py --ckpt zoo/trm-sudoku9 --puzzle-file out/stability/mixed.sdm \
        --every 3 --out out/sae/trm-sudoku9

Writes ``features.md`` (per target the most selective feature: AUC, correlation,
mean activation and firing rate on / off the target), ``named.csv``,
``trajectories.csv`` (named features, per puzzle and step), ``sae.pt`` (the
SAE's state dict and settings) and ``viewer.html`` (feature trajectories of the
first failed puzzle, or puzzle 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from common.atomic import atomic_write_text
from common.cli_format import Parser, print_error
from common.cli_options import add_threads_option, set_threads
from common.cli_types import bounded_int, nonempty_str, nonneg_float, path_str, positive_int, seed_int
from common.markdown import markdown_table
from common.plotly_html import write_html
from interp.tracing.tracer import trace
from interp.views.sae_viewer import feature_trajectory_figure
from models.load import load_any
from probes.sae import encode_array, train_sae
from probes.sae_features import cell_targets, feature_trajectories, name_features, sae_inputs_from_trace
from tasks.puzzles import read_puzzles, resolve_task

SHOW = ("given", "decided", "correct", "clash")  # targets drawn in the viewer


def build_parser() -> Parser:
    """The options of this script."""
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", type=path_str, default="zoo/trm-sudoku9")
    p.add_argument("--puzzle-file", type=path_str, required=True)
    p.add_argument("--every", type=positive_int, default=1, help="use every n-th puzzle of the file")
    p.add_argument("--limit", type=positive_int, help="at most this many puzzles (after --every)")
    p.add_argument("--state", type=nonempty_str, default="answer", help="state to train on (answer, y, z, z_H, z_L, ...)")
    p.add_argument("--features", type=bounded_int(1, 1 << 16), default=256, help="SAE features")
    p.add_argument("--l1", type=nonneg_float, default=0.1, help="L1 coefficient (0.1: about 8 active features per cell on zoo/trm-sudoku9)")
    p.add_argument("--topk", type=bounded_int(1, 1 << 16), help="TopK SAE with this k instead of L1 (at most --features)")
    p.add_argument("--steps", type=bounded_int(1, 10**7), default=3000, help="Adam steps")
    p.add_argument("--seed", type=seed_int, default=0)
    add_threads_option(p)
    p.add_argument("--out", type=path_str, default="out/sae")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_cli(argv)
    if args.topk is not None and args.topk > args.features:
        return print_error(f"--topk {args.topk} is larger than --features {args.features}")
    try:
        return _run(args)
    except (ValueError, OSError, KeyError) as e:
        return print_error(e)


def _run(args: argparse.Namespace) -> int:
    set_threads(args)
    torch.manual_seed(args.seed)

    model, _ = load_any(args.ckpt)
    batch = read_puzzles(resolve_task(model.cfg.to_dict(), None, "sudoku"), None, args.puzzle_file)
    idx = np.arange(0, len(batch.inputs), args.every)[: args.limit]
    x, y = batch.inputs[idx], batch.labels[idx]
    tr = trace(model, x, y, states=[args.state], confidence=False)
    states, steps = sae_inputs_from_trace(tr, args.state)
    N, T, L, D = states.shape
    print(f"{N} puzzles x {T} steps x {L} cells = {N * T * L} samples of dimension {D}", file=sys.stderr)
    res = train_sae(states.reshape(-1, D), args.features, l1=args.l1, k=args.topk, steps=args.steps, seed=args.seed)
    acts = encode_array(res.sae, states)
    preds = tr.predictions[:, steps]
    named = name_features(acts, cell_targets(x, preds, y), seed=args.seed)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": res.sae.state_dict(), "settings": vars(args), "stats": res.stats}, out / "sae.pt")
    atomic_write_text(out / "named.csv", named.to_csv(index=False))
    solved = tr.metric("exact")[:, -1].astype(bool)
    disp = named.assign(**{c: named[c].map(lambda v: f"{v:.3f}") for c in ("auc", "corr", "mean_on", "mean_off",
                                                                            "rate_on", "rate_off")})
    lines = [f"## SAE features of {Path(args.ckpt).name} ({tr.resolve_state(args.state)})", "",
             f"{N} puzzles ({int(solved.sum())} solved) from {args.puzzle_file} (every {args.every}); {T} steps "
             f"(those updating the state), {L} cells: {N * T * L} samples of dimension {D}.",
             f"SAE: {args.features} features, " + (f"TopK k={args.topk}" if args.topk else f"L1 {args.l1}")
             + f", {args.steps} Adam steps; fraction of variance explained {res.stats['fve']:.3f}, "
             f"mean active features per sample {res.stats['l0']:.1f}, features alive {res.stats['alive']:.0%}.", "",
             "Per target, the feature with the highest ROC AUC over the target's cells (and its Pearson correlation, "
             "mean activation and firing rate on / off the target):", "", markdown_table(disp), ""]
    atomic_write_text(out / "features.md", "\n".join(lines))
    shown = named[named["target"].isin(SHOW)]
    feats = list(dict.fromkeys(shown["feature"].tolist()))
    names = {}
    for _, r in shown.iterrows():
        names[int(r["feature"])] = (names.get(int(r["feature"]), "") + " " + r["target"]).strip()
    atomic_write_text(out / "trajectories.csv",
                      feature_trajectories(acts, feats, steps).to_csv(index=False))
    puzzle = int(np.flatnonzero(~solved)[0]) if (~solved).any() else 0
    fig = feature_trajectory_figure(acts, feats, names, puzzle=puzzle, predictions=preds, steps=steps,
                                    title=f"SAE features of {Path(args.ckpt).name}, puzzle {puzzle} "
                                          f"({'solved' if solved[puzzle] else 'failed'})")
    write_html(fig, out / "viewer.html")
    print("\n".join(lines))
    print(json.dumps({"out": str(out), "viewer_puzzle": puzzle}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
