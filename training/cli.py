"""Command line: ``python -m training train|eval ...`` (also the ``train`` console script).

    train train --config training/configs/sudoku4_trm.yaml --out runs/s4 [--set optim.lr=3e-4 ...] [--resume]
    train eval --ckpt runs/s4/best [--data DIR] [--n 500] [--json]
    train data --config zoo/configs/trm_sudoku9.yaml     # build (or find) the config's dataset, print its directory

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

from models.checkpoint import CheckpointError, checkpoint_dir, read_checkpoint_config


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train", description="Train and evaluate HRM / TRM / HRM-LM and baselines.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a YAML/JSON config")
    t.add_argument("--config", help="config file (YAML or JSON); optional with --resume")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, dotted for nested ones (repeatable)")
    t.add_argument("--out", help="output directory (default runs/<config name>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its 'last' checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="evaluate a checkpoint on a test split (bootstrap CIs)")
    e.add_argument("--ckpt", required=True, help="checkpoint directory")
    e.add_argument("--data", help="dataset directory (default: the checkpoint's training data)")
    e.add_argument("--split", default=None, help="split to evaluate (default test for puzzles, val for text)")
    e.add_argument("--n", type=int, default=0, help="evaluate the first N examples / windows (0 = all / 256 windows)")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--device", default="auto")
    e.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    e.add_argument("--json", action="store_true", help="print the full result as JSON")

    d = sub.add_parser("data", help="build (or find in the cache) a config's dataset and print its directory")
    d.add_argument("--config", required=True, help="training config (YAML or JSON) or a checkpoint directory")
    d.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return p


def _cmd_data(args: argparse.Namespace) -> int:
    from .config import load_train_config
    from .data import resolve_data
    from .trainer import data_spec

    src = Path(args.config)
    if src.is_dir():
        task = read_checkpoint_config(src).get("task", {})
        if task.get("data") is None and task.get("data_dir"):
            print(task["data_dir"])
            return 0
    else:
        task = load_train_config(args.config, args.overrides).to_dict()["task"]
    if task.get("data") is None:
        raise ValueError(f"{args.config} names no dataset")
    print(resolve_data(data_spec(task)))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_train_config
    from .trainer import Trainer

    out = Path(args.out) if args.out else None
    if args.config:
        cfg = load_train_config(args.config, args.overrides)
        out = out or Path("runs") / Path(args.config).stem
    elif args.resume and out is not None and (checkpoint_dir(out / "last") / "config.json").exists():
        cfg = load_train_config(None, args.overrides, base=read_checkpoint_config(out / "last")["train"])
    else:
        raise ValueError("--config is required (it may be omitted only with --resume and an --out that holds a run)")
    trainer = Trainer(cfg, out, resume=args.resume, progress=not args.no_progress)
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


def _checkpoint_data_dir(root: Path, ckpt: str) -> Path:
    """A checkpoint's recorded ``data_dir``, used only if it is a dataset directory (never an arbitrary file)."""
    markers = ("dataset.json", "train/dataset.json", "test/dataset.json", "meta.json")
    if root.is_dir() and not root.is_symlink() and any((root / m).is_file() for m in markers):
        return root
    raise ValueError(f"checkpoint {ckpt} names data_dir {str(root)[:120]!r}, which is not a dataset directory; "
                     "pass --data DIR")


def _cmd_eval(args: argparse.Namespace) -> int:
    from models.checkpoint import load_checkpoint

    from .data import load_puzzle_split, load_text_dataset, resolve_data
    from .distributed import pick_device
    from .evaluate import evaluate
    from .lm import evaluate_lm
    from .trainer import _jsonable, _summary

    model, meta = load_checkpoint(args.ckpt)
    device = pick_device(args.device)
    model.to(device)
    train = meta.get("train", {})
    task = meta.get("task", {})
    if args.data:
        root = resolve_data(args.data)
    elif isinstance(task.get("data_dir"), str) and task["data_dir"] and Path(task["data_dir"]).exists():
        root = _checkpoint_data_dir(Path(task["data_dir"]), args.ckpt)
    elif task.get("data") is not None:
        from .trainer import data_spec

        root = resolve_data(data_spec(task))
    else:
        raise ValueError(f"checkpoint {args.ckpt} names no dataset; pass --data DIR")
    if task.get("name") == "text" or model.cfg.family == "hrm_lm" or getattr(model.cfg, "causal", False):
        from .data import text_eval_windows

        text = load_text_dataset(root, model.cfg.seq_len)
        tokens = text.train if args.split == "train" else text.val
        windows = text_eval_windows(tokens, model.cfg.seq_len, args.n or 256)
        res = evaluate_lm(model, windows, args.batch_size, device)
    else:
        split = load_puzzle_split(root, args.split or "test")
        halting = train.get("halting", "auto")
        if halting == "auto":
            halting = {"hrm": "act_q", "trm": "bce"}.get(model.cfg.family, "none")
        res = evaluate(model, split, batch_size=args.batch_size, n=args.n or None, halting=halting,
                       loss_kind=train.get("loss", "stablemax"), device=device, n_boot=args.n_boot, progress=True)
    res = {"ckpt": str(args.ckpt), "weights": meta.get("state", {}).get("weights", "model"), **res}
    print(json.dumps(_jsonable(res), indent=2) if args.json else _summary(res))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .trainer import TrainingDiverged

    try:
        return {"train": _cmd_train, "eval": _cmd_eval, "data": _cmd_data}[args.command](args)
    except (ValueError, CheckpointError) as e:  # ConfigError / DataError are ValueErrors too
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a full disk from any writer (safetensors raises its own error type)
        from common.io import is_disk_full

        if not is_disk_full(e) and not isinstance(e, OSError):
            raise
        what = "disk full or file size limit" if is_disk_full(e) else type(e).__name__
        print(f"error: {what} while writing ({' '.join(str(e).split())[:200]}); the last complete checkpoint is "
              "intact: free space and rerun with --resume", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
