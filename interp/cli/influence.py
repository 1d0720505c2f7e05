"""``interp influence``: how much each cell's state moves every other cell's over one outer cycle.

    interp influence --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/generated_moderate.sdm --limit 16 \\
        --segments 1 --samples 1 --out out/influence/trm

Writes ``influence_share.csv`` (per cycle: the share of incoming influence from Sudoku peers, or on mazes
from shortest-path cells, its uniform baseline, 95% interval and N), ``influence.npz`` (the per-cycle
matrices ``influence`` [T, C, C] (target, source) and ``answer_influence`` [T, C], averaged over puzzles),
``attention_vs_influence.csv`` for models with attention on Sudoku, and ``settings.json`` to ``--out``,
and prints the per-cycle table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli_format import examples
from common.cli_types import bounded_int, path_str, seed_int
from common.cli_options import add_threads_option, set_threads
from interp.cli.common import add_puzzle_inputs, checkpoint_task, load_model


def cmd_influence(args: argparse.Namespace) -> int:
    from tasks.puzzles import read_puzzles

    if args.samples is not None and args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples} (leave it out with --exact)")
    if args.exact and args.samples is not None:
        raise ValueError("--exact and --samples exclude each other (the exact influence draws no probes)")
    if args.segments is not None and args.segments < 1:
        raise ValueError(f"--segments must be >= 1, got {args.segments}")
    from common.io import ensure_out_not_symlink
    from common.outputs import check_replaceable, record_outputs

    out = ensure_out_not_symlink(Path(args.out))
    check_replaceable(out, ValueError, "influence output")  # only an earlier output's unchanged files are replaced
    task = checkpoint_task(args.ckpt, args.task, command="influence")
    if task.name not in ("sudoku", "maze"):
        raise ValueError(f"interp influence summarises Sudoku and maze checkpoints, not {task.name}")
    batch = read_puzzles(task, args.puzzle, args.puzzle_file, args.limit)
    import numpy as np
    import torch

    from common.io import atomic_write_json, atomic_write_text
    from interp.causal.influence import (
        attention_vs_influence,
        influence,
        maze_path_share,
        mean_matrices,
        sudoku_peer_share,
    )

    set_threads(args)
    model, _ = load_model(args.ckpt)
    family = getattr(getattr(model, "cfg", None), "family", type(model).__name__)
    if family not in ("hrm", "trm", "unitf"):
        raise ValueError(f"influence needs a recurrent puzzle model (hrm, trm, unitf), not {family!r}")
    model.eval()
    x = torch.as_tensor(np.asarray(batch.inputs)).long()
    labels = None if batch.labels is None else torch.as_tensor(np.asarray(batch.labels)).long()
    samples = None if args.exact else (args.samples or 1)
    from common.progress import Progress

    with Progress(len(x), "influence", enabled=sys.stderr.isatty() and len(x) > 1) as bar:
        res = influence(model, x, labels, n_segments=args.segments, samples=samples, seed=args.seed,
                        progress=lambda done, total: bar.goto(done))
    out.mkdir(parents=True, exist_ok=True)
    if task.name == "sudoku":
        share, what = sudoku_peer_share(res), "Sudoku peers"
    else:
        if labels is None:
            raise ValueError("the maze path share needs the solved mazes (labels)")
        share, what = maze_path_share(res, labels.numpy()), "shortest-path cells"
    atomic_write_text(out / "influence_share.csv", share.to_csv(index=False))
    np.savez_compressed(out / "influence.npz", **mean_matrices(res))
    written = ["influence_share.csv", "influence.npz"]
    print(f"{len(x)} puzzle(s), {res.n_segments} segment(s) x {res.cycles_per_segment} cycles, "
          f"{'exact' if samples is None else f'{samples} probe(s) per cell'}; share of incoming influence from {what}:")
    print(share.round(4).to_string(index=False))
    if task.name == "sudoku" and _has_attention(model):
        table = attention_vs_influence(model, x, share, res.n_segments, labels)
        atomic_write_text(out / "attention_vs_influence.csv", table.to_csv(index=False))
        written.append("attention_vs_influence.csv")
        print("attention mass on peers per step against the influence peer share of its cycle:")
        print(table.round(4).to_string(index=False))
    atomic_write_json(out / "settings.json", {**res.settings, "checkpoint": args.ckpt, "task": task.name,
                                              "puzzles": batch.names[:len(x)]})
    record_outputs(out, {"command": "influence"})
    print(f"written to {out}: {', '.join(written)}, settings.json")
    return 0


def _has_attention(model) -> bool:
    """True when the model records attention patterns (some layer attends over cells)."""
    modules = getattr(model, "step_modules", ())
    return hasattr(model, "attention_modules") and any(model.attention_modules(m) for m in modules)


def add_influence_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "influence", help="cell-to-cell influence ||d s_t+1[j] / d s_t[i]||^2 per outer cycle; peer/path share",
        description=__doc__.split("\n\n")[0],
        epilog=examples("interp influence --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/generated_moderate.sdm "
                        "--limit 16 --segments 1 --out out/influence/trm",
                        "interp influence --ckpt zoo/trm-maze9 --puzzle-file data/maze/maze9.txt --limit 4 "
                        "--segments 1 --out out/influence/maze"))
    add_puzzle_inputs(p)
    p.add_argument("--samples", type=bounded_int(1, 1 << 16), help="Gaussian probes per target cell of the unbiased estimate "
                   "(default 1; cost grows with it)")
    p.add_argument("--exact", action="store_true", help="exact influence (one probe per state dimension: "
                   "about 2 x hidden_size times slower than one sample)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the probes")
    add_threads_option(p)
    p.add_argument("--out", type=path_str, default="out/influence", help="output directory")
    p.set_defaults(func=cmd_influence)
