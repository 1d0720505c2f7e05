"""Training step time per model family / config.

    python benchmarks/bench_train.py                       # the default set of shipped configs, CPU
    python benchmarks/bench_train.py --steps 50 --device cuda --set dtype=bf16
    python benchmarks/bench_train.py --configs sudoku4_trm_mlp lm_hrm_lm --batch-size 16

Each config (from ``training/configs``) is trained for ``--warmup`` untimed
steps and ``--steps`` timed optimiser steps (one deep-supervision segment, or
one multi-pass LM batch, per step) in a temporary directory; no evaluation, no
checkpoints inside the timed loop. Prints ms/step, examples/s and the ratio
to the first config.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import nonempty_str, nonneg_int, path_str, positive_int  # noqa: E402

from common.cli_options import add_threads_option, set_threads  # noqa: E402

import torch  # noqa: E402

from training.config import load_train_config  # noqa: E402
from training.trainer import Trainer  # noqa: E402

DEFAULT = ["sudoku4_trm_mlp", "sudoku4_hrm", "seed000_flat_full_bptt", "cgar_base", "cgar_full", "lm_hrm_lm", "lm_unitf", "lm_transformer"]


def bench(name: str, steps: int, warmup: int, overrides: list[str], tmp: Path) -> dict:
    cfg = load_train_config(REPO / "training" / "configs" / f"{name}.yaml", [f"steps={warmup + steps}", *overrides])
    tr = Trainer(cfg, tmp / name, progress=False)
    for _ in range(warmup):
        tr.train_step()
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    ok = sum(bool(tr.train_step()) for _ in range(steps))
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    n_params = sum(p.numel() for p in tr.model.parameters())
    return {"config": name, "family": tr.model_cfg.family, "params": n_params, "batch": cfg.batch_size,
            "ms_per_step": 1000 * dt, "examples_per_s": cfg.batch_size / dt, "ok_steps": ok, "device": str(tr.device)}


def main() -> None:
    ap = Parser(description=__doc__)
    ap.add_argument("--configs", type=path_str, nargs="+", default=DEFAULT)
    ap.add_argument("--steps", type=positive_int, default=10)
    ap.add_argument("--warmup", type=positive_int, default=3)
    ap.add_argument("--batch-size", type=nonneg_int, default=0, help="override every config's batch size")
    add_threads_option(ap)
    ap.add_argument("--set", type=nonempty_str, dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_cli()
    set_threads(args)
    overrides = [*args.overrides, "eval_interval=0", "ckpt_interval=0"]
    if args.batch_size:
        overrides.append(f"batch_size={args.batch_size}")
    with tempfile.TemporaryDirectory() as d:
        os.environ.setdefault("RECURSE_INTERP_CACHE", str(Path(d) / "cache"))
        rows = [bench(name, args.steps, args.warmup, overrides, Path(d)) for name in args.configs]
    base = rows[0]["ms_per_step"]
    print(f"{'config':26s} {'family':12s} {'params':>9s} {'batch':>5s} {'ms/step':>9s} {'ex/s':>8s} {'ratio':>6s}  device")
    for r in rows:
        print(f"{r['config']:26s} {r['family']:12s} {r['params']:9d} {r['batch']:5d} {r['ms_per_step']:9.1f} "
              f"{r['examples_per_s']:8.1f} {r['ms_per_step'] / base:6.2f}  {r['device']}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, steps {args.steps} (+{args.warmup} warm-up)")


if __name__ == "__main__":
    main()
