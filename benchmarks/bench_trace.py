"""Trace throughput, peak memory and tracing overhead on a small model.

For each size N this script (in a fresh child process per size, so peak RSS
is not inherited from a previous size) builds a small random-weight HRM on
9x9 Sudoku shapes, times ``trace_to_disk`` of N random puzzles (summaries,
plus full states for the first ``--state-puzzles``) and a plain batched
``model(x)`` forward over the same puzzles, and prints puzzles/s, peak
resident memory (after the plain runs, and overall = while tracing) and
the traced/plain time ratio.

    python benchmarks/bench_trace.py --sizes 1000 10000
    python benchmarks/bench_trace.py --sizes 1000 --hidden 64 --threads 1   # what the README reports
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from interp import load_trace, trace_to_disk
    from models import HRMConfig, build_model

    torch.manual_seed(0)
    model = build_model(HRMConfig(vocab_size=11, seq_len=81, hidden_size=args.hidden, num_heads=args.heads,
                                  H_layers=args.layers, L_layers=args.layers, H_cycles=2, L_cycles=2,
                                  halt_max_steps=args.segments, expansion=2.0)).eval().to(args.device)
    rng = np.random.default_rng(0)
    labels = rng.integers(2, 11, (args.n, 81)).astype(np.uint8)
    inputs = np.where(rng.random((args.n, 81)) < 0.6, 1, labels).astype(np.uint8)
    base = _rss_mb()

    x = torch.from_numpy(inputs).long()
    with torch.no_grad():  # warm-up
        model(x[: args.batch_size].to(args.device))

    def plain_run() -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            for a in range(0, args.n, args.batch_size):
                model(x[a:a + args.batch_size].to(args.device)).argmax(-1).cpu()
        return time.perf_counter() - t0

    plain, traced, peak = float("inf"), float("inf"), 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # alternate the two, keep the fastest of each (shared machines are noisy)
            plain = min(plain, plain_run())
            if r == 0:
                plain_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            out = Path(tmp) / f"trace{r}"
            t0 = time.perf_counter()
            trace_to_disk(model, (inputs, labels), out, chunk_size=args.chunk_size, batch_size=args.batch_size,
                          states="all", state_puzzles=np.arange(min(args.state_puzzles, args.n)), progress=False)
            traced = min(traced, time.perf_counter() - t0)
            peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        disk = sum(p.stat().st_size for p in out.iterdir()) / 2**20
        t0 = time.perf_counter()
        tr = load_trace(out)
        tr.metric("exact")
        load = time.perf_counter() - t0
        steps = tr.n_steps
    return {"n": args.n, "steps": steps, "plain_s": plain, "trace_s": traced, "load_s": load,
            "puzzles_per_s": args.n / traced, "ratio": traced / plain, "peak_rss_mb": peak,
            "rss_before_mb": base, "plain_peak_mb": plain_peak, "disk_mb": disk}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--segments", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--chunk-size", type=int, default=1024)
    p.add_argument("--state-puzzles", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=1, help="alternate plain/traced runs this often, keep the fastest")
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)  # child mode
    args = p.parse_args()
    if args.n is not None:
        print(json.dumps(child(args)))
        return
    print(f"HRM hidden {args.hidden}, {args.layers}+{args.layers} layers, 2x2 cycles, {args.segments} segments, "
          f"batch {args.batch_size}, chunk {args.chunk_size}, {args.threads} thread(s), device {args.device}, "
          f"best of {args.repeats}; summaries for all puzzles + full states of {args.state_puzzles}")
    print(f"{'puzzles':>8} {'steps':>6} {'plain s':>8} {'trace s':>8} {'puzzles/s':>10} {'traced/plain':>13} "
          f"{'RSS start MB':>13} {'peak plain MB':>14} {'peak trace MB':>14} {'disk MB':>8} {'load s':>7}")
    for n in args.sizes:
        flags = []
        for k in ("hidden", "heads", "layers", "segments", "batch_size", "chunk_size", "state_puzzles", "threads", "device",
                  "repeats"):
            flags += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
        cmd = [sys.executable, __file__, "--n", str(n), *flags]
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        d = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{d['n']:>8} {d['steps']:>6} {d['plain_s']:>8.2f} {d['trace_s']:>8.2f} {d['puzzles_per_s']:>10.1f} "
              f"{d['ratio']:>13.2f} {d['rss_before_mb']:>13.0f} {d['plain_peak_mb']:>14.0f} {d['peak_rss_mb']:>14.0f} "
              f"{d['disk_mb']:>8.1f} "
              f"{d['load_s']:>7.2f}")


if __name__ == "__main__":
    main()
