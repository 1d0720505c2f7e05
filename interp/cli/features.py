"""``interp features``: a dictionary of features across the steps of a recursion, evaluated and drawn as feature pages.

    interp features --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/generated_moderate.sdm --limit 64 --out out/features
    interp features traces/run100 --kind sae --features 256 --out out/features-sae      # from a trace directory
    interp features --ckpt zoo/trm-sudoku9 --puzzle-file F --dictionary out/features/dictionary --out out/eval

Trains a crosscoder over the steps (``--kind crosscoder``, ``probes.crosscoder``) or one SAE on the states
pooled over steps (``--kind sae``), or evaluates a saved dictionary (``--dictionary``, ours or SAELens-format),
on one state (default the answer state) of the puzzles; with a crosscoder it also trains the per-step SAE
baseline (one SAE per step) and compares them. Writes ``dictionary/`` (SAELens layout, ``probes.sae_files``),
``features.csv`` (per feature: label, step profile, firing), ``comparison.csv``, ``summary.md``,
``features.html`` (feature pages) and ``viewer.html`` (the step viewer; clicking a cell opens its top
features) to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from common.cli_format import examples
from common.cli_options import (
    CKPT_HELP,
    add_limit_option,
    add_plotly,
    add_quiet,
    add_task_option,
    add_threads_option,
    set_threads,
    show_progress,
)
from common.cli_types import bounded_float, bounded_int, int_list, nonempty_str, nonneg_float, nonneg_int, positive_int
from interp.cli.common import add_puzzle_source

MAX_FEATURES = 65536


def _source(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(trace, model or None, task name) from a trace directory or from --ckpt and puzzles."""
    from interp.cli.common import checkpoint_task, load_model

    if args.trace:
        from interp.tracing.store import load_trace

        if args.puzzle or args.puzzle_file:
            raise ValueError("give a trace directory or --puzzle/--puzzle-file, not both")
        tr = load_trace(args.trace)
        model = None
        ckpt = args.ckpt or _checkpoint_name(tr.meta.get("checkpoint"))
        if ckpt and (args.ckpt or Path(str(ckpt)).exists()):
            model, _ = load_model(str(ckpt))
        task = (tr.meta.get("task") or {}).get("name")
        return tr, model, task
    if not args.ckpt or not (args.puzzle or args.puzzle_file):
        raise ValueError("give a trace directory, or --ckpt with --puzzle or --puzzle-file")
    from tasks.puzzles import read_puzzles

    task = checkpoint_task(args.ckpt, args.task, command="features")
    batch = read_puzzles(task, args.puzzle, args.puzzle_file, args.limit)
    from interp.tracing.tracer import trace

    model, _ = load_model(args.ckpt)
    state = args.state or "answer"
    tr = trace(model, batch.inputs, batch.labels, states=[state], confidence=False, progress=show_progress(args),
               task={"name": task.name, "grid": list(task.grid) if task.grid else None}, checkpoint=args.ckpt)
    return tr, model, task.name


def _states(tr: Any, state: str, limit: int | None) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(the trace of the puzzles with states, states [N, T, L, D], trace steps [T], inputs [N, L], predictions at
    those steps [N, T, L])."""
    from probes.sae_features import sae_inputs_from_trace

    name = tr.resolve_state(state)
    if name not in tr.stored_states:
        raise ValueError(f"the trace holds no full states of {name!r} (stored: {', '.join(tr.stored_states) or 'none'}); "
                         f"trace with --states {name}")
    keep = np.asarray(tr.state_index) if hasattr(tr, "state_index") else np.arange(tr.n_puzzles)
    keep = keep[:limit] if limit else keep
    sub = tr.select(keep) if len(keep) != tr.n_puzzles else tr
    states, steps = sae_inputs_from_trace(sub, name)
    return sub, states, np.asarray(steps), sub.inputs, sub.predictions[:, steps]


def _checkpoint_name(ckpt: Any) -> str:
    """The checkpoint path a trace records (a dict with ``path`` or a plain string), or ``""``."""
    if isinstance(ckpt, dict):
        ckpt = ckpt.get("path")
    return str(ckpt or "")


def state_hooks(hooks: list[str], state: str) -> list[str]:
    """Per step, the hook that writes ``state`` among the step's hooks joined by ``|`` (HRM-LM steps write
    ``hook_gate_fast|hook_fast``); a step without one keeps its joined name."""
    out = []
    for h in hooks:
        names = h.split("|")
        out.append(next((n for n in names if n.endswith(f"hook_{state}")), h))
    return out


def _check_features(wanted: list[int] | None, width: int) -> None:
    bad = [f for f in (wanted or []) if not 0 <= f < width]
    if bad:
        raise ValueError(f"--feature {bad[0]} is out of range: the dictionary has {width} features (0..{width - 1})")


def cmd_features(args: argparse.Namespace) -> int:
    from common.outputs import check_replaceable

    out = Path(args.out)
    check_replaceable(out, what="'interp features' output")
    if args.dictionary is None:
        _check_features(args.feature, args.features)
    if args.topk is not None and args.topk > args.features:
        raise ValueError(f"--topk {args.topk} is larger than --features {args.features}")
    cfg = None
    if args.dictionary is not None:
        from probes.sae_files import read_cfg

        cfg = read_cfg(args.dictionary)  # a bad folder fails before any model is run
        _check_features(args.feature, cfg["d_sae"])
    set_threads(args)
    from interp.cli.features_text import is_text_source, text_source, write_text_outputs

    text = is_text_source(args)
    if text:
        tr, model, decode, folder = text_source(args)
        task = "text"
    else:
        tr, model, task = _source(args)
    state = args.state or tr.answer_state
    sub, states, steps, inputs, preds = _states(tr, state, args.limit if args.trace else None)
    N, T, L, D = states.shape
    hooks = state_hooks([str(h) for h in tr.steps["hooks"]], tr.resolve_state(state))
    info = {"hook_names": [hooks[s] for s in steps], "steps": steps.tolist(), "state": tr.resolve_state(state),
            "model_sha256": tr.meta.get("model_sha256"), "model_name": _checkpoint_name(tr.meta.get("checkpoint"))}
    from interp.cli.features_run import evaluate_dictionary, train_dictionary, write_outputs

    if cfg is not None:
        from probes.sae_files import check_dictionary, load_dictionary

        matched = check_dictionary(cfg, D, hooks, tr.meta.get("model_sha256"), where=str(args.dictionary))
        dictionary, _ = load_dictionary(args.dictionary)
        result = evaluate_dictionary(dictionary, states, steps, matched)
    else:
        result = train_dictionary(args, states, progress=show_progress(args))
    print(f"{N} {'texts' if text else 'puzzles'} x {T} steps x {L} {'positions' if text else 'cells'}, state {info['state']} (width {D}); "
          f"{result['kind']}: {result['width']} features, variance explained {result['stats']['fve']:.3f}, "
          f"{result['stats']['l0']:.1f} active per sample", file=sys.stderr)
    if text:
        write_text_outputs(args, out, model, decode, info, result, steps, inputs)
    else:
        write_outputs(args, out, sub, model, task, info, result, steps, inputs, preds)
    print((out / "summary.md").read_text())
    print(f"written to {out}: features.html (feature pages), {'' if text else 'viewer.html, '}features.csv, summary.md, "
          "dictionary/")
    return 0


def add_features_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features", help="crosscoder or SAE features across steps: train/evaluate, feature pages, SAELens files",
        description=__doc__.split("\n\n")[0],
        epilog=examples("interp features --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/generated_moderate.sdm "
                        "--limit 64 --out out/features",
                        "interp features traces/run100 --kind sae --out out/features-sae",
                        "interp features --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/generated_moderate.sdm "
                        "--dictionary out/features/dictionary --out out/features-eval",
                        "interp features --ckpt zoo/hrm-lm-pydoc --text-file README.md --limit 16 --out out/features-lm"))
    p.add_argument("trace", nargs="?", type=nonempty_str, help="a trace directory with full states of --state (instead of --ckpt and puzzles)")
    p.add_argument("--ckpt", type=nonempty_str, help=CKPT_HELP + " (with a trace directory: the model for the answer-head push)")
    src = add_puzzle_source(p)
    src.add_argument("--text", type=nonempty_str, help="a language model: one text (tokenised with the checkpoint's tokenizer)")
    src.add_argument("--text-file", type=nonempty_str, help="a language model: a UTF-8 text file, cut into windows of "
                     "--context tokens (at most --limit)")
    src.add_argument("--tokens", type=nonempty_str, help="a language model: token ids separated by commas or spaces")
    add_task_option(p)
    add_limit_option(p)
    p.add_argument("--context", type=bounded_int(2, 1 << 16), default=64,
                   help="texts: tokens per window (at most the model's sequence length)")
    p.add_argument("--push-among", choices=["seen", "all"], default="seen",
                   help="texts: rank the tokens a feature pushes among those of the texts (seen) or the whole vocabulary")
    p.add_argument("--state", type=nonempty_str, help="the state to read (default: the answer state, e.g. TRM y, HRM z_H)")
    p.add_argument("--kind", choices=["crosscoder", "sae"], default="crosscoder",
                   help="crosscoder: one latent per (puzzle, cell) over all steps, per-step decoders; "
                        "sae: one SAE on the states pooled over steps")
    p.add_argument("--dictionary", type=nonempty_str, help="evaluate this saved dictionary folder (ours or SAELens cfg.json + "
                   "sae_weights.safetensors) instead of training one")
    p.add_argument("--features", type=bounded_int(1, MAX_FEATURES), default=256, help="dictionary width")
    p.add_argument("--l1", type=nonneg_float, default=0.05, help="L1 coefficient (ignored with --topk)")
    p.add_argument("--topk", type=bounded_int(1, MAX_FEATURES), help="TopK activation with this k instead of L1")
    p.add_argument("--train-steps", type=bounded_int(1, 1_000_000), default=2000, help="Adam steps")
    p.add_argument("--batch-size", type=bounded_int(2, 1 << 20), default=1024, help="samples per Adam step")
    p.add_argument("--lr", type=bounded_float(0.0, 1.0, lo_open=True), default=3e-3, help="Adam learning rate")
    p.add_argument("--no-compare", action="store_true", help="crosscoder: skip the per-step SAE baseline")
    p.add_argument("--feature", type=int_list(0, MAX_FEATURES), help="feature pages only for these indices (comma list, "
                   "ranges a-b); default: the --pages most active features")
    p.add_argument("--pages", type=bounded_int(1, 4096), default=64, help="how many features get a page")
    p.add_argument("--top", type=bounded_int(1, 64), default=8, help="top-activating examples per feature page")
    p.add_argument("--viewer-puzzles", type=positive_int, default=8,
                   help="puzzles in viewer.html (their cells link to their top features)")
    p.add_argument("--present", type=bounded_float(0.0, 1.0, lo_open=True), default=0.25,
                   help="a feature is present at a step when its decoder norm (crosscoder) or firing rate (sae) there "
                        "is at least this fraction of its largest")
    p.add_argument("--seed", type=nonneg_int, default=0)
    add_threads_option(p)
    add_plotly(p)
    p.add_argument("--out", type=nonempty_str, default="out/features", help="output directory")
    add_quiet(p)
    p.set_defaults(func=cmd_features)
