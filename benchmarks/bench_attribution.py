"""Cost of attribution patching against exhaustive activation patching, for one puzzle.

For each model, one clean/corrupted pair (the first puzzle of the shipped ``qqwing_expert.sdm``, one given
changed and still solvable: ``interp attribute``'s default corruption) and every unit (every
state written at every step of every segment, at every cell): the wall time of AtP (two forwards, then
one segment-by-segment backward of the full graph) and of integrated gradients, and the cost of exhaustive
patching. Exhaustive patching of a 16-segment hard model is hours of CPU per puzzle, so by default its
cost is *estimated*: ``--sample-chunks`` chunks of ``--rows`` patched rows, spread over the segments, are
timed in rounds interleaved with AtP and IG runs (medians reported, the load average printed), giving
seconds per (row x segment re-run); the estimate is that rate times the sum over all units
of the segments each patch re-runs (a patch at segment s re-runs s..S-1). ``--full`` runs the whole
sweep too (use with ``--segments 2``) and prints measured against estimated.

    python benchmarks/bench_attribution.py                                   # hard zoo models, 16 segments
    python benchmarks/bench_attribution.py --models hrm-sudoku9-hard --segments 2 --full
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import nonempty_str, nonneg_int, path_str, positive_int  # noqa: E402

from common.cli_options import add_threads_option, set_threads  # noqa: E402


def bench_model(name: str, puzzle_file: Path, segments: int | None, rows: int, sample_chunks: int, full: bool,
                ig_steps: int, seed: int) -> dict:
    import numpy as np
    import torch

    from interp.causal.attribute import attribute
    from interp.causal.attribution import cached_run
    from interp.causal.metrics import answer_alphabet, metric_fn
    from interp.causal.patching import patch_chunk, unit_chunks
    from interp.causal.runner import SegmentRunner
    from interp.causal.units import unit_hooks
    from interp.causal.pairs import make_pairs
    from models.load import load_any
    from tasks.puzzles import TaskInfo, read_puzzles

    model, _ = load_any(str(REPO / "zoo" / name))
    model.eval()
    batch = read_puzzles(TaskInfo("sudoku", (9, 9), "argument"), None, str(puzzle_file), 1)
    pairs = make_pairs(batch.inputs, batch.labels, "change_given", "sudoku", seed=seed)  # interp attribute's default
    runner = SegmentRunner(model, segments)
    S = runner.n_segments
    hooks = unit_hooks(runner.schema)
    dst = runner.prepare(torch.as_tensor(pairs.clean))
    src = runner.prepare(torch.as_tensor(pairs.corrupt))
    s_logits, _, s_values = cached_run(runner, src, hooks)
    labels, targets = torch.as_tensor(pairs.labels), torch.as_tensor(pairs.targets)
    fn = metric_fn("logit_diff", labels, targets, answer_alphabet(labels, model.cfg.vocab_size), s_logits)
    _, d_carries, _ = cached_run(runner, dst, ())
    n_pos = next(iter(d_carries[0].values())).shape[1]
    chunks = unit_chunks(hooks, n_pos, rows)
    work = [len(c) * (S - hooks[c[0][0]].segment) for c in chunks]  # row x segments re-run, per chunk
    picks = sorted(set(np.linspace(0, len(chunks) - 1, sample_chunks).round().astype(int).tolist()))
    rates, times = [], {"atp": [], "ig": []}
    for c in picks:  # interleaved rounds: AtP, IG and one timed chunk of patching each, under the same load
        for method in times:
            t0 = time.perf_counter()
            res = attribute(model, pairs, [method], n_segments=segments, ig_steps=ig_steps)
            times[method].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        patch_chunk(runner, dst, d_carries, s_values, hooks, chunks[c], fn)
        rates.append((time.perf_counter() - t0) / work[c])
    times = {m: statistics.median(v) for m, v in times.items()}
    n_units = int(res.pairs["n_units"].iloc[0])
    rate = statistics.median(rates)
    estimate = rate * sum(work)
    out = {"model": name, "segments": S, "units": n_units, "atp_s": times["atp"], "ig_s": times["ig"],
           "ig_steps": ig_steps, "patch_s_estimated": estimate, "sampled_chunks": len(picks),
           "ratio_patch_over_atp": estimate / times["atp"], "ratio_patch_over_ig": estimate / times["ig"]}
    if full:
        t0 = time.perf_counter()
        attribute(model, pairs, ["patch"], n_segments=segments, patch_rows=rows)
        out["patch_s_measured"] = time.perf_counter() - t0
        out["ratio_measured_over_atp"] = out["patch_s_measured"] / times["atp"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=nonempty_str, default="hrm-sudoku9-hard,trm-sudoku9-hard")
    ap.add_argument("--segments", type=positive_int, help="segments to run (default: the model's depth, 16 for the hard zoo)")
    ap.add_argument("--puzzle-file", type=path_str, default=str(REPO / "data" / "sudoku" / "qqwing_expert.sdm"),
                    help="the first puzzle of this shipped file is the clean input")
    ap.add_argument("--rows", type=positive_int, default=64, help="patched rows per batch (interp attribute's default)")
    ap.add_argument("--sample-chunks", type=positive_int, default=6)
    ap.add_argument("--ig-steps", type=positive_int, default=5)
    ap.add_argument("--full", action="store_true", help="also run the whole exhaustive sweep")
    add_threads_option(ap)
    ap.add_argument("--seed", type=nonneg_int, default=0)
    args = ap.parse_cli(argv)
    import os


    set_threads(args)
    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.2f}")
    for name in args.models.split(","):
        r = bench_model(name, Path(args.puzzle_file), args.segments, args.rows, args.sample_chunks, args.full,
                        args.ig_steps, args.seed)
        line = (f"{r['model']}: {r['segments']} segments, {r['units']} units; AtP {r['atp_s']:.1f} s, "
                f"IG({r['ig_steps']}) {r['ig_s']:.1f} s; exhaustive patching {r['patch_s_estimated']:.0f} s "
                f"(estimated from {r['sampled_chunks']} timed chunks; medians of interleaved rounds) -> {r['ratio_patch_over_atp']:.0f}x AtP, "
                f"{r['ratio_patch_over_ig']:.0f}x IG")
        if "patch_s_measured" in r:
            line += f"; measured {r['patch_s_measured']:.0f} s ({r['ratio_measured_over_atp']:.0f}x AtP)"
        print(line, flush=True)
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
