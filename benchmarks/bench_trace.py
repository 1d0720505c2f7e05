"""What ``interp trace`` costs over the plain forward: throughput, overhead, page faults, memory, disk.

For each model (a small random-weight HRM on 9x9 Sudoku shapes, ``--models small``, and/or the
shipped zoo checkpoints, ``--models zoo`` or names) and each size N, a fresh child process (so
peak RSS is not inherited) runs ``--rounds`` interleaved rounds of

* ``plain``: the evaluation forward ``model(x)`` over the N puzzles in batches, no grad, and
* ``trace``: ``trace_to_disk`` of the same N puzzles with the settings of ``interp trace``'s defaults
  (batch 64, per-step logit lens of every state, confidence, metrics; summaries for all puzzles,
  full states of the first 16, chunks of 1024),

in alternating order (plain first in odd rounds, trace first in even ones), and prints the
median CPU time (user + kernel) of each, the traced/plain ratio of the medians with the range of
the per-round ratios (same round, same load), the kernel share and minor page faults of the
traced runs, puzzles/s, peak RSS and the trace's size on disk, plus the load average before and
after every row (the machine may be shared: read the ratios beside the load).

Inputs are real puzzles from the shipped files, as a user runs them: Sudoku models (and ``small``)
read ``data/sudoku/qqwing_expert.sdm``, maze models ``data/maze/maze9.txt`` (its mazes repeated to
N), both with their labels; language models (``hrm-lm-pydoc``) get random byte rows
(``--puzzle-file`` overrides the file).

``--malloc retain`` (default) sets glibc's malloc thresholds as the ``interp`` command does
(``common/allocator.py``); ``--malloc default`` keeps glibc's own, which a library user gets
unless they call ``retain_freed_memory()``.

    python benchmarks/bench_trace.py                                   # small HRM, N 512
    python benchmarks/bench_trace.py --models zoo --threads 1          # every zoo checkpoint, CLI defaults
    python benchmarks/bench_trace.py --malloc default --sizes 1000     # glibc's own allocator settings
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import nonempty_str, path_str, positive_int  # noqa: E402

from common.cli_options import add_threads_option, set_threads  # noqa: E402

ZOO = ("hrm-sudoku9", "hrm-attn-sudoku9", "trm-sudoku9", "trm-maze9", "hrm-sudoku9-hard", "trm-sudoku9-hard",
       "hrm-lm-pydoc")


def _usage() -> tuple[float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_minflt


def _build(args: argparse.Namespace):
    import torch

    if args.model == "small":
        from models import HRMConfig, build_model

        torch.manual_seed(0)
        return build_model(HRMConfig(vocab_size=11, seq_len=81, hidden_size=args.hidden, num_heads=args.heads,
                                     H_layers=args.layers, L_layers=args.layers, H_cycles=2, L_cycles=2,
                                     halt_max_steps=args.segments, expansion=2.0)).eval()
    from models.load import load_any

    return load_any(REPO / "zoo" / args.model)[0].eval()


def _inputs(args: argparse.Namespace, model) -> tuple:
    """(inputs, labels, task) of N real puzzles from a shipped file (repeated to N), or random bytes for an LM."""
    import numpy as np

    cfg = model.cfg
    if cfg.family in ("hrm_lm", "transformer_lm", "unitf_lm"):
        return np.random.default_rng(0).integers(0, cfg.vocab_size, (args.n, cfg.seq_len)), None, None
    from interp.puzzle_inputs import load_puzzle_inputs

    meta = {"model": {"family": cfg.family, "vocab_size": cfg.vocab_size, "seq_len": cfg.seq_len}}
    if args.model != "small":
        meta = _zoo_meta(args.model)
    task = (meta.get("task") or {}).get("name", "sudoku")
    path = args.puzzle_file or str(REPO / "data" / ("maze/maze9.txt" if task == "maze" else "sudoku/qqwing_expert.sdm"))
    got = load_puzzle_inputs(meta, puzzle_file=path, task=task)
    reps = -(-args.n // len(got.inputs))
    return (np.tile(got.inputs, (reps, 1))[: args.n], np.tile(got.labels, (reps, 1))[: args.n], got.task)


def _zoo_meta(name: str) -> dict:
    """The checkpoint's config (``{"model": ..., "task": ...}``) without loading its weights."""
    import json as json_lib

    return json_lib.loads((REPO / "zoo" / name / "config.json").read_text())


def child(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    set_threads(args)
    if args.malloc == "retain":
        from common.allocator import retain_freed_memory

        assert retain_freed_memory(), "glibc's mallopt is not available here: use --malloc default"
    from interp import load_trace, trace_to_disk

    model = _build(args)
    inputs, labels, task = _inputs(args, model)
    x = torch.from_numpy(inputs).long()
    B = args.batch_size

    def plain() -> None:
        with torch.no_grad():
            for a in range(0, args.n, B):
                model(x[a:a + B]).argmax(-1)

    with tempfile.TemporaryDirectory() as tmp:
        def traced(r: int) -> Path:
            out = Path(tmp) / f"trace{r}"
            data = inputs if labels is None else (inputs, labels)
            trace_to_disk(model, data, out, chunk_size=args.chunk_size, batch_size=B, states="all",
                          state_puzzles=np.arange(min(args.state_puzzles, args.n)), progress=False, task=task,
                          decode_latents=not args.no_decode_latents, confidence=not args.no_confidence)
            return out

        with torch.no_grad():  # warm-up of both
            model(x[:B])
        traced(-1)
        runs = {"plain": [], "trace": []}
        load0 = os.getloadavg()[0]
        for r in range(args.rounds):
            order = ("plain", "trace") if r % 2 == 0 else ("trace", "plain")
            for kind in order:
                cpu0, flt0 = _usage()
                w0 = time.perf_counter()
                out = traced(r) if kind == "trace" else plain()
                wall = time.perf_counter() - w0
                cpu1, flt1 = _usage()
                runs[kind].append({"cpu": cpu1 - cpu0, "wall": wall, "faults": flt1 - flt0})
                if kind == "trace":
                    disk = sum(p.stat().st_size for p in out.iterdir()) / 2**20
                    steps = load_trace(out).n_steps
                    for p in out.iterdir():
                        p.unlink()
                    out.rmdir()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"model": args.model, "n": args.n, "steps": steps, "runs": runs, "disk_mb": disk, "peak_rss_mb": peak,
            "load_start": load0, "load_end": os.getloadavg()[0]}


def summarise(d: dict) -> dict:
    """Medians and the per-round ratio range of a child's result."""
    p, t = d["runs"]["plain"], d["runs"]["trace"]
    med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
    ratios = [b["cpu"] / a["cpu"] for a, b in zip(p, t)]
    return {"plain_cpu": med(p, "cpu"), "trace_cpu": med(t, "cpu"), "ratio": med(t, "cpu") / med(p, "cpu"),
            "lo": min(ratios), "hi": max(ratios), "wall_ratio": med(t, "wall") / med(p, "wall"),
            "faults_plain": med(p, "faults"), "faults_trace": med(t, "faults"),
            "puzzles_per_s": d["n"] / med(t, "wall")}


def main() -> None:
    p = Parser(description=__doc__)
    p.add_argument("--models", type=nonempty_str, nargs="+", default=["small"], help="small, zoo (every zoo model) or zoo names")
    p.add_argument("--sizes", type=positive_int, nargs="+", default=[512])
    p.add_argument("--rounds", type=positive_int, default=5, help="interleaved plain/trace rounds per size")
    p.add_argument("--hidden", type=positive_int, default=64, help="small model: hidden size")
    p.add_argument("--heads", type=positive_int, default=4)
    p.add_argument("--layers", type=positive_int, default=1)
    p.add_argument("--segments", type=positive_int, default=4, help="small model: ACT segments")
    p.add_argument("--batch-size", type=positive_int, default=64, help="puzzles per forward (interp trace's default: 64)")
    p.add_argument("--puzzle-file", type=path_str, help="puzzles to trace (default: qqwing_expert.sdm or maze9.txt, by task)")
    p.add_argument("--chunk-size", type=positive_int, default=1024)
    p.add_argument("--state-puzzles", type=positive_int, default=16)
    add_threads_option(p)
    p.add_argument("--malloc", choices=("retain", "default"), default="retain")
    p.add_argument("--no-decode-latents", action="store_true", help="logit lens of the answer state only")
    p.add_argument("--no-confidence", action="store_true", help="no per-cell confidence arrays")
    p.add_argument("--n", type=positive_int, help=argparse.SUPPRESS)  # child mode
    p.add_argument("--model", type=nonempty_str, help=argparse.SUPPRESS)
    args = p.parse_cli()
    if args.n is not None:
        print(json.dumps(child(args)))
        return
    models = [m for name in args.models for m in (ZOO if name == "zoo" else [name])]
    for m in models:
        if m != "small" and not (REPO / "zoo" / m).is_dir():
            sys.exit(f"error: no zoo model {m!r} (zoo models: {', '.join(ZOO)})")
    print(f"# {args.threads} thread(s), batch {args.batch_size}, chunk {args.chunk_size}, {args.rounds} interleaved "
          f"rounds, malloc {args.malloc}, decode latents {not args.no_decode_latents}, confidence "
          f"{not args.no_confidence}; summaries of all puzzles + full states of {args.state_puzzles}; small = HRM "
          f"hidden {args.hidden}, {args.layers}+{args.layers} layers, 2x2 cycles, {args.segments} segments; "
          f"real puzzles from shipped files; load avg at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("| model | puzzles | steps | plain CPU s | trace CPU s | traced/plain CPU (range) | traced/plain wall | "
          "faults plain | faults trace | puzzles/s traced | peak RSS MB | disk MB | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    t0 = time.perf_counter()
    for m in models:
        for n in args.sizes:
            flags = ["--n", str(n), "--model", m]
            for k in ("rounds", "hidden", "heads", "layers", "segments", "batch_size", "chunk_size", "state_puzzles",
                      "threads", "malloc", "puzzle_file"):
                if getattr(args, k) is not None:
                    flags += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
            flags += [f for f in ("--no-decode-latents", "--no-confidence") if getattr(args, f[2:].replace("-", "_"))]
            r = subprocess.run([sys.executable, __file__, *flags], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(r.stderr[-3000:])
            d = json.loads(r.stdout.strip().splitlines()[-1])
            s = summarise(d)
            print(f"| {m} | {n} | {d['steps']} | {s['plain_cpu']:.2f} | {s['trace_cpu']:.2f} | {s['ratio']:.3f} "
                  f"({s['lo']:.2f}-{s['hi']:.2f}) | {s['wall_ratio']:.3f} | {s['faults_plain']:.0f} | "
                  f"{s['faults_trace']:.0f} | {s['puzzles_per_s']:.1f} | {d['peak_rss_mb']:.0f} | {d['disk_mb']:.1f} | "
                  f"{d['load_start']:.1f}-{d['load_end']:.1f} |", flush=True)
    print(f"# total {time.perf_counter() - t0:.0f} s wall, load avg at end {os.getloadavg()[0]:.2f}; ratio = median "
          "trace CPU time / median plain CPU time (user + kernel), (min-max) of the per-round ratios")


if __name__ == "__main__":
    main()
