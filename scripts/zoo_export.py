"""Export a finished training run into the zoo with a model card.

    python scripts/zoo_export.py runs/zoo/trm-sudoku9 trm-sudoku9 --config zoo/configs/trm_sudoku9.yaml

Copies the run's ``last`` checkpoint (EMA weights + config only, no optimiser
state) to ``zoo/<name>/``, evaluates it with the project's evaluation command
(``python -m training eval --json``) and writes ``zoo/<name>/CARD.md`` with the
exact command, data, seed, steps, wall time and the measured metrics.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import nonempty_str, nonneg_int, path_str  # noqa: E402

PAPER_NOTES = {
    "sudoku": (
        "The papers train on Sudoku-Extreme (1000 hard puzzles x 1000 augmentations, 17-30 givens) for "
        "tens of thousands of epochs on a GPU (TRM-MLP 87.4% exact, HRM 55.0%). This model is ~100x smaller, "
        "saw generated moderate puzzles (30-45 blanks, mostly solvable by propagation) for a few thousand "
        "optimiser steps on one CPU core, so its numbers are not comparable with the papers' (measure hard "
        "puzzles with `interp trace --puzzle-file data/sudoku/top1465.sdm`)."
    ),
    "maze": (
        "The papers use Maze-Hard 30x30 (TRM 85.3%, HRM 74.5%) trained on a GPU for many epochs; this is a "
        "9x9 maze model trained for minutes on one CPU core."
    ),
    "text": (
        "Seed 003 (HRM-LM) reports losses of larger models trained on far more text on GPUs; this is a ~250k "
        "parameter byte-level model trained for minutes on one CPU core on the pydoc corpus (~466 KB), so "
        "only the side-by-side comparison at equal budget is meaningful, and even that is a short-run snapshot."
    ),
}


def training_seconds(lines: list[dict]) -> float:
    """Total training time of a run from its metrics log; each ``--resume`` restarts the trainer's clock."""
    total = last = 0.0
    for r in lines:
        t = float(r.get("elapsed", last))
        if t < last:  # a resumed segment: bank the previous one
            total += last
        last = t
    return total + last


def main() -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=path_str, help="training output directory (holds last/ and metrics.jsonl)")
    ap.add_argument("name", type=nonempty_str, help="zoo entry name")
    ap.add_argument("--config", type=path_str, required=True, help="config file the run was trained with (for the card)")
    ap.add_argument("--sets", type=nonempty_str, nargs="*", default=[], help="--set overrides the run used (for the card)")
    ap.add_argument("--n", type=nonneg_int, default=0, help="evaluate on the first N test examples (0 = all)")
    args = ap.parse_cli()

    run, out = Path(args.run), REPO / "zoo" / args.name
    src = run / "last"
    meta = json.loads((src / "config.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for f in ("model.safetensors", "config.json"):
        shutil.copy2(src / f, out / f)

    ev = subprocess.run(
        [sys.executable, "-m", "training", "eval", "--ckpt", str(out), "--json", "--n", str(args.n)],
        capture_output=True, text=True, cwd=REPO,
    )
    if ev.returncode:
        print(ev.stderr, file=sys.stderr)
        return 1
    result = json.loads(ev.stdout[ev.stdout.index("{"):])
    (out / "eval.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")

    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    wall = training_seconds(lines)
    from models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(out)
    n_params = sum(p.numel() for p in model.parameters())
    task = meta["task"]["name"]
    sets = " ".join(f"--set {s}" for s in args.sets)
    train = meta["train"]
    metric_lines = [f"| {k} | {v} |" for k, v in sorted(result.items()) if not isinstance(v, (list, dict)) and k != "ckpt"]
    card = f"""# zoo/{args.name}

| | |
|---|---|
| family | `{meta['model']['family']}` |
| parameters | {n_params:,} |
| task | {task} {meta['task'].get('grid_size', '')} |
| data | `{json.dumps(meta['task']['data'], sort_keys=True)}` |
| seed | {train['seed']} |
| optimiser steps | {meta['state']['step']} (batch {train['batch_size']}) |
| training wall time | {wall / 60:.1f} min on a shared 2-core CPU, 1 thread (other jobs were running) |
| weights | {'EMA, decay ' + str(train['ema_decay']) if train['ema_decay'] > 0 else 'live (no EMA)'} |

Trained with:

    OMP_NUM_THREADS=1 python -m training train --config {args.config} --out {run} {sets}

Evaluated with (numbers below):

    python -m training eval --ckpt zoo/{args.name} --json{' --n ' + str(args.n) if args.n else ''}

| metric | value |
|---|---|
{chr(10).join(metric_lines)}

How far from the papers: {PAPER_NOTES.get(task, '')}

Resume training (bit-identical continuation) from the run directory with `--resume`; the run directory
(with optimiser state) is not shipped, only the EMA weights and config.
"""
    (out / "CARD.md").write_text(card)
    print(card)
    return 0


if __name__ == "__main__":
    sys.exit(main())
