"""``interp scale``: test-time compute at equal cost, depth x breadth x selection rule, against FLOPs.

    interp scale --ckpt zoo/trm-sudoku9-hard --puzzle-file data/sudoku/top1465.sdm --limit 64 --budget 16 --out out/scale
    interp scale --ckpt zoo/hrm-sudoku9-hard --puzzle-file hard.sdm --budget 64 --depth 32 --strategies aug,eqr --out out/s

Every candidate (candidate 0 is the plain model: the identity pass is always in
the budget) runs ``--depth`` segments once; every depth 1..D, halting mode (off,
Q head, fixed point) and breadth k <= ``--k`` is read off the same runs, and every
selection rule is scored on the same candidates (``interp.guess_scaling.selection``).
The collection is chunked and resumable: rerun the same command after a kill and
it continues. Writes to ``--out``: ``scaling.csv`` (one row per weights, strategy,
rule, halting, depth, k: passes, FLOPs, wall time, n, solved, Wilson 95% lo/hi),
``pareto.csv``, ``scaling.html`` (Plotly) with ``pareto.png`` and ``depth.png``,
``summary.md`` (the one-screen summary, also printed) and ``provenance.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from common.cli_format import examples
from common.cli_options import (add_ckpt_option, add_device_option, add_limit_option, add_plotly,
                                add_puzzle_file_option, add_quiet, add_task_option, add_threads_option,
                                set_threads, show_progress)
from common.cli_types import nonempty_str, nonneg_float, nonneg_int, positive_float, positive_int, probability

DEPTH_CAP = 1024
"""Most segments per candidate (64 passes of a 16-segment model)."""
K_CAP = 1024
"""Most candidates per puzzle and strategy."""
MEMORY_CAP = 8 << 30
"""Most bytes of per-segment answers a run may keep in memory."""
STRATEGIES = ("aug", "ptrm", "eqr", "bootstrap")
RULES = ("q_head", "majority", "weighted_majority", "residual_topk", "stability", "oracle")
HALTING = ("off", "q_head", "fixed_point")
WEIGHTS = ("auto", "ema", "raw", "both")
OUTPUT_FILES = ("scaling.csv", "pareto.csv", "scaling.html", "plotly.min.js", "pareto.png", "depth.png", "summary.md",
                "provenance.json")


def _items(text: str, what: str, allowed: tuple[str, ...]) -> list[str]:
    items = list(dict.fromkeys(t.strip() for t in str(text).split(",") if t.strip()))
    bad = [t for t in items if t not in allowed]
    if not items or bad:
        raise ValueError(f"--{what}: {'empty' if not items else 'unknown ' + ', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def _human(n: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def plan(args: argparse.Namespace, base: int, n: int, seq_len: int, seg_flops: int, n_ckpts: int) -> dict[str, Any]:
    """Check depth, breadth and budget before anything runs; returns depth, k and the check depths."""
    depth = args.depth if args.depth is not None else 2 * base
    k = args.k if args.k is not None else max(1, (args.budget * base) // depth)
    strategies = _items(args.strategies, "strategies", STRATEGIES)
    cost = (n * k * depth * (seq_len + 8) * len(strategies), float(n) * k * depth * seg_flops * len(strategies))
    est = f"this run would keep {_human(cost[0])}B of per-segment answers and compute {_human(cost[1])} FLOPs"
    if depth > DEPTH_CAP:
        raise ValueError(f"--depth {depth} is above the cap of {DEPTH_CAP} segments ({est})")
    if k > K_CAP:
        raise ValueError(f"--k {k} is above the cap of {K_CAP} candidates ({est})")
    if cost[0] > MEMORY_CAP:
        raise ValueError(f"--depth {depth} x --k {k} over {n} puzzles is above the memory cap of {_human(MEMORY_CAP)}B ({est}); "
                         "lower --limit, --k or --depth")
    need = k * depth / base
    if need > args.budget + 1e-9:
        raise ValueError(f"a budget of {args.budget} passes cannot pay for k={k} candidates of {depth} segments "
                         f"({need:g} passes of {base} segments); lower --k or --depth or raise --budget")
    if "bootstrap" in strategies and k > n_ckpts:
        raise ValueError(f"strategy bootstrap with k={k} needs {k} --ckpt, got {n_ckpts}")
    checks = sorted({min(base, depth), depth})
    return {"depth": depth, "k": k, "strategies": strategies, "check_depths": checks}


def _halting_head(model: Any) -> bool:
    """Whether the model has a trained halting head (an untrained one is all-zero weights)."""
    head = getattr(model, "q_head", None)
    return head is not None and bool(head.weight.detach().abs().sum() > 0)


def _weights_used(meta: dict[str, Any]) -> tuple[str, list[str]]:
    src = (meta.get("source") or {}).get("checkpoint") or {}
    if src:
        return str(src.get("weights")), list(src.get("available_weights") or [])
    w = str((meta.get("state") or {}).get("weights") or "only")
    return w, [w]


def load_models(ckpts: list[str], weights: str, device: Any, **load_kwargs: Any) -> dict[str, list[Any]]:
    """{weights label: [model per --ckpt]}; ``both`` loads EMA and raw where the first checkpoint has both.

    Each load prints which weights it uses; ``load_kwargs`` go to ``load_any`` (e.g. ``seq_len`` of an official file)."""
    from models.load import load_any

    def load(c: str, w: str | None) -> Any:
        model, meta = load_any(c, **load_kwargs, **({"weights": w} if w else {}))
        used, avail = _weights_used(meta)
        print(f"loaded {c}: weights {used} (available: {', '.join(avail) or used})", file=sys.stderr)
        return model.eval().to(device), used, avail

    first = load(ckpts[0], None if weights in ("auto", "both") else weights)
    if weights == "both" and len(first[2]) < 2:
        print(f"note: {ckpts[0]} holds one set of weights ({first[1]}); no EMA/raw comparison", file=sys.stderr)
    labels = ["ema", "raw"] if weights == "both" and len(first[2]) >= 2 else [first[1]]
    out: dict[str, list[Any]] = {}
    for lab in labels:
        want = lab if weights == "both" else (None if weights == "auto" else weights)
        out[lab] = [load(c, want)[0] if (i or lab != first[1]) else first[0] for i, c in enumerate(ckpts)]
    return out


def run_scale(args: argparse.Namespace) -> dict[str, Any]:
    """Load, check, collect (resumable), score, write; returns the table and the output folder."""
    import numpy as np
    import pandas as pd
    import torch

    from common.io import TOOL_MARK, atomic_write, atomic_write_text, check_replaceable, listed_files, write_html
    from interp.guess_scaling.depth_runs import BreadthSpec
    from interp.guess_scaling.flops import flops_per_segment
    from interp.guess_scaling.recursion import is_recurrent
    from interp.guess_scaling.scale_plots import depth_png, pareto_png, scale_figure
    from interp.guess_scaling.scale_run import check_settings, collect_chunked
    from interp.guess_scaling.scale_table import pareto, score
    from interp.puzzle_inputs import load_puzzle_inputs
    from training.distributed import pick_device

    out = Path(args.out)
    check_replaceable(out, ValueError, "scale output")
    rules = _items(args.rules or ",".join(RULES), "rules", RULES)
    halting = _items(args.halting or ",".join(HALTING), "halting", HALTING)
    set_threads(args)
    device = pick_device(args.device)
    ckpts = list(args.ckpt)
    variants = load_models(ckpts, args.weights, device)
    models0 = next(iter(variants.values()))
    m0 = models0[0]
    if not is_recurrent(m0):
        raise ValueError(f"{ckpts[0]}: {type(m0).__name__} is not a recurrent puzzle model (HRM/TRM family)")
    needs_q = [r for r in rules if r in ("q_head", "weighted_majority")] + (["halting q_head"] if "q_head" in halting else [])
    if needs_q and not _halting_head(m0) and args.rules is None and args.halting is None:
        print(f"note: {ckpts[0]} has no trained halting head; left out {', '.join(needs_q)}", file=sys.stderr)
        rules = [r for r in rules if r not in ("q_head", "weighted_majority")]
        halting = [h for h in halting if h != "q_head"]
    elif needs_q and not _halting_head(m0):
        raise ValueError(f"{', '.join(needs_q)} need halting logits, but {ckpts[0]} has no trained halting head "
                         "(its q_head is all zero); leave them out with --rules/--halting")
    for c, m in zip(ckpts[1:], models0[1:]):
        if (m.cfg.seq_len, m.cfg.vocab_size) != (m0.cfg.seq_len, m0.cfg.vocab_size):
            raise ValueError(f"{c}: seq_len/vocab_size differ from {ckpts[0]}; every checkpoint must solve the same task")
    found = load_puzzle_inputs({"model": m0.cfg.to_dict()}, data=args.data, puzzle_file=None if args.data else args.puzzle_file,
                               split=args.split, limit=args.limit, task=args.task)
    if found.labels is None:
        raise ValueError("the puzzles have no labels (the solver found none); scaling needs answers")
    x, y = np.asarray(found.inputs).astype(np.int64), np.asarray(found.labels).astype(np.int64)
    pid = None if found.puzzle_ids is None else np.asarray(found.puzzle_ids)
    index = np.arange(len(x))
    if args.sample is not None and args.sample < len(x):
        index = np.sort(np.random.default_rng(args.seed).choice(len(x), args.sample, replace=False))
        x, y, pid = x[index], y[index], None if pid is None else pid[index]
    if x.shape[1] != m0.cfg.seq_len:
        raise ValueError(f"puzzles have {x.shape[1]} tokens but {ckpts[0]} expects {m0.cfg.seq_len}")
    task = (found.task or {}).get("name") or args.task
    task = task if task in ("sudoku", "maze") else "other"
    base = int(m0.cfg.halt_max_steps)
    seg_flops, flop_source = flops_per_segment(m0)
    p = plan(args, base, len(x), x.shape[1], seg_flops, len(ckpts))
    if task == "other" and "aug" in p["strategies"]:
        raise ValueError("strategy aug needs Sudoku or maze puzzles (input symmetries); leave it out with --strategies")
    settings = {"ckpts": ckpts, "weights": list(variants), "puzzles": str(args.data or args.puzzle_file),
                "limit": args.limit, "sample": args.sample, "n": int(len(x)), "depth": p["depth"], "k": p["k"],
                "strategies": p["strategies"], "noise": args.noise, "stab_noise": args.stab_noise, "seed": args.seed,
                "preset": args.preset, "chunk": args.chunk, "check_depths": p["check_depths"]}
    check_settings(out, settings)
    print(f"scale: {len(x)} puzzles, seed {args.seed}, depth 1..{p['depth']} segments (training depth {base}), "
          f"k <= {p['k']}, budget {args.budget} passes, strategies {','.join(p['strategies'])}, weights "
          f"{','.join(variants)}, {_human(seg_flops)} FLOPs per segment ({flop_source})", file=sys.stderr)

    prov: dict[str, Any] = {"tool": TOOL_MARK, "command": "interp " + " ".join(shlex.quote(a) for a in args.argv),
                            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": settings,
                            "puzzle_index": index.tolist(), "flops_per_segment": seg_flops, "flop_source": flop_source,
                            "torch": torch.__version__, "device": str(device)}

    def save_prov() -> None:
        prov["files"] = sorted(set(listed_files(out)) | {"provenance.json"})
        atomic_write_text(out / "provenance.json", json.dumps(prov, indent=1))

    out.mkdir(parents=True, exist_ok=True)
    save_prov()
    tables = []
    for wlabel, models in variants.items():
        specs = [BreadthSpec(s, args.noise, args.seed, args.preset, task) for s in p["strategies"]]
        got = collect_chunked(out, settings, models, x, wlabel, specs, p["k"], p["depth"], p["check_depths"],
                              args.stab_noise, args.chunk, pid, show_progress(args), save_prov)
        for s, (rec, secs) in got.items():
            tables.append(score(rec, y, s, base, seg_flops, rules, halting,
                                args.tol, p["check_depths"], args.budget, secs, wlabel, args.topk_frac))
    table = pd.concat(tables, ignore_index=True)
    front = pareto(table)
    atomic_write(out / "scaling.csv", lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))
    atomic_write(out / "pareto.csv", lambda tmp: front.to_csv(tmp, index=False, float_format="%.6g"))
    title = f"{Path(ckpts[0]).name}: {len(x)} puzzles, budget {args.budget} passes"
    atomic_write(out / "pareto.png", lambda tmp: pareto_png(table, title).savefig(tmp, format="png", dpi=130))
    atomic_write(out / "depth.png", lambda tmp: depth_png(table, title).savefig(tmp, format="png", dpi=130))
    write_html(scale_figure(table, title), out / "scaling.html", plotly_js=args.plotly)
    text = summary(table, front, len(x), args, p, base)
    atomic_write_text(out / "summary.md", text)
    save_prov()
    return {"table": table, "pareto": front, "summary": text, "out": out}


def summary(table: Any, front: Any, n: int, args: argparse.Namespace, p: dict[str, Any], base: int) -> str:
    """The one-screen summary: plain model, best label-free row per strategy within budget, ceiling, Pareto front."""
    def fmt(r: Any) -> str:
        return (f"{100 * r.accuracy:5.1f}% [{100 * r.lo:.1f}, {100 * r.hi:.1f}] ({r.solved}/{r.n})  "
                f"{r.passes:6.2f} passes  {_human(r.flops)} FLOPs")

    ok = table[table["within_budget"]]
    lines = [f"# interp scale: N = {n} puzzles, seed {args.seed}, budget {args.budget} passes "
             f"(a pass = {base} segments), depth <= {p['depth']}, k <= {p['k']}", "",
             "Intervals: Wilson 95%. Rows: weights strategy rule halting depth k.", "```"]
    for w in dict.fromkeys(table["weights"]):
        t = ok[ok["weights"] == w]
        plain = t[(t["k"] == 1) & (t["depth"] == min(base, p["depth"])) & (t["halting"] == "off") & (t["rule"] == "majority")]
        for r in plain.head(1).itertuples():
            lines.append(f"{w:4} plain model (k=1, depth {r.depth}, halting off)      {fmt(r)}")
        for s in dict.fromkeys(t["strategy"]):
            lf = t[(t["strategy"] == s) & (~t["uses_label"])].sort_values(["accuracy", "flops"], ascending=[False, True])
            for r in lf.head(1).itertuples():
                lines.append(f"{w:4} best {s:9} {r.rule:17} {r.halting:11} d={r.depth:<3} k={r.k:<3} {fmt(r)}")
            orc = t[(t["strategy"] == s) & t["uses_label"]].sort_values("accuracy", ascending=False)
            for r in orc.head(1).itertuples():
                lines.append(f"{w:4} ceiling {s:6} oracle pass@k     {r.halting:11} d={r.depth:<3} k={r.k:<3} {fmt(r)}")
    lines += ["```", "", "Pareto front (label-free, within budget):", "```"]
    for r in front.itertuples():
        lines.append(f"{r.weights:4} {r.strategy:9} {r.rule:17} {r.halting:11} d={r.depth:<3} k={r.k:<3} {fmt(r)}")
    lines.append("```")
    return "\n".join(lines) + "\n"


def cmd_scale(args: argparse.Namespace) -> int:
    res = run_scale(args)
    print(res["summary"])
    print(f"wrote {res['out']}/scaling.csv, pareto.csv, scaling.html, pareto.png, depth.png, summary.md, provenance.json")
    return 0


def add_scale_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("scale", help="test-time compute at equal cost: depth x breadth x selection rule vs FLOPs",
                              epilog=examples("interp scale --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/qqwing_expert.sdm "
                                              "--limit 16 --budget 4 --out out/scale"))
    add_ckpt_option(p, repeat=True, help="checkpoint (repeat for the bootstrap strategy; the first is used by the others)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=nonempty_str, help="dataset directory (training/test splits as written by the data builders)")
    add_puzzle_file_option(src)
    p.add_argument("--split", type=nonempty_str, default="test", help="split of --data")
    add_task_option(p)
    add_limit_option(p)
    p.add_argument("--sample", type=positive_int, help="a seed-fixed random subset of this many of the (first --limit) "
                                                       "puzzles (seed --seed)")
    p.add_argument("--budget", type=positive_int, required=True,
                   help="passes per puzzle (a pass = the model's halt_max_steps segments); k x depth must fit it")
    p.add_argument("--depth", type=positive_int, help=f"deepest depth in segments (default 2 x halt_max_steps; cap {DEPTH_CAP})")
    p.add_argument("--k", type=positive_int, help=f"largest breadth: candidates per puzzle and strategy (default: what "
                                                  f"the budget pays at --depth; cap {K_CAP})")
    p.add_argument("--strategies", type=nonempty_str, default="aug,ptrm,eqr", help=f"comma-separated from {', '.join(STRATEGIES)}")
    p.add_argument("--rules", type=nonempty_str, help=f"comma-separated from {', '.join(RULES)} (default all; without a trained halting "
                                   "head all but q_head and weighted_majority)")
    p.add_argument("--halting", type=nonempty_str, help=f"comma-separated from {', '.join(HALTING)} (default all; without a trained "
                                     "halting head off,fixed_point)")
    p.add_argument("--tol", type=positive_float, default=1e-3, help="fixed-point halting: residual below this")
    p.add_argument("--noise", type=nonneg_float, default=0.05, help="PTRM: latent noise relative to the state rms")
    p.add_argument("--stab-noise", type=nonneg_float, default=0.1, help="stability rule: re-noising scale")
    p.add_argument("--topk-frac", type=probability, default=0.25, help="residual_topk: share of candidates that vote")
    p.add_argument("--preset", type=nonempty_str, default="random", help="aug perturbations: sudoku random|cyclic|digits|geometric; "
                                                      "maze dihedral|dihedral+swap|swap")
    p.add_argument("--weights", choices=WEIGHTS, default="both",
                   help="both (EMA and raw each evaluated where the file has both, else its one set), auto (EMA "
                        "when the file has it), ema, raw")
    p.add_argument("--chunk", type=positive_int, default=32, help="puzzles per saved chunk (the resume unit)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    add_device_option(p)
    add_threads_option(p)
    p.add_argument("--out", type=nonempty_str, required=True, help="output directory (rerun the same command to resume)")
    add_plotly(p)
    add_quiet(p)
    p.set_defaults(func=cmd_scale)
    return p
