"""GPU check: the numbers a first GPU session must bring back, in one script.

On a CUDA machine (about 5-8 minutes on one H100/H200) it measures, and writes
to ``--out`` (default ``benchmarks/RESULTS-gpu.md``):

1. environment: torch, CUDA, device, bf16 support, flash-attn importable;
2. training step time, examples/s and tokens/s, fp32 vs bf16 autocast, for the
   zoo configs and the paper-size HRM (hidden 512, 4+4 layers, 8 heads,
   2x2 cycles, 16 segments, batch 768, ~27M parameters), plus
   ``torch.compile`` speed-up for the configs named by ``--compile``;
3. attention: flash-attn (when importable) and PyTorch's own SDPA kernels
   (flash, memory-efficient, math) against the math reference: max abs error
   and time, on the paper HRM's attention shapes;
4. per-step caching (``run_with_cache``) and ``interp`` tracing
   (``trace_to_disk``) time over a plain forward, on the GPU.

Without CUDA (or with ``--dry-run``) it runs every section on tiny CPU
shapes to prove the code paths, marks every number as a dry-run number and
lists what it skipped; nothing in a dry run is a GPU measurement.

    python benchmarks/gpu_check.py                      # on a GPU machine
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import path_str, positive_int  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common.atomic import atomic_write_text  # noqa: E402

# Small generated datasets: the check measures speed, not accuracy.
SUDOKU_DATA = {"generate": "sudoku", "n_train": 1024, "n_test": 64, "seed": 0, "min_blanks": 30, "max_blanks": 45}
MAZE_DATA = {"generate": "maze", "n_train": 512, "n_test": 32, "n_aug": 0, "seed": 0}
PAPER_HRM = [
    "model.hidden_size=512", "model.num_heads=8", "model.H_layers=4", "model.L_layers=4", "model.H_cycles=2",
    "model.L_cycles=2", "model.halt_max_steps=16", "model.mlp_t=false", "batch_size=768",
]
# name -> (config file, overrides); the zoo's training configs plus the paper-size HRM
TRAIN_CASES: dict[str, tuple[str, list[str]]] = {
    "trm-sudoku9": ("zoo/configs/trm_sudoku9.yaml", []),
    "hrm-sudoku9": ("zoo/configs/hrm_sudoku9.yaml", []),
    "hrm-attn-sudoku9": ("zoo/configs/hrm_attn_sudoku9.yaml", []),
    "trm-maze9": ("zoo/configs/trm_maze9.yaml", []),
    "hrm-lm-pydoc": ("training/configs/lm_hrm_lm.yaml", []),
    "hrm-paper-27M": ("zoo/configs/hrm_attn_sudoku9.yaml", PAPER_HRM),
}
CACHE_MODELS = ("hrm-sudoku9", "trm-sudoku9", "hrm-attn-sudoku9", "hrm-paper-27M")
DRY_SHRINK = ["model.hidden_size=32", "model.num_heads=2", "batch_size=4"]


class Report:
    """Collects sections of markdown and the list of what was skipped."""

    def __init__(self, dry: bool):
        self.dry = dry
        self.lines: list[str] = []
        self.skipped: list[str] = []
        self.save: Callable[[], None] = lambda: None

    def section(self, title: str, note: str = "") -> None:
        self.lines += ["", f"## {title}", ""] + ([note, ""] if note else [])

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        self.lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]

    def row(self, cells: list[object]) -> None:
        """Append one row to the last table and save the report (a killed run keeps it)."""
        self.lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        self.save()

    def skip(self, what: str) -> None:
        self.skipped.append(what)
        print(f"skipped: {what}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, float]:
    """Median wall time (s) of each function, the variants interleaved round by round."""
    for fn in fns.values():  # warm-up (kernels, caches, lazy init)
        fn()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


# ----------------------------------------------------------------------------- 1. environment
def environment(rep: Report, device: torch.device) -> None:
    rep.section("Environment")
    rows = [["python", platform.python_version()], ["torch", torch.__version__], ["device", str(device)]]
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        rows += [["gpu", p.name], ["memory GiB", f"{p.total_memory / 2**30:.0f}"], ["SMs", str(p.multi_processor_count)],
                 ["capability", f"{p.major}.{p.minor}"], ["CUDA", str(torch.version.cuda)],
                 ["bf16 supported", str(torch.cuda.is_bf16_supported())]]
    try:
        import flash_attn  # noqa: F401

        rows.append(["flash-attn", getattr(flash_attn, "__version__", "importable")])
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        rows.append(["flash-attn", f"not importable ({type(e).__name__})"])
    rep.table(["what", "value"], rows)


# ----------------------------------------------------------------------------- 2. training steps
def train_case(name: str, variant: str, steps: int, warmup: int, device: torch.device, dry: bool, tmp: Path) -> dict:
    from training.config import load_train_config
    from training.trainer import Trainer

    path, extra = TRAIN_CASES[name]
    over = [f"steps={warmup + steps}", f"device={device.type}", "eval_interval=0", "ckpt_interval=0", *extra]
    text = "hrm-lm" in name
    if not text:
        over.append("task.data=" + repr(MAZE_DATA if "maze" in name else SUDOKU_DATA).replace("'", '"'))
    if variant != "fp32":
        over.append("dtype=bf16")
    if variant.endswith("compile"):
        over.append("compile=true")
    if dry:
        over += DRY_SHRINK
    cfg = load_train_config(REPO / path, over)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    tr = Trainer(cfg, tmp / f"{name}-{variant}", progress=False)
    t0 = time.perf_counter()
    for _ in range(warmup + (4 if variant.endswith("compile") else 0)):  # compiled: let recompiles settle
        tr.train_step()
    sync(tr.device)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ok = sum(bool(tr.train_step()) for _ in range(steps))
    sync(tr.device)
    step_s = (time.perf_counter() - t0) / steps
    seq = tr.model_cfg.seq_len
    params = sum(p.numel() for p in tr.model.parameters())
    peak = torch.cuda.max_memory_allocated(tr.device) / 2**30 if tr.device.type == "cuda" else float("nan")
    return {"params": params, "batch": cfg.batch_size, "ms": 1000 * step_s, "ex_s": cfg.batch_size / step_s,
            "tok_s": cfg.batch_size * seq / step_s, "ok": ok, "warmup_s": first, "peak_gib": peak}


def training(rep: Report, device: torch.device, args: argparse.Namespace, tmp: Path) -> None:
    rep.section(
        "Training step: fp32 vs bf16 autocast (and torch.compile)",
        f"{args.steps} timed optimiser steps after {args.warmup} warm-up steps (compile time falls in the warm-up); "
        "one ACT segment (puzzles) or one multi-pass batch (HRM-LM) per step, EMA and grad clipping on. "
        "tokens/s = batch x sequence length / step time.",
    )
    if rep.dry and args.compile:
        rep.skip("torch.compile (dry run: compiling takes about a minute per config on CPU)")
    rep.table(["model", "variant", "params", "batch", "ms/step", "examples/s", "tokens/s", "speed-up vs fp32",
               "peak GiB", "notes"], [])
    runs = [(name, v) for name in args.train for v in ("fp32", "bf16")]
    runs += [(name, "bf16+compile") for name in args.train if name in args.compile and not rep.dry]  # slowest last
    fp32_ms: dict[str, float] = {}
    for name, v in runs:
        print(f"train {name} {v} ...", flush=True)
        try:
            r = train_case(name, v, args.steps, args.warmup, device, rep.dry, tmp)
        except Exception as e:  # noqa: BLE001 - one failing variant must not lose the others
            traceback.print_exc()
            rep.row([name, v, "-", "-", "failed", "-", "-", "-", "-", f"{type(e).__name__}: {str(e)[:120]}"])
            continue
        base = fp32_ms.setdefault(name, r["ms"])
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] == r["peak_gib"] else "-"
        rep.row([name, v, f"{r['params'] / 1e6:.2f}M", r["batch"], f"{r['ms']:.1f}", f"{r['ex_s']:.0f}",
                 f"{r['tok_s']:.0f}", f"{base / r['ms']:.2f}x", peak, f"{r['ok']}/{args.steps} ok, warm-up {r['warmup_s']:.1f}s"])


# ----------------------------------------------------------------------------- 3. attention kernels
def attention(rep: Report, device: torch.device, args: argparse.Namespace) -> None:
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    B, L, H, Dh = (768, 81, 8, 64) if not rep.dry else (2, 16, 2, 8)
    rep.section("Attention kernels", f"Shapes of the paper HRM: batch {B}, {L} tokens, {H} heads of {Dh}; "
                "error = max abs difference to SDPA's math kernel in float32 on the same inputs.")
    g = torch.Generator(device=device).manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    q, k, v = (torch.randn(B, L, H, Dh, device=device, generator=g, dtype=dtype) for _ in range(3))
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
    with sdpa_kernel(SDPBackend.MATH):
        ref = F.scaled_dot_product_attention(qt.float(), kt.float(), vt.float()).transpose(1, 2)
    fns: dict[str, Callable[[], torch.Tensor]] = {}

    def sdpa(backend):
        def run():
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(qt, kt, vt).transpose(1, 2)
        return run

    backends = {"sdpa-math": SDPBackend.MATH}
    if device.type == "cuda":
        backends |= {"sdpa-flash": SDPBackend.FLASH_ATTENTION, "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION}
    else:
        rep.skip("SDPA flash / memory-efficient kernels (CUDA only)")
    for name, b in backends.items():
        fns[name] = sdpa(b)
    try:
        from flash_attn import flash_attn_func

        if device.type != "cuda":
            raise RuntimeError("needs CUDA")
        fns["flash-attn"] = lambda: flash_attn_func(q, k, v)
    except Exception as e:  # noqa: BLE001
        rep.skip(f"flash-attn package ({type(e).__name__}: {e})")
    rows, working = [], {}
    for name, fn in fns.items():
        try:
            err = (fn().float() - ref).abs().max().item()
            working[name] = fn
            rows.append([name, f"{err:.2e}"])
        except Exception as e:  # noqa: BLE001 - a kernel unsupported on this GPU/dtype
            rows.append([name, f"failed: {type(e).__name__}"])
    times = time_calls(working, args.repeats, device)
    base = times.get("sdpa-math")
    rep.table(["kernel", "max abs error", "ms", "speed-up vs math"],
              [r + ([f"{1000 * times[r[0]]:.3f}", f"{base / times[r[0]]:.2f}x"] if r[0] in times else ["-", "-"]) for r in rows])


# ----------------------------------------------------------------------------- 4. caching and tracing
def caching(rep: Report, device: torch.device, args: argparse.Namespace, tmp: Path) -> None:
    from interp import trace_to_disk
    from models import build_model
    from models.config import HRMConfig
    from models.load import load_any

    rep.section(
        "Per-step cache and tracing overhead",
        "Median wall time over interleaved repeats, CUDA-synchronised; ratio to the plain forward of the same "
        "model on the same batch. `trace` = `interp.trace_to_disk` of the whole set (summaries for all puzzles, "
        "full states of the first 32) over a plain batched forward of the same set, each including the copy of "
        "the answer back to the host.",
    )
    n = args.trace_n if not rep.dry else 16
    batch = args.cache_batch if not rep.dry else 4
    models = {name: load_any(REPO / "zoo" / name)[0] for name in args.cache_models if name != "hrm-paper-27M"}
    if "hrm-paper-27M" in args.cache_models:
        torch.manual_seed(0)
        paper = HRMConfig(vocab_size=11, seq_len=81, hidden_size=512 if not rep.dry else 32, num_heads=8 if not rep.dry else 2,
                          H_layers=4, L_layers=4, H_cycles=2, L_cycles=2, halt_max_steps=16 if not rep.dry else 2)
        models["hrm-paper-27M (random)"] = build_model(paper)
    rng = np.random.default_rng(0)
    labels = rng.integers(2, 11, (n, 81)).astype(np.uint8)
    inputs = np.where(rng.random((n, 81)) < 0.6, 1, labels).astype(np.uint8)
    rows = []
    for name, model in models.items():
        print(f"cache/trace {name} ...", flush=True)
        model = model.eval().to(device)
        x = torch.from_numpy(inputs[:batch]).long().to(device)
        xa = torch.from_numpy(inputs).long()
        tb = min(batch, 256)

        def plain_set():
            with torch.no_grad():
                for a in range(0, n, tb):
                    model(xa[a:a + tb].to(device)).argmax(-1).cpu()

        def trace_set():
            trace_to_disk(model, (inputs, labels), tmp / f"trace-{len(rows)}", batch_size=tb, chunk_size=max(n, 1),
                          states="all", state_puzzles=np.arange(min(32, n)), progress=False, resume=False,
                          overwrite=True)

        with torch.no_grad():
            t = time_calls({"plain": lambda: model(x), "cache": lambda: model.run_with_cache(x)}, args.repeats, device)
            hooks = len(model.run_with_cache(x)[1])
        ts = time_calls({"plain_set": plain_set, "trace_set": trace_set}, max(2, args.repeats // 3), device)
        rows.append([name, batch, hooks, f"{1000 * t['plain']:.1f}", f"{t['cache'] / t['plain']:.2f}x", n,
                     f"{ts['plain_set']:.2f}", f"{ts['trace_set']:.2f}", f"{ts['trace_set'] / ts['plain_set']:.2f}x",
                     f"{n / ts['trace_set']:.0f}"])
        model.to("cpu")
    rep.table(["model", "batch", "hooks", "plain ms", "cache / plain", "trace puzzles", "plain s", "trace s",
               "trace / plain", "traced puzzles/s"], rows)


# ----------------------------------------------------------------------------- main
def write_report(rep: Report, args: argparse.Namespace, dry: bool, start: float, done: list[str]) -> None:
    """(Re)write the report; called after every section so a killed run keeps what it measured."""
    head = ["# GPU check" if not dry else "# GPU check: DRY RUN on CPU (no number below is a GPU measurement)", "",
            f"- Command: `python benchmarks/gpu_check.py{' --dry-run' if args.dry_run else ''}`",
            f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; sections done: {', '.join(done) or 'none'} "
            f"in {time.perf_counter() - start:.0f} s",
            f"- Host: {platform.node()}, {os.cpu_count()} CPU cores"]
    if rep.skipped:
        head += ["- Skipped: " + "; ".join(rep.skipped)]
    atomic_write_text(args.out, "\n".join(head + rep.lines) + "\n")


SECTIONS = ("env", "train", "attention", "cache")


def main(argv: list[str] | None = None) -> int:
    ap = Parser(description=__doc__)
    ap.add_argument("--out", type=path_str, default=REPO / "benchmarks" / "RESULTS-gpu.md")
    ap.add_argument("--dry-run", action="store_true", help="tiny CPU shapes, even when CUDA is present")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--train", nargs="+", choices=list(TRAIN_CASES), default=list(TRAIN_CASES))
    ap.add_argument("--compile", nargs="*", choices=list(TRAIN_CASES), default=["trm-sudoku9", "hrm-paper-27M"],
                    help="configs also timed with torch.compile (compiling takes a while each)")
    ap.add_argument("--steps", type=positive_int, default=20)
    ap.add_argument("--warmup", type=positive_int, default=3)
    ap.add_argument("--repeats", type=positive_int, default=9)
    ap.add_argument("--cache-models", nargs="+", choices=CACHE_MODELS, default=list(CACHE_MODELS))
    ap.add_argument("--cache-batch", type=positive_int, default=256)
    ap.add_argument("--trace-n", type=positive_int, default=2048)
    args = ap.parse_cli(argv)
    dry = args.dry_run or not torch.cuda.is_available()
    if dry:
        args.steps, args.warmup, args.repeats = 1, 1, 1
    device = torch.device("cuda") if not dry else torch.device("cpu")
    rep = Report(dry)
    start = time.perf_counter()
    done: list[str] = []
    rep.save = lambda: write_report(rep, args, dry, start, done)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        os.environ.setdefault("RECURSE_INTERP_CACHE", str(tmp / "datasets"))
        for sec, fn in (("env", lambda: environment(rep, device)), ("attention", lambda: attention(rep, device, args)),
                        ("cache", lambda: caching(rep, device, args, tmp)), ("train", lambda: training(rep, device, args, tmp))):
            if sec not in args.sections:
                rep.skip(f"section {sec} (not requested)")
                continue
            t0 = time.perf_counter()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - keep the other sections' numbers
                traceback.print_exc()
                rep.lines += ["", f"Section {sec} failed: {type(e).__name__}: {e}"]
            print(f"section {sec}: {time.perf_counter() - t0:.1f}s", flush=True)
            done.append(sec)
            write_report(rep, args, dry, start, done)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
