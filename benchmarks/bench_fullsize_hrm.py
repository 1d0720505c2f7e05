"""The paper's HRM at full size on CPU: trace throughput, overhead over the plain forward, peak memory, bytes.

Builds the Sudoku-Extreme HRM of the paper (hidden 512, 4 H + 4 L layers, 8 heads, expansion 4,
H 2 / L 2 cycles, 16 ACT segments, RoPE, a 512-wide puzzle embedding, seq_len 81, vocab 11:
27.3M parameters) with random weights, saves it as the reference training code does
(``torch.save`` of the state dict with the ``_orig_mod.model.inner.`` prefixes, bfloat16
``H_init``/``L_init``, next to an ``all_config.yaml``), loads it back with ``models.load.load_any``
and, in a fresh child process (so ``ru_maxrss`` is this run's own peak), runs ``trace_to_disk`` of N
puzzles (summaries for all, every per-step state of the first ``--state-puzzles`` (32), streamed to
disk chunk by chunk) whose data source also runs the plain evaluation forward (``model(x)``, all 16
segments, no grad) on each chunk just before it is traced: plain and traced runs of the same puzzles
alternate chunk by chunk under the same load (``ChunkTimer``). It prints puzzles/s, the traced/plain
ratio in CPU time (user + kernel) and wall time, per chunk on stderr as it goes and in total (the
first chunk, which holds the kept states, and the median and range over the others), peak RSS and
trace bytes per puzzle. Target (issue 13): traced/plain <= 1.10 and peak RSS < 4 GB at N = 1000.
The process keeps freed memory as the ``interp`` command does (``common/allocator.py``).

    python benchmarks/bench_fullsize_hrm.py                    # N = 1000 (about an hour on an idle 2-core CPU)
    python benchmarks/bench_fullsize_hrm.py --n 128            # a shorter run
    python benchmarks/bench_fullsize_hrm.py --small --n 8 --chunk-size 4   # a seconds-long smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import path_str, positive_int  # noqa: E402

from common.cli_options import add_threads_option, set_threads  # noqa: E402

import numpy as np  # noqa: E402

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


class ChunkTimer:
    """A ``trace_to_disk`` data source that runs and times the plain forward on each chunk before it is traced.

    ``trace_to_disk`` reads each chunk with one ``slice(a, b)`` call, so the time between the end of
    one call and the start of the next is the tracing of that chunk (forward with the recorder,
    per-step lens, chunk file, checksum, manifest). Plain and traced runs of the same puzzles thus
    alternate chunk by chunk under the same load, in one process.
    """

    def __init__(self, src, model, batch_size: int):
        self.src, self.model, self.batch_size = src, model, batch_size
        self.labels, self.task, self.source = src.labels, src.task, src.source
        self.chunks: list[dict] = []
        self._mark: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self.src)

    def digest(self) -> str:
        return self.src.digest()

    def close(self) -> None:
        """End the last chunk's traced time (call when ``trace_to_disk`` returns)."""
        if self._mark is not None and self.chunks:
            cpu, wall = _clock()
            self.chunks[-1].update(trace_cpu=cpu - self._mark[0], trace_wall=wall - self._mark[1])
            self._report(self.chunks[-1])
        self._mark = None

    def slice(self, a: int, b: int):
        import torch

        if b - a <= 1 and a == 0 and not self.chunks:  # the metadata peek before the first chunk
            return self.src.slice(a, b)
        self.close()
        xs, ys, ps = self.src.slice(a, b)
        x = torch.from_numpy(np.asarray(xs)).long()
        cpu0, wall0 = _clock()
        with torch.no_grad():
            for i in range(0, len(x), self.batch_size):
                self.model(x[i:i + self.batch_size]).argmax(-1)
        cpu1, wall1 = _clock()
        self.chunks.append({"start": a, "stop": b, "plain_cpu": cpu1 - cpu0, "plain_wall": wall1 - wall0})
        self._mark = _clock()
        return xs, ys, ps

    @staticmethod
    def _report(c: dict) -> None:
        print(f"chunk {c['start']}-{c['stop']}: plain {c['plain_wall']:.1f} s wall / {c['plain_cpu']:.1f} s CPU, traced "
              f"{c['trace_wall']:.1f} s / {c['trace_cpu']:.1f} s, ratio {c['trace_cpu'] / c['plain_cpu']:.3f} CPU, "
              f"load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)


def _clock() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, time.perf_counter()


def child(args: argparse.Namespace) -> dict:
    import torch

    set_threads(args)
    from common.allocator import retain_freed_memory

    retain_freed_memory()  # as the interp command does
    from interp import load_trace, trace_to_disk
    from interp.tracing.stream import open_data
    from models.load import load_any

    model, meta = load_any(args.ckpt)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(0)
    labels = rng.integers(2, 11, (args.n, 81)).astype(np.uint8)
    inputs = np.where(rng.random((args.n, 81)) < 0.6, 1, labels).astype(np.uint8)  # ~60% blanks
    with torch.no_grad():  # warm-up
        model(torch.from_numpy(inputs[:args.batch_size]).long())
    rss_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fullsize_trace_"))
    timer = ChunkTimer(open_data((inputs, labels)), model, args.batch_size)
    cpu0, wall0 = _clock()
    trace_to_disk(model, timer, out, chunk_size=args.chunk_size, batch_size=args.batch_size, states="all",
                  state_puzzles=np.arange(min(args.state_puzzles, args.n)), progress=False, resume=False,
                  overwrite=True)
    timer.close()
    cpu1, wall1 = _clock()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    disk = sum(p.stat().st_size for p in out.iterdir())
    tr = load_trace(out)
    steps, kept, states = tr.n_steps, len(tr.state_index), tr.stored_states
    exact = float(np.mean(tr.metric("exact")[:, -1]))
    if not args.out:
        shutil.rmtree(out)
    ch = timer.chunks
    plain_cpu, plain_wall = sum(c["plain_cpu"] for c in ch), sum(c["plain_wall"] for c in ch)
    trace_cpu, trace_wall = cpu1 - cpu0 - plain_cpu, wall1 - wall0 - plain_wall  # setup and manifests included
    later = [c["trace_cpu"] / c["plain_cpu"] for c in ch[1:]] or [ch[0]["trace_cpu"] / ch[0]["plain_cpu"]]
    return {"n": args.n, "params": n_params, "segments": int(model.cfg.halt_max_steps), "steps": steps,
            "state_puzzles": kept, "states": states, "chunks": ch, "plain_cpu": plain_cpu, "plain_wall": plain_wall,
            "trace_cpu": trace_cpu, "trace_wall": trace_wall, "ratio_cpu": trace_cpu / plain_cpu,
            "ratio_wall": trace_wall / plain_wall, "ratio_first_chunk": ch[0]["trace_cpu"] / ch[0]["plain_cpu"],
            "ratio_other_chunks_median": float(np.median(later)), "ratio_other_chunks_range": [min(later), max(later)],
            "plain_puzzles_per_s": args.n / plain_wall, "puzzles_per_s": args.n / trace_wall, "rss_warm_mb": rss_warm,
            "peak_rss_mb": peak, "trace_bytes": disk, "bytes_per_puzzle": disk / args.n, "exact_random": exact,
            "loaded_as": meta.get("format", meta.get("source", "?")) if isinstance(meta, dict) else "?"}


def main() -> None:
    p = Parser(description=__doc__)
    p.add_argument("--n", type=positive_int, default=1000, help="puzzles to trace")
    p.add_argument("--state-puzzles", type=positive_int, default=32, help="keep every per-step state of the first K puzzles")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--chunk-size", type=positive_int, default=64, help="puzzles per chunk = per plain/traced round")
    add_threads_option(p, help="torch CPU threads; 0 = torch's own choice (this script's default was "
                          "2 before it took the shared default 1)")
    p.add_argument("--out", type=path_str, help="keep the trace here (default: a temporary folder, removed)")
    p.add_argument("--small", action="store_true", help="a tiny HRM instead (a smoke test of this script)")
    p.add_argument("--ckpt", type=path_str, help=argparse.SUPPRESS)  # child mode
    args = p.parse_cli()
    if args.ckpt is not None:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        run = write_official(Path(tmp) / "run", args.small)
        weights = (run / "step_0").stat().st_size
        flags = ["--n", str(args.n), "--state-puzzles", str(args.state_puzzles), "--batch-size", str(args.batch_size),
                 "--chunk-size", str(args.chunk_size), "--threads", str(args.threads)]
        if args.out:
            flags += ["--out", str(Path(args.out).resolve())]
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, __file__, "--ckpt", str(run), *flags], stdout=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"the child run failed with status {r.returncode}")
        d = json.loads(r.stdout.strip().splitlines()[-1])
    a = arch(args.small)
    print(f"HRM hidden {a['hidden_size']}, {a['H_layers']}+{a['L_layers']} layers, {a['num_heads']} heads, "
          f"H {a['H_cycles']} / L {a['L_cycles']} cycles, {d['segments']} segments: {d['params'] / 1e6:.1f}M parameters "
          f"(official file {weights / 2**20:.0f} MiB, loaded through load_any as {d['loaded_as']}); {d['steps']} steps "
          "per puzzle")
    print(f"N {d['n']}, batch {args.batch_size}, chunk {args.chunk_size} (plain and traced alternate chunk by chunk), "
          f"{args.threads} thread(s); full states ({', '.join(d['states'])}) of {d['state_puzzles']} puzzles, summaries "
          "of all")
    print(f"load average before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, after "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; wall {wall:.0f} s")
    lo, hi = d["ratio_other_chunks_range"]
    print("| puzzles | plain s (CPU s) | trace s (CPU s) | plain puzzles/s | traced puzzles/s | traced/plain CPU | "
          "wall | first chunk (states kept) | other chunks, median (range) | RSS after warm-up MB | peak RSS MB | "
          "trace bytes/puzzle |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {d['n']} | {d['plain_wall']:.0f} ({d['plain_cpu']:.0f}) | {d['trace_wall']:.0f} ({d['trace_cpu']:.0f}) | "
          f"{d['plain_puzzles_per_s']:.3f} | {d['puzzles_per_s']:.3f} | {d['ratio_cpu']:.3f} | {d['ratio_wall']:.3f} | "
          f"{d['ratio_first_chunk']:.3f} | {d['ratio_other_chunks_median']:.3f} ({lo:.3f}-{hi:.3f}) | "
          f"{d['rss_warm_mb']:.0f} | {d['peak_rss_mb']:.0f} | {d['bytes_per_puzzle'] / 1e3:.1f} kB |")
    print(json.dumps({k: v for k, v in d.items() if k != "states"}))


if __name__ == "__main__":
    main()
