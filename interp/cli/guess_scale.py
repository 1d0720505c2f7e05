"""``interp guess-scale`` (deprecated: use ``interp scale``): accuracy vs pass budget for test-time scaling strategies.

It prints one note pointing to ``interp scale`` (``interp.cli.scale``), which grows it into the
depth x breadth x selection-rule harness against FLOPs; its options and files are unchanged.

    interp guess-scale --ckpt zoo/trm-sudoku9 --data DATASET_DIR --limit 500 --k 1,2,4,8,16 --out reports/gs
    interp guess-scale --ckpt zoo/trm-sudoku9 --puzzle-file hard.sdm --strategies aug ptrm eqr --k 1 2 4 8 16
    interp guess-scale --ckpt run/a/last --ckpt run/b/last --puzzle-file hard.sdm --strategies bootstrap,combined

Strategies: ``aug``/``perturb`` (input perturbations), ``bootstrap`` and
``combined`` (several ``--ckpt``), ``ptrm`` (latent noise, ``--noise``,
``--noise-every``), ``eqr`` (random starts x ``--eqr-depth`` times the
segments). ``--k`` is a budget of model passes per puzzle; an EqR guess costs
``--eqr-depth`` passes (the table's ``guesses``, ``passes_per_guess`` and
``n_passes`` columns). The first ``--ckpt`` is checkpoint 0 (every strategy
but bootstrap/combined uses it alone). Writes to ``--out``:
``guess_scaling.csv`` / ``.md`` (accuracy, interval, n per strategy, rule and k),
``models.csv`` / ``.md`` (each checkpoint's single-pass accuracy on the same
puzzles), ``guess_scaling.png`` and ``guess_scaling.html`` (plotly.min.js beside it; ``--plotly``),
and ``provenance.json`` (command, checkpoint hashes, puzzle hash, versions).
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


from common.cli_format import examples
from common.cli_types import (batch_int, boot_int, bounded_int, cap_note, int_list, nonempty_str, nonneg_float,
                              path_str, seed_int, segments_int)
from common.cli_options import (add_ckpt_option, add_device_option, add_limit_option, add_plotly,
                                add_puzzle_file_option, add_quiet, add_task_option, add_threads_option,
                                set_threads, show_progress)
from interp.guess_scaling.rule_names import ALL_RULES, LABEL_FREE_RULES

OUTPUT_FILES = ("guess_scaling.csv", "models.csv", "guess_scaling.md", "guess_scaling.png", "guess_scaling.html", "plotly.min.js",
                "provenance.json")
DEFAULT_RULES = ("majority_first", "majority", "confidence", "cell_majority", "q_select", "residual_select",
                 "oracle_any", "augmented_hrm")
STRATEGY_NAMES = ("perturb", "aug", "bootstrap", "combined", "ptrm", "eqr")


def _csv_list(text: str | list[str], what: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    """Items of a comma-separated string or of several (possibly comma-separated) arguments."""
    parts = [text] if isinstance(text, str) else list(text)
    items = [t.strip() for part in parts for t in part.split(",") if t.strip()]
    if not items:
        raise ValueError(f"--{what} is empty")
    if allowed is not None:
        bad = [t for t in items if t not in allowed]
        if bad:
            raise ValueError(f"--{what}: unknown {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


K_CAP = 1024
"""Largest pass budget per puzzle (``--k``)."""


def _ks(values: str | list) -> list[int]:
    """Sorted distinct pass budgets from ``--k``: parsed lists of ints, or the default's comma-separated string."""
    parse = int_list(1, K_CAP)
    items = [values] if isinstance(values, (str, int)) else list(values)
    ks: set[int] = set()
    for v in items:
        ks.update(parse(v) if isinstance(v, str) else (v if isinstance(v, list) else [v]))
    if not ks:
        raise ValueError("--k is empty")
    return sorted(ks)


def load_puzzles(args: argparse.Namespace, model_meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, Any, str]:
    """(inputs, labels, puzzle ids or None, task name) from ``--data`` (a dataset directory) or ``--puzzle-file``."""
    import numpy as np

    from interp.puzzle_inputs import load_puzzle_inputs

    found = load_puzzle_inputs(model_meta, data=args.data, puzzle_file=None if args.data else args.puzzle_file,
                               split=args.split, limit=args.limit, task=args.task)
    x, y, pid, task = found.inputs, found.labels, found.puzzle_ids, (found.task or {}).get("name")
    if y is None:
        raise ValueError("the puzzles have no labels (the solver found none); guess scaling needs answers")
    task = task or args.task
    if task not in ("sudoku", "maze"):
        task = "other"
    return np.asarray(x), np.asarray(y).astype(np.int64), pid, task


def _check_compatible(models: list, ckpts: list[str], x: np.ndarray) -> None:

    c0 = models[0].cfg
    for m, name in zip(models, ckpts):
        if (m.cfg.seq_len, m.cfg.vocab_size) != (c0.seq_len, c0.vocab_size):
            raise ValueError(f"{name}: seq_len/vocab_size {m.cfg.seq_len}/{m.cfg.vocab_size} differ from "
                             f"{ckpts[0]} ({c0.seq_len}/{c0.vocab_size}); every checkpoint must solve the same task")
    if x.shape[1] != c0.seq_len:
        raise ValueError(f"puzzles have {x.shape[1]} tokens but the checkpoints expect {c0.seq_len}")


def _markdown(df: Any, floats: dict[str, str]) -> str:
    """``df`` as a Markdown table, the columns named in ``floats`` formatted with their format spec."""
    from common.markdown import markdown_table

    shown = df.copy()
    for c, spec in floats.items():
        if c in shown:
            shown[c] = shown[c].map(lambda v, spec=spec: format(v, spec))
    return markdown_table(shown) + "\n"


def run_guess_scaling(args: argparse.Namespace) -> dict[str, Any]:
    """Load the checkpoints and puzzles, run every needed pass, write the tables, figures and provenance."""
    import numpy as np

    import torch

    from models.checkpoint import read_checkpoint_config
    from models.load import load_any

    from common.io import atomic_write, check_replaceable, file_sha256, write_html
    from common.outputs import record_outputs
    from interp.guess_scaling.curves import budget_table, collect_strategy_runs, strategy_name, wide_table
    from interp.guess_scaling.plots import guess_scaling_figure, plot_guess_scaling

    check_replaceable(args.out, ValueError, "guess-scale output")  # before any work: never replace user files
    ks = _ks(args.k)
    strategies = list(dict.fromkeys(strategy_name(s) for s in _csv_list(args.strategies, "strategies", STRATEGY_NAMES)))
    rules = _csv_list(args.rules, "rules", ALL_RULES)
    ckpts = list(args.ckpt)
    if len(ckpts) < 2 and any(s in ("bootstrap", "combined") for s in strategies):
        strategies = [s for s in strategies if s not in ("bootstrap", "combined")]
        if not strategies:
            raise ValueError("bootstrap/combined need at least two --ckpt")
        print("note: one checkpoint, so bootstrap/combined are left out", file=sys.stderr)
    meta0 = read_checkpoint_config(ckpts[0]) if (Path(ckpts[0]) / "config.json").exists() else {"model": {}}
    from training.distributed import pick_device

    set_threads(args)
    device = pick_device(args.device)
    models = [load_any(c)[0].eval().to(device) for c in ckpts]
    if not meta0.get("model"):
        meta0 = {"model": models[0].cfg.to_dict()}
    x, y, pid, task = load_puzzles(args, meta0)
    _check_compatible(models, ckpts, x)
    from interp.tracing.memory import check_run_cost

    for m in models:  # every strategy runs up to max(k) guesses per puzzle, an EqR guess costs eqr_depth passes
        check_run_cost(m, len(x), args.segments or int(getattr(m.cfg, "halt_max_steps", 1)),
                       passes=max(ks) * len(strategies) * args.eqr_depth, rows=min(len(x), args.batch_size),
                       where="guess-scale", hint="use fewer puzzles (--limit), a smaller --k, fewer --strategies, "
                       "fewer --segments or a smaller --batch-size")
    t0 = time.time()
    runs = collect_strategy_runs(
        models, x, strategies, max(ks), args.preset if task != "other" else "identity", task, args.seed,
        args.segments, args.noise, args.noise_every, args.eqr_depth, pid, args.batch_size,
        keep_probs="prob_average" in rules, progress=show_progress(args))
    seconds = time.time() - t0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = budget_table(runs, y, ks, rules, ci=args.ci, n_boot=args.n_boot, seed=args.seed)
    for w in caught:  # e.g. "k=[4] skipped": more guesses than checkpoints
        print(f"note: {w.message}", file=sys.stderr)
    per_model = _per_model(models, ckpts, x, y, pid, args)

    out = Path(args.out)
    check_replaceable(out, ValueError, "guess-scale output")  # again: the folder may have changed meanwhile
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "guess_scaling.csv", lambda tmp: table.to_csv(tmp, index=False, float_format="%.4f"))
    atomic_write(out / "models.csv", lambda tmp: per_model.to_csv(tmp, index=False, float_format="%.4f"))
    f3 = {"accuracy": ".3f", "ci_low": ".3f", "ci_high": ".3f", "exact_accuracy": ".3f"}
    md = (f"# Guess scaling ({len(x)} puzzles, {len(ckpts)} checkpoint(s), perturbation preset {args.preset!r}, "
          f"PTRM noise {args.noise} per {args.noise_every}, EqR depth x{args.eqr_depth})\n\n"
          f"k is the budget of model passes per puzzle; n_passes = guesses x passes_per_guess are spent. "
          f"Intervals: {args.ci}, 95%. Oracle rules (uses_label) look at the answer: upper bounds, not test-time "
          f"methods.\n\n## Accuracy % [95% interval] by pass budget k\n\n" + _markdown(wide_table(table), {})
          + "\n## Every row\n\n" + _markdown(table, f3) + "\n## Checkpoints (single pass, identity input)\n\n"
          + _markdown(per_model, f3))
    atomic_write(out / "guess_scaling.md", lambda tmp: Path(tmp).write_text(md))
    prov = {
        "command": "interp " + " ".join(shlex.quote(a) for a in args.argv),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "checkpoints": [{"path": c, "sha256": _weights_hash(c, file_sha256)} for c in ckpts],
        "puzzles": {"n": int(len(x)), "sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest(),
                    "source": args.data or args.puzzle_file, "split": args.split if args.data else None},
        "strategies": {r.name: {"guesses": len(r.guess_columns), "passes_per_guess": r.passes_per_guess,
                                "variants": r.candidates.perturb_names} for r in runs},
        "ptrm": {"noise": args.noise, "every": args.noise_every}, "eqr": {"depth": args.eqr_depth},
        "seconds": round(seconds, 2),
        "torch": torch.__version__, "device": str(device),
    }
    plot_guess_scaling(table, out / "guess_scaling.png")
    write_html(guess_scaling_figure(table), out / "guess_scaling.html", plotly_js=getattr(args, "plotly", "file"))
    record_outputs(out, prov)  # every file written, with its SHA-256
    return {"table": table, "models": per_model, "out": out, "seconds": seconds}


def _per_model(models: list, ckpts: list[str], x: np.ndarray, y: np.ndarray, pid: Any, args: argparse.Namespace) -> Any:
    """Each checkpoint's plain single pass on the same puzzles."""

    import pandas as pd

    from interp.guess_scaling.recursion import run_pass
    from interp.guess_scaling.voting import exact_correct

    rows = []
    for m, c in enumerate(ckpts):
        out = run_pass(models[m], x, args.segments, pid, args.batch_size)
        flags = exact_correct(out.logits.argmax(-1), y)
        rows.append({"checkpoint": m, "path": c, "family": models[m].cfg.family,
                     "exact_accuracy": float(flags.mean()), "n": int(flags.size)})
    return pd.DataFrame(rows)


def _weights_hash(ckpt: str, file_sha256: Any) -> str | None:
    p = Path(ckpt)
    w = p / "model.safetensors" if p.is_dir() else p
    return file_sha256(w) if w.is_file() else None


DEPRECATION = ("note: `interp guess-scale` is deprecated, use `interp scale` (depth x breadth x selection rules "
               "against FLOPs, resumable; docs/scaling.md)")


def cmd_guess_scale(args: argparse.Namespace) -> int:
    import pandas as pd

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    res = run_guess_scaling(args)
    t = res["table"]
    label_free = t[t["rule"].isin(LABEL_FREE_RULES)]
    with pd.option_context("display.width", 160, "display.precision", 3, "display.max_rows", 500):
        print(res["models"].drop(columns=["path"]).to_string(index=False))
        print()
        print(label_free.drop(columns=["uses_label"]).to_string(index=False))
    print(f"\nwrote {res['out']}/guess_scaling.{{csv,md,png,html}}, models.csv, provenance.json "
          f"({res['seconds']:.1f} s of forward passes)")
    print(DEPRECATION, file=sys.stderr)  # after the work: bad input stays exactly one error line
    return 0


def add_guess_scale_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("guess-scale", help="deprecated alias of `interp scale`'s predecessor: accuracy vs pass "
                              "budget (augmentation, bootstrapping, PTRM, EqR)",
                              epilog=examples("interp guess-scale --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/qqwing_expert.sdm "
                                              "--limit 16 --strategies aug ptrm eqr --k 1 2 4 --out out/gs"))
    add_ckpt_option(p, repeat=True, help="checkpoint (repeat for model bootstrapping; the first one is used by 'perturb')")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=path_str, help="dataset directory (training/test splits as written by the data builders)")
    add_puzzle_file_option(src)
    p.add_argument("--split", type=nonempty_str, default="test", help="split of --data (default test)")
    add_task_option(p)
    add_limit_option(p)
    p.add_argument("--k", nargs="+", type=int_list(1, K_CAP), default=["1,2,4,8"],
                   help=f"pass budgets per puzzle, comma- or space-separated (default 1,2,4,8; max {K_CAP})")
    p.add_argument("--strategies", nargs="+", type=nonempty_str, default=["perturb,bootstrap,combined"],
                   help=f"comma- or space-separated, from {', '.join(STRATEGY_NAMES)} (aug = perturb)")
    p.add_argument("--rules", nargs="+", type=nonempty_str, default=[",".join(DEFAULT_RULES)],
                   help=f"voting rules, from {', '.join(ALL_RULES)}")
    p.add_argument("--noise", type=nonneg_float, default=0.05,
                   help="PTRM: noise std relative to each position's state rms (default 0.05)")
    p.add_argument("--noise-every", choices=["step", "segment"], default="step",
                   help="PTRM: inject noise at every recursion step (default) or once per segment")
    p.add_argument("--eqr-depth", type=bounded_int(1, 64), default=2,
                   help="EqR: segments per guess as a multiple of a pass (default 2; a guess costs that many passes)")
    p.add_argument("--preset", type=nonempty_str, default="random", help="perturbations: sudoku random|cyclic|digits|geometric; "
                   "maze dihedral|dihedral+swap|swap")
    p.add_argument("--segments", type=segments_int,
                   help=f"segments per pass (default: each model's halt_max_steps){cap_note(segments_int)}")
    p.add_argument("--ci", choices=["wilson", "bootstrap"], default="wilson")
    p.add_argument("--n-boot", type=boot_int, default=1000, help="bootstrap resamples (--ci bootstrap)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--batch-size", type=batch_int, default=256, help="puzzles per forward pass")
    add_device_option(p, help="torch device for the passes: auto (cuda when available, else cpu; guess-scale's "
                              "default was cpu before it took the shared default), cpu, cuda, cuda:1, ...")
    add_threads_option(p, help="torch CPU threads; 0 = torch's own choice (guess-scale's default before it took "
                               "the shared default 1)")
    p.add_argument("--out", type=path_str, required=True, help="output directory")
    p.add_argument("--no-progress", action="store_true", help="same as --quiet")
    add_plotly(p)
    add_quiet(p)
    p.set_defaults(func=cmd_guess_scale)
    return p
