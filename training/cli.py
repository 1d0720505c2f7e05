"""Command line: ``python -m training train|eval|data ...`` (also the ``recurse-train`` console script).

    recurse-train train --config training/configs/sudoku4_trm.yaml --out runs/s4 [--set optim.lr=3e-4 ...] [--resume]
    recurse-train eval --ckpt runs/s4/best [--data DIR] [--n 500] [--json]
    recurse-train eval --ckpt zoo/trm-sudoku9 --puzzle-file puzzles.sdm
    recurse-train data --config zoo/configs/trm_sudoku9.yaml     # build (or find) the config's dataset, print its directory

``eval --n N`` on a checkpoint whose generated dataset is not cached yet does not
build the whole dataset (the generator makes the test puzzles only after every
training puzzle, so the first N test puzzles cannot be made alone): it scores N
*fresh* puzzles from the same generator and blank range with the evaluation seed
``[data seed, 1]``, and says so in its headline. With the dataset cached (or
``--build``), it scores the first N puzzles of the test split, as before.

Under ``torchrun --nproc_per_node=K -m training train ...`` the same command
trains data-parallel (gloo on CPU, nccl on CUDA). Errors in the input print
``error: ...`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from common.cli_format import Parser, UsageError, VersionAction, error_line, examples, print_error
from common.cli_options import (add_ckpt_option, add_device_option, add_puzzle_file_option, add_quiet,
                                show_progress)
from common.cli_types import batch_int, boot_int, nonempty_str, nonneg_int, path_str


def build_parser() -> Parser:
    """The parser of ``recurse-train`` / ``python -m training``."""
    p = Parser(prog="recurse-train", description="Train and evaluate HRM / TRM / HRM-LM and baselines "
                                "(also: python -m training).",
                                epilog=examples("recurse-train eval --ckpt zoo/trm-sudoku9 --n 64",
                                                 "recurse-train train --config training/configs/sudoku4_trm_mlp.yaml "
                                                 "--out runs/s4 --set steps=20"))
    p.add_argument("--version", action=VersionAction)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a YAML/JSON config",
                       epilog=examples("recurse-train train --config training/configs/sudoku4_trm_mlp.yaml --out runs/s4 "
                                        "--set steps=20",
                                        "recurse-train train --out runs/s4 --resume --set steps=40   # 20 more steps"))
    t.add_argument("--config", type=path_str, help="config file (YAML or JSON); optional with --resume")
    t.add_argument("--set", type=nonempty_str, dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, dotted for nested ones (repeatable)")
    t.add_argument("--out", type=path_str, help="output directory (default runs/<config name>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its 'last' checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (same as --quiet)")
    add_quiet(t)

    e = sub.add_parser("eval", help="evaluate a checkpoint on its test split or a puzzle file",
                       description="Score a checkpoint. Puzzle models: exact accuracy at the model's own halt and "
                                   "after all segments (Wilson intervals), blank-cell accuracy and mean segments "
                                   "(bootstrap intervals), the set and its blank range. Language models: loss.",
                       epilog=examples("recurse-train eval --ckpt zoo/trm-sudoku9 --n 64",
                                        "recurse-train eval --ckpt zoo/trm-sudoku9 --puzzle-file "
                                        "data/sudoku/generated_moderate.sdm",
                                        "recurse-train eval --ckpt zoo/trm-sudoku9 --n 64 --build   # first 64 of "
                                        "the test split"))
    add_ckpt_option(e, help="checkpoint directory")
    e.add_argument("--data", type=path_str, help="dataset directory, or a puzzle file (.sdm/.txt/.csv/maze text) like --puzzle-file "
                   "(default: the checkpoint's training data)")
    add_puzzle_file_option(e, help="a file of puzzles to score (labels from the project's solvers)")
    e.add_argument("--split", type=nonempty_str, default=None, help="split to evaluate (default test for puzzles, val for text)")
    e.add_argument("--n", type=nonneg_int, default=0, help="evaluate the first N examples / windows (0 = all / 256 windows)")
    e.add_argument("--build", action="store_true", help="with --n and no cached dataset: build the whole dataset "
                   "and score the first N of its test split (instead of N fresh puzzles)")
    e.add_argument("--train-set", type=path_str, default=None, metavar="FILE",
                   help="Sudoku: the training puzzle file; evaluation puzzles whose solution grid equals a training "
                        "grid up to symmetry are dropped and counted (default: the checkpoint's training file "
                        "when it is present here)")
    e.add_argument("--batch-size", type=batch_int, default=64, help="examples per forward pass")
    add_device_option(e)
    e.add_argument("--n-boot", type=boot_int, default=1000, help="bootstrap resamples")
    e.add_argument("--json", action="store_true", help="print the full result as JSON")
    add_quiet(e)

    d = sub.add_parser("data", help="build (or find in the cache) a config's dataset and print its directory",
                       epilog=examples("recurse-train data --config training/configs/sudoku4_trm_mlp.yaml"))
    d.add_argument("--config", type=path_str, required=True, help="training config (YAML or JSON) or a checkpoint directory")
    d.add_argument("--set", type=nonempty_str, dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (repeatable)")
    add_quiet(d)
    return p


def _cmd_data(args: argparse.Namespace) -> int:
    from .config import load_train_config
    from .data import resolve_data
    from .trainer import data_spec

    src = Path(args.config)
    if src.is_dir():
        from models.checkpoint import read_checkpoint_config

        task = read_checkpoint_config(src).get("task", {})
        if task.get("data") is None and task.get("data_dir"):
            print(task["data_dir"])
            return 0
    else:
        task = load_train_config(args.config, args.overrides).to_dict()["task"]
    if task.get("data") is None:
        raise ValueError(f"{args.config} names no dataset")
    print(resolve_data(data_spec(task), progress=show_progress(args)))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from models.checkpoint import checkpoint_dir, read_checkpoint_config

    from .config import load_train_config
    from .trainer import Trainer

    out = Path(args.out) if args.out else None
    if out is not None and args.resume and (out / "last").is_symlink():
        raise ValueError(f"{out / 'last'} is a symbolic link; a run's checkpoints are folders this tool wrote: "
                         "remove the link or choose another --out")
    if args.config:
        cfg = load_train_config(args.config, args.overrides)
        out = out or Path("runs") / Path(args.config).stem
    elif args.resume and out is not None and (checkpoint_dir(out / "last") / "config.json").exists():
        cfg = load_train_config(None, args.overrides, base=read_checkpoint_config(out / "last")["train"])
    else:
        raise ValueError("--config is required (it may be omitted only with --resume and an --out that holds a run)")
    trainer = Trainer(cfg, out, resume=args.resume, progress=show_progress(args))
    try:
        if trainer.resumed_from is not None and trainer.dist.is_main:
            print(f"resuming {out} from step {trainer.resumed_from}", file=sys.stderr)
        result = trainer.train()
    finally:
        from .distributed import shutdown

        shutdown()
    if trainer.dist.is_main:
        print(json.dumps({"step": result["step"], "out": result.get("out"), "eval": result.get("eval")}, default=str))
    return 0


def _puzzle_file_split(path: Path, meta: dict, ckpt: str, n: int):
    """A puzzle file read with the interp readers (labels from the solvers) as ``PuzzleArrays``."""
    import numpy as np

    from tasks.puzzles import read_puzzles, resolve_task

    from .data import PuzzleArrays

    info = resolve_task(meta["model"], meta.get("task"), None, ckpt=ckpt, command="eval")
    batch = read_puzzles(info, None, str(path), n or None)
    for note in batch.notes[:5]:
        print(f"note: {note}", file=sys.stderr)
    N = len(batch.inputs)
    split = PuzzleArrays(inputs=batch.inputs, labels=batch.labels, puzzle_identifiers=np.zeros(N, dtype=np.int64),
                         puzzle_indices=np.arange(N + 1), group_indices=np.arange(N + 1), meta={})
    return split, f"{path.name} ({N} puzzle{'s' if N != 1 else ''})"


FRESH_CAP = 100_000
"""Most fresh puzzles ``eval --n`` generates when the dataset is not cached."""


def _fresh_split(spec: dict, n: int, progress: bool):
    """``n`` fresh puzzles from a generator spec (same blank range), seed ``[data seed, 1]``; no dataset is built."""
    if n > FRESH_CAP:
        raise ValueError(f"--n {n}: generating more than {FRESH_CAP:,} fresh puzzles takes hours; pass a smaller "
                         "--n, or --build to score the first N of the (cached) test split")
    import numpy as np

    from tasks.sudoku.generate import generate
    from tasks.sudoku.grid import encode_grid

    from .data import PuzzleArrays

    seed = [int(spec.get("seed", 0)), 1]
    recs = generate(n, size=int(spec.get("size", 9)), min_blanks=spec.get("min_blanks"),
                    max_blanks=spec.get("max_blanks"), min_guesses=int(spec.get("min_guesses", 0)), seed=seed,
                    progress=progress)
    x = encode_grid(np.stack([r.puzzle for r in recs])).reshape(n, -1)
    y = encode_grid(np.stack([r.solution for r in recs])).reshape(n, -1).astype(np.int64)
    split = PuzzleArrays(inputs=x, labels=y, puzzle_identifiers=np.zeros(n, dtype=np.int64),
                         puzzle_indices=np.arange(n + 1), group_indices=np.arange(n + 1), meta={})
    return split, (f"{n} fresh generated puzzles (seed {seed}, not the test split: its dataset is not cached; "
                   f"--build scores the test split's first {n})")


def _checkpoint_data_dir(root: Path, ckpt: str) -> Path:
    """A checkpoint's recorded ``data_dir``, used only if it is a dataset directory (never an arbitrary file)."""
    markers = ("dataset.json", "train/dataset.json", "test/dataset.json", "meta.json")
    if root.is_dir() and not root.is_symlink() and any((root / m).is_file() for m in markers):
        return root
    raise ValueError(f"checkpoint {ckpt} names data_dir {str(root)[:120]!r}, which is not a dataset directory; "
                     "pass --data DIR")


def _cmd_eval(args: argparse.Namespace) -> int:
    from models.load import load_any

    from .data import load_puzzle_split, load_text_dataset, resolve_data
    from .dedup import dedup_split, known_train_file
    from .distributed import pick_device
    from .evaluate import evaluate
    from .lm import evaluate_lm
    from .metrics_file import jsonable
    from .trainer import data_spec

    if args.ckpt.startswith("hf:"):  # a Hub spec: its local folder in the Hugging Face cache
        from models.hub import local_checkpoint

        args.ckpt = local_checkpoint(args.ckpt)
    if args.puzzle_file and args.data:
        raise ValueError("give --data or --puzzle-file, not both")
    if args.n < 0:
        raise ValueError(f"--n must be >= 0, got {args.n}")
    model, meta = load_any(args.ckpt)
    device = pick_device(args.device)
    model.to(device)
    train = meta.get("train", {})
    task = meta.get("task", {})
    progress = show_progress(args)
    is_text = task.get("name") == "text" or model.cfg.family == "hrm_lm" or getattr(model.cfg, "causal", False)
    if isinstance(task.get("name"), str) and model.cfg.family != "hrm_text":
        from .config import check_family

        try:  # a TRM whose config says task 'text' (or a language model with a puzzle task): one line, no dataset read
            check_family(model.cfg.to_dict(), task["name"])
        except ValueError as e:
            raise ValueError(f"checkpoint {args.ckpt}: its task and model disagree ({e})") from None
    file = Path(args.puzzle_file) if args.puzzle_file else (Path(args.data) if args.data and Path(args.data).is_file()
                                                            else None)
    split = set_name = root = None
    if file is not None:
        if is_text:
            raise ValueError(f"checkpoint {args.ckpt} is a language model; a puzzle file cannot be scored with it")
        split, set_name = _puzzle_file_split(file, meta, args.ckpt, args.n)
    elif args.data:
        root = resolve_data(args.data)
    elif task.get("data") is not None:  # the portable spec first: data_dir is a path on the training machine
        spec = data_spec(task)
        cached = resolve_data(spec, build=False) if isinstance(spec, dict) else None
        if (args.n and not args.build and not is_text and isinstance(spec, dict) and spec.get("generate") == "sudoku"
                and not (cached / ".complete").exists() and (args.split or "test") == "test"):
            split, set_name = _fresh_split(spec, args.n, progress)
        else:
            root = resolve_data(spec, progress=progress)
    elif isinstance(task.get("data_dir"), str) and task["data_dir"] and Path(task["data_dir"]).exists():
        root = _checkpoint_data_dir(Path(task["data_dir"]), args.ckpt)
    else:
        raise ValueError(f"checkpoint {args.ckpt} names no dataset; pass --data DIR or --puzzle-file FILE")
    if is_text:
        from .data import text_eval_windows

        text = load_text_dataset(root, model.cfg.seq_len)
        tokens = text.train if args.split == "train" else text.val
        windows = text_eval_windows(tokens, model.cfg.seq_len, args.n or 256)
        res = evaluate_lm(model, windows, args.batch_size, device)
        res["set"] = f"{root} ({args.split or 'val'} split, {len(windows)} windows)"
    else:
        if split is None:
            split = load_puzzle_split(root, args.split or "test")
            set_name = f"{root.name} {args.split or 'test'} split, first {min(args.n, split.num_examples)} of " \
                       f"{split.num_examples}" if args.n else f"{root.name} {args.split or 'test'} split"
        dedup, eval_n = None, args.n or None
        is_sudoku = task.get("name", "sudoku") == "sudoku"
        if args.train_set and not is_sudoku:
            raise ValueError(f"--train-set deduplicates Sudoku sets; checkpoint {args.ckpt} is a {task.get('name')} model")
        train_file = Path(args.train_set) if args.train_set else known_train_file(task)
        if train_file is not None and is_sudoku:
            split, dedup = dedup_split(split, args.n, train_file, progress)
            eval_n = None
        halting = train.get("halting", "auto")
        if halting == "auto":
            halting = {"hrm": "act_q", "trm": "bce"}.get(model.cfg.family, "none")
        res = evaluate(model, split, batch_size=args.batch_size, n=eval_n, halting=halting,
                       loss_kind=train.get("loss", "stablemax"), device=device, n_boot=args.n_boot, progress=progress)
        res["set"] = set_name
        if dedup is not None:
            res["dedup"] = dedup
    res = {"ckpt": str(args.ckpt), "weights": meta.get("state", {}).get("weights", "model"), **res}
    print(json.dumps(jsonable(res), indent=2) if args.json else eval_headline(res))
    return 0


def _ci(res: dict, key: str, pct: bool = True) -> str:
    v, (lo, hi) = res[key], res[key + "_ci"]
    if pct:
        return f"{100 * v:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]"


def eval_headline(res: dict) -> str:
    """The result as a few honest lines: what was scored, on which set, with 95% intervals."""
    if "val_loss" in res:  # language model: no 'exact accuracy'
        lines = [f"{res['ckpt']}: language model, {res.get('set', '')}",
                 f"  loss {res['val_loss']:.4f} nats/token (perplexity {res['val_ppl']:.2f})"]
        return "\n".join(lines)
    lo, hi = res.get("blanks_range", [None, None])
    level = int(round(100 * res.get("ci_level", 0.95)))
    rule = {"bce": "q_halt > 0", "act_q": "q_halt > q_continue"}.get(res.get("halting"), "none: all segments")
    lines = [
        f"{res['ckpt']} on {res.get('set', '?')}: n = {res['n']}, blanks per puzzle {lo}..{hi}",
        f"  exact at halt ({rule}): {_ci(res, 'exact_accuracy_at_halt')}",
        f"  exact after all {res['segments']} segments: {_ci(res, 'exact_accuracy')}",
        f"  blank-cell accuracy: {_ci(res, 'blank_accuracy')}",
        f"  mean segments to halt: {_ci(res, 'avg_halt_steps', pct=False)} of {res['segments']}",
        f"  ({level}% intervals: Wilson for exact accuracy, bootstrap of the mean otherwise)",
    ]
    if res.get("dedup"):
        d = res["dedup"]
        lines.insert(1, f"  dropped {d['dropped']} of the {d['considered']} puzzles: solution grid equivalent (up to "
                        f"symmetry) to a training puzzle of {d['train_set']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as e:
        return print_error(e)
    from .trainer import TrainingDiverged

    try:
        return {"train": _cmd_train, "eval": _cmd_eval, "data": _cmd_data}[args.command](args)
    except ValueError as e:  # CheckpointError, ConfigError and DataError are ValueErrors
        return print_error(e)
    except TrainingDiverged as e:
        return print_error(str(e), status=1)
    except Exception as e:  # noqa: BLE001 - a full disk from any writer (safetensors raises its own error type)
        from common.io import is_disk_full

        if not is_disk_full(e) and not isinstance(e, OSError):
            raise
        what = "disk full or file size limit" if is_disk_full(e) else type(e).__name__
        return print_error(f"{what} while writing ({error_line(e)[:200]}); the last complete checkpoint is "
                           "intact: free space and rerun with --resume")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
