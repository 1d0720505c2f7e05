"""``interp attribute``: which state of which cell at which step causes the answer (patching and attribution).

    interp attribute --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/generated_moderate.sdm --limit 1 \\
        --corrupt change_given --method atp,ig,patch --segments 2 --out out/attribute

Writes ``attribution.csv`` (``puzzle, method, segment, step, state, position, score, hook``: one row per unit
and method), ``pairs.csv`` (the metric on both runs, the corruption), ``comparison.csv`` (when exact patching
ran beside an estimate), ``settings.json`` and ``attribution.html`` (the grid at each step coloured by score,
and a step x position heatmap) to ``--out``, and prints the top units and the peer share per step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from common.cli_format import examples
from common.cli_types import bounded_float, bounded_int, cap_note, nonempty_str, path_str, seed_int, segments_int
from common.cli_options import (
    add_ckpt_option,
    add_device_option,
    add_limit_option,
    add_quiet,
    add_task_option,
    add_threads_option,
    set_threads,
    show_progress,
)
from interp.cli.common import add_puzzle_source, checkpoint_task, load_model


def parse_cell(text: str | None, rows: int, cols: int) -> str | int | None:
    """``blank``/``last``, a 0-based index, or ``rRcC`` (1-based row and column) -> what ``make_pairs`` takes."""
    if text is None or text in ("blank", "last"):
        return text
    t = text.strip().lower()
    if t.startswith("r") and "c" in t:
        try:
            r, c = (int(v) for v in t[1:].split("c", 1))
        except ValueError:
            raise ValueError(f"cell must be an index, rRcC, 'blank' or 'last', got {text!r}") from None
        if not (1 <= r <= rows and 1 <= c <= cols):
            raise ValueError(f"cell {text} is outside the {rows}x{cols} grid")
        return (r - 1) * cols + (c - 1)
    try:
        i = int(t)
    except ValueError:
        raise ValueError(f"cell must be an index, rRcC, 'blank' or 'last', got {text!r}") from None
    if not 0 <= i < rows * cols:
        raise ValueError(f"cell {i} is outside the {rows}x{cols} grid (0..{rows * cols - 1})")
    return i


def _methods(text: str) -> list[str]:
    from interp.causal.attribute import METHODS

    out = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in out if m not in METHODS]
    if bad or not out:
        raise ValueError(f"--method takes a comma list of {', '.join(METHODS)}, got {text!r}")
    return out


def _puzzle_pairs(args: argparse.Namespace):
    from interp.causal.pairs import make_pairs
    from tasks.puzzles import read_puzzles

    task = checkpoint_task(args.ckpt, args.task, command="attribute")
    batch = read_puzzles(task, args.puzzle, args.puzzle_file, args.limit)
    rows, cols = task.grid or (1, batch.inputs.shape[1])
    target = parse_cell(args.target, rows, cols)
    cell = parse_cell(args.cell, rows, cols) if args.cell is not None else None
    corrupt, kind = None, args.corrupt
    if args.corrupt_puzzle or args.corrupt_file:
        other = read_puzzles(task, args.corrupt_puzzle, args.corrupt_file, args.limit)
        if other.inputs.shape != batch.inputs.shape:
            raise ValueError(f"--corrupt-* gives {other.inputs.shape[0]} puzzle(s) for {batch.inputs.shape[0]} clean one(s)")
        corrupt, kind = other.inputs, "user"
    kind = kind or ("change_given" if task.name == "sudoku" else "swap")
    pairs = make_pairs(batch.inputs, batch.labels, kind, task.name, target=target, seed=args.seed, corrupt=corrupt,
                       cell=cell if isinstance(cell, int) else None)
    return pairs, task, batch.names


def _text_pairs(args: argparse.Namespace, model, meta):
    from interp.causal.pairs import make_pairs
    from interp.cli.text_trace import parse_tokens, text_tokenizer

    encode, _ = text_tokenizer(model, meta, args.ckpt)
    ids = parse_tokens(args.tokens) if args.tokens else encode(args.text)
    if len(ids) < 2:
        raise ValueError("the text must have at least two tokens (the last one is the answer)")
    x, answer = ids[:-1][None], ids[-1]
    labels = np.full_like(x, -100)
    labels[0, -1] = answer
    corrupt = None
    if args.corrupt_text:
        other = encode(args.corrupt_text)
        if len(other) != len(ids):
            raise ValueError(f"--corrupt-text has {len(other)} tokens, the text {len(ids)}: they must match")
        corrupt = other[:-1][None]
    pos = parse_cell(args.cell, 1, x.shape[1]) if args.cell is not None else None
    kind = "user" if corrupt is not None else (args.corrupt or "substitute")
    return make_pairs(x, labels, kind, "text", target=parse_cell(args.target, 1, x.shape[1]) if args.target else None,
                      seed=args.seed, corrupt=corrupt, vocab_size=model.cfg.vocab_size,
                      cell=pos if isinstance(pos, int) else None)


def cmd_attribute(args: argparse.Namespace) -> int:
    """One process, or ``torchrun --nproc_per_node=N -m interp attribute ...``: the patching chunks are dealt
    to the ranks (gloo on CPU, nccl with one GPU per rank) and rank 0 alone writes and prints."""
    import os

    methods = _methods(args.method)
    text_mode = bool(args.text or args.tokens)
    if not text_mode and not (args.puzzle or args.puzzle_file):
        raise ValueError("one of --puzzle, --puzzle-file, --text or --tokens is required")
    if text_mode:
        model, meta = load_model(args.ckpt)
        pairs, task, names = _text_pairs(args, model, meta), None, ["text"]
    else:
        pairs, task, names = _puzzle_pairs(args)
    from training.distributed import init_distributed, pick_device, shutdown

    device = pick_device(args.device, int(os.environ.get("LOCAL_RANK", "0")))
    info = init_distributed(device)
    try:
        if info.is_main:
            out = _claim_out(Path(args.out))
        if info.enabled:
            import torch.distributed as dist

            dist.barrier()
        out = Path(args.out)
        return _run(args, methods, pairs, task, names, out, device, info.is_main)
    finally:
        if info.enabled:
            shutdown()


def _run(args, methods, pairs, task, names, out: Path, device, main_rank: bool) -> int:
    from interp.causal.attribute import attribute
    from interp.causal.summary import compare_methods, peer_share_by_step, top_units

    set_threads(args)
    model, _ = load_model(args.ckpt)
    model.to(device)
    res = attribute(model, pairs, methods, metric=args.metric, states=args.states.split(",") if args.states else None,
                    n_segments=args.segments, direction=args.direction, ig_steps=args.ig_steps,
                    verify_top=args.verify_top,
                    patch_dir=out / "patch_chunks" if "patch" in methods else None,
                    progress=show_progress(args) and main_rank)
    if not main_rank:
        return 0
    from common.io import atomic_write_json, atomic_write_text

    atomic_write_text(out / "attribution.csv", res.scores.to_csv(index=False))
    atomic_write_text(out / "pairs.csv", res.pairs.to_csv(index=False))
    settings = {**res.settings, "checkpoint": args.ckpt, "corruption": pairs.kind, "target": args.target,
                "puzzles": names[:len(pairs)]}
    atomic_write_json(out / "settings.json", settings)
    print(f"{len(pairs)} pair(s), {res.pairs['n_units'].iloc[0]} units each, methods {', '.join(methods)}; "
          f"metric {args.metric} (receiving run {res.pairs['metric_receiving'].mean():.3f}, "
          f"source run {res.pairs['metric_source'].mean():.3f})")
    for method in methods:
        print(f"top units by {method}:")
        print(top_units(res.scores, 10, method).drop(columns="method").to_string(index=False))
    if "patch" in methods and len(methods) > 1:
        cmp = compare_methods(res.scores)
        atomic_write_text(out / "comparison.csv", cmp.to_csv(index=False))
        print("against exact patching (units that matter = top 10% by |patch effect|):")
        print(cmp.groupby("method")[["spearman_all", "spearman_top", "topk_overlap"]].mean().round(3).to_string())
    if task is not None and task.name == "sudoku":
        focus = _focus_cells(pairs)
        if focus:
            share = peer_share_by_step(res.scores, focus, pairs.clean.shape[1])
            atomic_write_text(out / "peer_share.csv", share.to_csv(index=False))
            print("share of |score| on the Sudoku peers of the focus cell, per step (uniform = 0.25):")
            print(share.pivot(index="step", columns="method", values="peer_share").round(3).to_string())
    from interp.views.attribution_viewer import write_attribution_viewer

    try:
        path = write_attribution_viewer(res.scores, pairs, out / "attribution.html", task=task)
        print(f"viewer written to {path}")
    except Exception as e:  # noqa: BLE001 - the tables are already safe on disk
        print(f"warning: could not write the attribution viewer ({type(e).__name__}: {e})", file=sys.stderr)
    from common.outputs import record_outputs

    record_outputs(out, {"command": "attribute"})  # every file written, with its SHA-256
    print(f"written to {out}: attribution.csv, pairs.csv, settings.json")
    return 0


def _focus_cells(pairs) -> dict[int, int]:
    """Per puzzle, the cell whose peers the summary looks at: the target cell, else the one corrupted cell."""
    out = {}
    for i, changed in enumerate(pairs.changed_positions()):
        tgt = np.flatnonzero(pairs.targets[i])
        if len(tgt) == 1:
            out[i] = int(tgt[0])
        elif len(changed) == 1:
            out[i] = int(changed[0])
    return out


OUTPUTS = ["attribution.csv", "pairs.csv", "settings.json", "comparison.csv", "peer_share.csv", "attribution.html"]


def _claim_out(out: Path) -> Path:
    """``out`` if it is new, empty or an earlier ``interp attribute`` output (resumed or replaced); marks it ours."""
    from common.io import TOOL_MARK, ensure_out_not_symlink, read_json
    from common.outputs import check_replaceable, listed_files, record_outputs

    out = ensure_out_not_symlink(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"refusing to write to {out}: it exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        try:
            prov = read_json(out / "provenance.json", max_bytes=1 << 20)
        except (OSError, ValueError):
            prov = None
        if not (isinstance(prov, dict) and prov.get("tool") == TOOL_MARK and prov.get("command") == "attribute"):
            raise ValueError(f"refusing to write to {out}: it is not empty and is no earlier 'interp attribute' "
                             "output; choose another --out")
    # every file must be one this command recorded, unchanged; patch chunks are resumable (their store checks them)
    chunks = {f: None for f in listed_files(out) if f.startswith("patch_chunks/")} if out.is_dir() else {}
    check_replaceable(out, ValueError, "'interp attribute' output", known=chunks)
    out.mkdir(parents=True, exist_ok=True)
    record_outputs(out, {"command": "attribute"}, known=chunks)
    return out


def add_attribute_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "attribute", help="activation patching and attribution per (step, state, cell) between clean/corrupted runs",
        description=__doc__.split("\n\n")[0],
        epilog=examples("interp attribute --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/generated_moderate.sdm "
                        "--limit 1 --method atp,ig,patch --segments 2 --out out/attribute",
                        "interp attribute --ckpt zoo/hrm-lm-pydoc --text 'def main():' --method atp,patch "
                        "--out out/attribute-lm"))
    add_ckpt_option(p)
    src = add_puzzle_source(p)  # not required: --text/--tokens are the alternatives (checked in the command)
    src.add_argument("--text", type=nonempty_str, help="language models: a text whose last token is the answer")
    src.add_argument("--tokens", type=nonempty_str, help="language models: token ids (comma/space separated); the last is the answer")
    add_task_option(p)
    add_limit_option(p)
    p.add_argument("--segments", type=segments_int,
                   help=f"segments to run; the metric reads the last (default: the model's depth){cap_note(segments_int)}")
    p.add_argument("--corrupt", choices=["change_given", "blank_given", "swap", "substitute"],
                   help="built-in corruption (default: change_given for Sudoku, swap for other puzzles, "
                        "substitute for text)")
    p.add_argument("--corrupt-puzzle", type=nonempty_str, help="user pair: the corrupted puzzle (with --puzzle)")
    p.add_argument("--corrupt-file", type=path_str, help="user pairs: corrupted puzzles, one per clean puzzle (with --puzzle-file)")
    p.add_argument("--corrupt-text", type=nonempty_str, help="user pair for --text: a text with as many tokens")
    p.add_argument("--cell", type=nonempty_str, help="the given (puzzles) or token position (text) to corrupt: index or rRcC")
    p.add_argument("--target", type=nonempty_str, help="where the metric reads: 'blank' (every blank cell, puzzles' default), "
                   "'last' (text default), a cell index or rRcC")
    p.add_argument("--method", type=nonempty_str, default="atp", help="comma list of atp (attribution patching), ig (integrated "
                   "gradients), verify (AtP, then its top --verify-top units patched exactly), patch (exhaustive "
                   "activation patching)")
    p.add_argument("--metric", default="logit_diff", choices=["logit_diff", "logit_diff_max", "cross_entropy", "exact"])
    p.add_argument("--states", type=nonempty_str, help="comma list of states (default all, gates included), e.g. z_H,z_L or y")
    p.add_argument("--direction", choices=["noising", "denoising"], default="noising",
                   help="noising: patch corrupted values into the clean run; denoising: the reverse")
    p.add_argument("--ig-steps", type=bounded_int(1, 1024), default=5, help="interpolation points of integrated gradients")
    p.add_argument("--verify-top", type=bounded_float(0.0, 1.0, lo_open=True, name="fraction in (0, 1]"), default=0.10, help="verify: the fraction of units (largest |AtP|) "
                   "patched exactly")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the built-in corruptions")
    add_threads_option(p)
    add_device_option(p)
    p.add_argument("--out", type=path_str, default="out/attribute", help="output directory")
    add_quiet(p)
    p.set_defaults(func=cmd_attribute)
