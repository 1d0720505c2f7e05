"""The paper's HRM at full size on CPU: trace throughput, overhead over the plain forward, peak memory, bytes.

Builds the Sudoku-Extreme HRM of the paper (hidden 512, 4 H + 4 L layers, 8 heads, expansion 4,
H 2 / L 2 cycles, 16 ACT segments, RoPE, a 512-wide puzzle embedding, seq_len 81, vocab 11:
27.3M parameters) with random weights, saves it as the reference training code does
(``torch.save`` of the state dict with the ``_orig_mod.model.inner.`` prefixes, bfloat16
``H_init``/``L_init``, next to an ``all_config.yaml``), loads it back with ``models.load.load_any``
and, in a fresh child process (so ``ru_maxrss`` is this run's own peak):

* times the plain evaluation forward (``model(x)``, all 16 segments, no grad) over N puzzles,
* times ``trace_to_disk`` of the same N puzzles: summaries for all, every per-step state of the
  first ``--state-puzzles`` (32), streamed to disk chunk by chunk,

and prints puzzles/s, traced/plain ratio, peak RSS and trace bytes per puzzle. Target (issue 13):
traced/plain <= 1.10 and peak RSS < 4 GB at N = 1000.

    python benchmarks/bench_fullsize_hrm.py                    # N = 1000 (hours on a 2-core CPU)
    python benchmarks/bench_fullsize_hrm.py --n 48 --threads 2 # what RESULTS.md reports
    python benchmarks/bench_fullsize_hrm.py --small --n 8      # a seconds-long smoke run of the script
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

PREFIX = "_orig_mod.model.inner."  # torch.compile + ACTLossHead + ACT wrapper, as the reference saves it


def arch(small: bool) -> dict:
    a = dict(name="hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1",
             loss={"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"},
             H_cycles=2, L_cycles=2, H_layers=4, L_layers=4, hidden_size=512, num_heads=8, expansion=4,
             puzzle_emb_ndim=512, pos_encodings="rope", halt_max_steps=16, halt_exploration_prob=0.1)
    if small:
        a.update(H_layers=1, L_layers=1, hidden_size=64, num_heads=4, puzzle_emb_ndim=64, halt_max_steps=2)
    return a


def write_official(run: Path, small: bool) -> Path:
    """A random-weight HRM in the reference save format (weights file ``step_0`` + ``all_config.yaml``)."""
    import torch
    import yaml

    from models import HRMConfig, build_model

    a = arch(small)
    torch.manual_seed(0)
    model = build_model(HRMConfig(vocab_size=11, seq_len=81, num_puzzle_identifiers=1,
                                  **{k: a[k] for k in ("H_cycles", "L_cycles", "H_layers", "L_layers", "hidden_size",
                                                       "num_heads", "expansion", "puzzle_emb_ndim", "pos_encodings",
                                                       "halt_max_steps")}))
    sd = {}
    for k, v in model.state_dict().items():
        sd[PREFIX + k] = v.to(torch.bfloat16) if k in ("H_init", "L_init") else v  # the reference keeps them bf16
    run.mkdir(parents=True, exist_ok=True)
    torch.save(sd, run / "step_0")
    doc = {"arch": a, "data_path": "data/sudoku-extreme-1k-aug-1000", "global_batch_size": 768, "epochs": 20000,
           "lr": 1e-4, "seed": 0, "checkpoint_path": "checkpoints/bench", "project_name": "bench", "run_name": "r"}
    (run / "all_config.yaml").write_text(yaml.safe_dump(doc))
    return run


def child(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from interp import load_trace, trace_to_disk
    from models.load import load_any

    model, meta = load_any(args.ckpt)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(0)
    labels = rng.integers(2, 11, (args.n, 81)).astype(np.uint8)
    inputs = np.where(rng.random((args.n, 81)) < 0.6, 1, labels).astype(np.uint8)  # ~60% blanks
    x = torch.from_numpy(inputs).long()
    with torch.no_grad():  # warm-up
        model(x[:2])

    def plain_run() -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            for a in range(0, args.n, args.batch_size):
                model(x[a:a + args.batch_size]).argmax(-1)
        return time.perf_counter() - t0

    plain_s, trace_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # alternate the two (a shared machine drifts), keep the fastest of each
            plain_s.append(plain_run())
            plain_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if r == 0 else plain_peak
            out = Path(tmp) / f"trace{r}"
            t0 = time.perf_counter()
            trace_to_disk(model, (inputs, labels), out, chunk_size=args.chunk_size, batch_size=args.batch_size,
                          states="all", state_puzzles=np.arange(min(args.state_puzzles, args.n)), progress=False)
            trace_s.append(time.perf_counter() - t0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        disk = sum(p.stat().st_size for p in out.iterdir())
        tr = load_trace(out)
        steps, kept = tr.n_steps, len(tr.state_index)
        states = tr.stored_states
    plain, traced = min(plain_s), min(trace_s)
    return {"n": args.n, "params": n_params, "segments": int(model.cfg.halt_max_steps), "steps": steps,
            "state_puzzles": kept, "states": states, "plain_s": plain, "trace_s": traced, "plain_all": plain_s,
            "trace_all": trace_s, "plain_puzzles_per_s": args.n / plain, "puzzles_per_s": args.n / traced,
            "ratio": traced / plain, "plain_peak_mb": plain_peak, "peak_rss_mb": peak, "trace_bytes": disk,
            "bytes_per_puzzle": disk / args.n, "loaded_as": meta.get("format", meta.get("source", "?"))
            if isinstance(meta, dict) else "?"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000, help="puzzles to trace")
    p.add_argument("--state-puzzles", type=int, default=32, help="keep every per-step state of the first K puzzles")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--chunk-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1, help="alternate plain/traced runs this often, keep the fastest")
    p.add_argument("--small", action="store_true", help="a tiny HRM instead (a smoke test of this script)")
    p.add_argument("--ckpt", help=argparse.SUPPRESS)  # child mode
    args = p.parse_args()
    if args.ckpt is not None:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        run = write_official(Path(tmp) / "run", args.small)
        weights = (run / "step_0").stat().st_size
        flags = ["--n", str(args.n), "--state-puzzles", str(args.state_puzzles), "--batch-size", str(args.batch_size),
                 "--chunk-size", str(args.chunk_size), "--threads", str(args.threads), "--repeats", str(args.repeats)]
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, __file__, "--ckpt", str(run), *flags], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(r.stderr[-3000:])
        d = json.loads(r.stdout.strip().splitlines()[-1])
    a = arch(args.small)
    print(f"HRM hidden {a['hidden_size']}, {a['H_layers']}+{a['L_layers']} layers, {a['num_heads']} heads, "
          f"H {a['H_cycles']} / L {a['L_cycles']} cycles, {d['segments']} segments: {d['params'] / 1e6:.1f}M parameters "
          f"(official file {weights / 2**20:.0f} MiB, loaded through load_any); {d['steps']} steps per puzzle")
    print(f"N {d['n']}, batch {args.batch_size}, chunk {args.chunk_size}, {args.threads} thread(s), best of "
          f"{args.repeats}; full states ({', '.join(d['states'])}) of {d['state_puzzles']} puzzles, summaries of all")
    print(f"load average before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, after "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; wall {wall:.0f} s")
    print("| puzzles | plain s | trace s | plain puzzles/s | traced puzzles/s | traced/plain | peak RSS plain MB "
          "| peak RSS MB | trace bytes/puzzle |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {d['n']} | {d['plain_s']:.1f} | {d['trace_s']:.1f} | {d['plain_puzzles_per_s']:.3f} | "
          f"{d['puzzles_per_s']:.3f} | {d['ratio']:.3f} | {d['plain_peak_mb']:.0f} | {d['peak_rss_mb']:.0f} | "
          f"{d['bytes_per_puzzle'] / 1e3:.1f} kB |")
    print(json.dumps({k: v for k, v in d.items() if k != "states"}))


if __name__ == "__main__":
    main()
