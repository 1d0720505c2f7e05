"""Cost of tracing HRM-Text (transformers' HrmTextForCausalLM) per step vs its plain forward.

A random ``HrmTextConfig`` (default: hidden 512, 4 layers per stack, H 2 x L 3
cycles, vocab 32000; ``--size 1b`` gives HRM-Text-1B's shapes), timed
interleaved over repeats (median CPU time of this process, robust to other
jobs; wall time on a GPU) in these variants:

* ``plain``     ``HrmTextForCausalLM(input_ids)`` under no_grad, no wrapper (ratio 1.00)
* ``hooked``    the same forward through ``HrmTextTraced`` with nothing attached (the stack hooks' floor)
* ``cache``     ``run_with_cache``: every per-step z_H / z_L [B, L, D] kept (on the device)
* ``trace``     ``interp.tracing.tracer.trace`` with summaries only and the logit lens of z_H
* ``trace+L``   the same plus the logit lens of z_L at every L-step and all full states copied to host
* ``cli``       what ``interp trace --text`` does by default: full states, the lens of z_H, confidences
* ``hash``      ``model_sha256`` alone, the digest of the weights every trace computes once

Usage::

    python benchmarks/bench_hrm_text.py                        # --device auto (CPU without CUDA), threads 1
    python benchmarks/bench_hrm_text.py --device cuda --size 1b --dtype bfloat16 --seq 512
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import nonempty_str, path_str, positive_int  # noqa: E402

from common.cli_options import add_device_option, add_threads_option, set_threads  # noqa: E402

import torch  # noqa: E402

SIZES = {  # hidden, layers per stack, heads, head_dim, intermediate, vocab
    "s": (256, 2, 4, 64, 768, 8000),
    "s32k": (256, 2, 4, 64, 768, 32000),  # issue 27's size: hidden 256 with a 32000-word vocabulary
    "m": (512, 4, 4, 128, 1536, 32000),
    "1b": (1536, 8, 12, 128, 4096, 151808),
}


def build(size: str, device: str, dtype: torch.dtype):
    from transformers import HrmTextConfig, HrmTextForCausalLM

    D, layers, heads, hd, inter, vocab = SIZES[size]
    cfg = HrmTextConfig(vocab_size=vocab, hidden_size=D, intermediate_size=inter, num_hidden_layers=layers,
                        num_attention_heads=heads, head_dim=hd, H_cycles=2, L_cycles=3, max_position_embeddings=4096)
    torch.manual_seed(0)
    with torch.device(device):
        hf = HrmTextForCausalLM(cfg)
    return hf.to(dtype).eval()


def timer(device: str):
    if device == "cpu":
        return time.process_time
    def wall() -> float:
        torch.cuda.synchronize()
        return time.perf_counter()
    return wall


def main() -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="m")
    ap.add_argument("--batch", type=positive_int, default=2)
    ap.add_argument("--seq", type=positive_int, default=128)
    ap.add_argument("--repeats", type=positive_int, default=5)
    add_threads_option(ap, help="torch CPU threads; 0 = torch's own choice (this script's default was "
                           "2 before it took the shared default 1)")
    add_device_option(ap)
    ap.add_argument("--dtype", type=nonempty_str, default=None, help="default float32 on CPU, bfloat16 on GPU")
    ap.add_argument("--json", type=path_str, help="also write the results here")
    args = ap.parse_cli()
    set_threads(args)
    if args.device == "auto":  # the shared default: cuda when available, else cpu
        from training.distributed import pick_device

        args.device = pick_device("auto").type
    from common.allocator import retain_freed_memory

    retain_freed_memory()  # as the interp command does
    from interp.tracing.model_hash import model_sha256
    from interp.tracing.tracer import trace
    from models.hrm_text import default_dtype, wrap_hrm_text

    dtype = getattr(torch, args.dtype) if args.dtype else default_dtype(args.device)
    hf = build(args.size, args.device, dtype)
    model = wrap_hrm_text(hf)
    x = torch.randint(0, hf.config.vocab_size, (args.batch, args.seq), device=args.device)
    clock = timer(args.device)

    variants = {
        "plain": lambda: hf(input_ids=x, use_cache=False),
        "hooked": lambda: model(x),
        "cache": lambda: model.run_with_cache(x),
        "trace": lambda: trace(model, x, states="summary", decode_latents=False, batch_size=args.batch,
                               confidence=False),
        "trace+L": lambda: trace(model, x, states="all", decode_latents=True, batch_size=args.batch),
        # what `interp trace --text` does by default (full states, the answer lens, confidences)
        "cli": lambda: trace(model, x, states="all", decode_latents=False, batch_size=args.batch),
        # the once-per-trace digest of the weights that ties a trace to them (part of every trace row)
        "hash": lambda: model_sha256(model),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    load0 = os.getloadavg()[0]
    with torch.no_grad():
        for fn in variants.values():  # warm-up
            fn()
        for r in range(args.repeats):
            for k, fn in (variants.items() if r % 2 == 0 else reversed(variants.items())):  # alternate the order
                t0 = clock()
                fn()
                times[k].append(clock() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    n_params = sum(p.numel() for p in hf.parameters())
    res = {
        "size": args.size, "parameters": n_params, "batch": args.batch, "seq": args.seq, "device": args.device,
        "dtype": str(dtype).replace("torch.", ""), "threads": args.threads, "repeats": args.repeats,
        "clock": "process CPU time" if args.device == "cpu" else "wall (synchronised)",
        "plain_ms": 1000 * med["plain"], "ratio": {k: med[k] / med["plain"] for k in med},
        "round_ratio_range": {k: [min(a / b for a, b in zip(times[k], times["plain"])),
                                  max(a / b for a, b in zip(times[k], times["plain"]))] for k in times},
        "load": [load0, os.getloadavg()[0]],
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
                   + (f", {torch.cuda.get_device_name()}" if args.device.startswith("cuda") else ""),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
    }
    print(f"HRM-Text {args.size} ({n_params / 1e6:.1f}M params, {res['dtype']}) B{args.batch} L{args.seq} on "
          f"{args.device}: plain {res['plain_ms']:.1f} ms; load average {load0:.2f} -> {res['load'][1]:.2f}")
    for k, r in res["ratio"].items():
        lo, hi = res["round_ratio_range"][k]
        print(f"  {k:<8} {r:5.3f}x  ({1000 * med[k]:.1f} ms; per-round ratios {lo:.3f}-{hi:.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
