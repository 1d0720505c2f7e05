"""``interp steer``: add a direction at chosen steps (or clamp decided cells) and count failures turned into solves,
beside same-norm random controls.

    interp steer --ckpt zoo/hrm-sudoku9-hard --puzzle-file data/sudoku/top1465.sdm --limit 40 --out out/steer

Writes ``steering.csv`` (one row per direction x setting: ``direction, control, kind, state, segment, step,
window, scale, norm, n, solved_before, solved_after, rate_after, after_lo, after_hi`` (Wilson 95%), ``flipped,
broken, metric_before, metric_after, cells_changed, critical_after, cells_steered``; controls have
``control = 1``), ``puzzles.csv`` (per puzzle and setting), ``settings.json`` (what was fitted: split sizes,
norms, the SAE's fit and chosen feature) and ``provenance.json`` to ``--out``. For language models
(HRM-LM, HRM-Text) ``--puzzle-file`` is a text file cut into windows of ``--context`` tokens; "solved" means
the greedy next token after the window is the true one.

``--attribution --sae FOLDER`` steers nothing: it writes ``attribution.csv``, gradient x activation of every
feature of the SAE at every update of ``--state`` whose hook the SAE was trained on, and every cell (``puzzle, segment, step, hook, cell, feature,
activation, attribution``; :mod:`interp.steering.feature_attribution`), and prints the largest rows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from common.cli_format import examples
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
from common.cli_types import (
    bounded_float,
    bounded_int,
    choice_list,
    float_list,
    int_list,
    nonempty_str,
    nonneg_int,
    open_probability,
    path_str,
    positive_int,
)
from interp.cli.common import add_puzzle_source, checkpoint_task, load_model

OUTPUTS = ["steering.csv", "puzzles.csv", "settings.json"]
ATTRIBUTION_OUTPUTS = ["attribution.csv"]
KINDS = ("mean_diff", "sae", "probe", "clamp", "user")  # interp.steering.experiment.KINDS
KINDS_HELP = ", ".join(KINDS)


def _is_lm(model) -> bool:
    from interp.tracing.schema import is_lm_model, model_family

    return is_lm_model(model) or model_family(model) == "hrm_text"


def _text_windows(args, model, meta) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows of ``--context`` tokens of the text file; the label is the next token (last position)."""
    from common.untrusted import read_bytes_limited
    from interp.cli.text_trace import text_tokenizer

    if not args.puzzle_file:
        raise ValueError("a language model steers on a text file: pass --puzzle-file FILE.txt")
    text = read_bytes_limited(args.puzzle_file, 64 << 20).decode("utf-8", errors="replace")
    encode, _ = text_tokenizer(model, meta, args.ckpt)
    ids = np.asarray(encode(text), dtype=np.int64)
    ctx = min(int(args.context), int(model.cfg.seq_len))
    n = (len(ids) - 1) // (ctx + 1)
    if args.limit:
        n = min(n, args.limit)
    if n < 1:
        raise ValueError(f"{args.puzzle_file}: {len(ids)} tokens make no window of {ctx} tokens plus the next one")
    w = ids[: n * (ctx + 1)].reshape(n, ctx + 1)
    labels = np.full((n, ctx), -100, dtype=np.int64)
    labels[:, -1] = w[:, -1]
    return w[:, :-1].copy(), labels


def _inputs(args) -> tuple[np.ndarray, np.ndarray, object, dict]:
    model, meta = load_model(args.ckpt)
    if _is_lm(model):
        x, y = _text_windows(args, model, meta)
        return x, y, model, meta
    from tasks.puzzles import read_puzzles

    task = checkpoint_task(args.ckpt, args.task, command="steer")
    batch = read_puzzles(task, args.puzzle, args.puzzle_file, args.limit)
    if batch.labels is None:
        raise ValueError("the puzzles have no known solutions to score")
    return np.asarray(batch.inputs), np.asarray(batch.labels), model, meta


def _user_vector(path: str):
    """A vector from ``.npy`` (no pickle) or a safetensors file holding one tensor."""
    from common.untrusted import regular_file
    from interp.steering.directions import DirectionError

    p = regular_file(path, 64 << 20, DirectionError)
    if p.suffix == ".npy":
        try:
            v = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise DirectionError(f"{p}: not a numeric .npy array ({e})") from None
    else:
        from safetensors.numpy import load_file

        try:
            t = load_file(str(p))
        except Exception as e:  # noqa: BLE001 - an untrusted file's parse failure is one line
            raise DirectionError(f"{p}: not a .npy or safetensors file ({type(e).__name__})") from None
        if len(t) != 1:
            raise DirectionError(f"{p}: a vector file holds one tensor, got {len(t)}")
        v = next(iter(t.values()))
    if not np.issubdtype(np.asarray(v).dtype, np.number):
        raise DirectionError(f"{p}: not a numeric vector")
    return np.asarray(v, dtype=np.float32).reshape(-1) if np.ndim(v) <= 1 else np.asarray(v)


def _dictionary(args, model, state: str, width: int, directions: list[str], user):
    """``--sae FOLDER`` (SAELens layout, ``probes.sae_files``) checked against the model: hook, width, hash. An SAE
    is used as is; a crosscoder needs ``--feature`` and steers with that feature's decoder row at its first step
    slot whose hook updates ``state`` (it stands in for the ``sae`` kind). Returns (sae, user, directions, the
    names of the model's hooks the dictionary was trained on)."""
    from interp.steering.directions import DirectionError, crosscoder_feature
    from interp.tracing.model_hash import model_sha256
    from models.hook_names import hook_state
    from probes.sae_files import DictionaryError, load_for_model

    hooks = [n for n in model.hook_names() if hook_state(n) == state]
    try:
        module, cfg, matched = load_for_model(args.sae, width, hooks, model_sha256(model), state)
    except DictionaryError as e:
        raise DirectionError(str(e)) from None
    n_feat = int(cfg["d_sae"])
    if args.feature is not None and not 0 <= args.feature < n_feat:
        raise DirectionError(f"unknown feature {args.feature}: the dictionary has features 0..{n_feat - 1}")
    if cfg["architecture"] != "step_crosscoder":
        return module.eval(), user, directions, [hooks[i] for i in matched]
    if args.feature is None:
        raise DirectionError(f"{args.sae}: a crosscoder steers with one feature: pass --feature I")
    if "user" in directions:
        raise DirectionError("--sae with a crosscoder and --direction user cannot be combined")
    slots = _crosscoder_slots(cfg, hooks, matched)
    slot, hook = slots[0]
    d = crosscoder_feature(module, args.feature, slot, state, hook)
    return None, d, ["user" if k == "sae" else k for k in directions], [hooks[i] for i in matched]


def _crosscoder_slots(cfg: dict, hooks: list[str], matched: list[int]) -> list[tuple[int, str]]:
    """(crosscoder step slot, hook name) of the model's hooks the crosscoder was trained on, in step order."""
    names = cfg["metadata"].get("recurse_interp", {}).get("hook_names") or []
    out = [(names.index(hooks[i]), hooks[i]) for i in matched if hooks[i] in names]
    if not out:  # no per-slot names recorded: the matched hooks in order, one per slot
        out = [(j, hooks[i]) for j, i in enumerate(matched[: int(cfg["n_steps"])])]
    return out


def _attribution(args: argparse.Namespace, out: Path) -> int:
    """``--attribution``: gradient x activation of every feature of ``--sae`` at every update of the state, every
    cell, written to ``attribution.csv`` (active entries); the largest ``|attribution|`` rows are printed."""
    from common.io import TOOL_MARK, atomic_write_json, atomic_write_text
    from interp.causal.runner import SegmentRunner
    from interp.steering.directions import DirectionError
    from interp.steering.feature_attribution import feature_attribution, sae_dictionary
    from interp.steering.run import resolve_state
    from training.distributed import pick_device

    if not args.sae:
        raise ValueError("--attribution needs a dictionary: pass --sae FOLDER (an SAE written by interp features)")
    set_threads(args)
    x, y, model, _ = _inputs(args)
    state = resolve_state(SegmentRunner(model, args.segments), args.state)
    sae, _, _, trained_on = _dictionary(args, model, state, int(model.cfg.hidden_size), ["sae"], None)
    if sae is None:
        raise DirectionError(f"{args.sae}: --attribution reads an SAE; a crosscoder encodes all steps at once")
    model.to(pick_device(args.device))
    encode, decoder = sae_dictionary(sae.to(pick_device(args.device)))
    res = feature_attribution(model, x, y, encode, decoder, state=state, metric=args.metric,
                              n_segments=args.segments)
    table = res.frame().rename(columns={"position": "cell", "score": "attribution"})
    table = table[["puzzle", "segment", "step", "hook", "cell", "feature", "activation", "attribution"]]
    table = table[table["hook"].isin(trained_on)].reset_index(drop=True)  # only the steps the SAE was trained on
    atomic_write_text(out / "attribution.csv", table.to_csv(index=False))
    atomic_write_json(out / "provenance.json", {"tool": TOOL_MARK, "command": "steer --attribution",
                                                "files": ATTRIBUTION_OUTPUTS, "metric": args.metric,
                                                "checkpoint": args.ckpt, "dictionary": args.sae, "state": state})
    top = table.reindex(table["attribution"].abs().sort_values(ascending=False).index).head(args.top)
    n_upd = len(set(res.hooks) & set(trained_on))
    print(f"{len(x)} puzzle(s), {n_upd} update(s) of {state} the SAE was trained on, {len(table)} active (step, feature, cell) "
          f"entries; the {len(top)} largest |attribution| ({args.metric}):")
    print(top.round(4).to_string(index=False))
    print(f"written to {out}: {', '.join(ATTRIBUTION_OUTPUTS)}")
    return 0


def cmd_steer(args: argparse.Namespace) -> int:
    from common.io import TOOL_MARK, atomic_write_json, atomic_write_text, check_replaceable

    out = Path(args.out)
    check_replaceable(out, what="steering output")
    if args.attribution:
        return _attribution(args, out)
    if "user" in args.direction and not args.vector:
        raise ValueError("--direction user needs --vector FILE")
    if args.feature is not None and "sae" not in args.direction:
        raise ValueError("--feature picks an SAE feature: add 'sae' to --direction")
    set_threads(args)
    x, y, model, _ = _inputs(args)
    import torch

    from interp.causal.runner import SegmentRunner
    from interp.steering.directions import Direction, DirectionError, check_width
    from interp.steering.experiment import SteerSettings, steering_experiment
    from interp.steering.run import resolve_state
    from training.distributed import pick_device

    runner = SegmentRunner(model, args.segments)
    state = resolve_state(runner, args.state)
    width = int(model.cfg.hidden_size)
    user = None
    if args.vector:
        v = _user_vector(args.vector)
        if v.ndim != 1:
            raise DirectionError(f"{args.vector}: a direction is a vector [D], got shape {list(v.shape)}")
        user = Direction("user", torch.as_tensor(v), state, "user")
        check_width(user, width, state)
    sae, directions = None, list(args.direction)
    if args.sae:
        sae, user, directions, _ = _dictionary(args, model, state, width, directions, user)
    elif args.feature is not None and not 0 <= args.feature < args.sae_features:
        raise DirectionError(f"unknown feature {args.feature}: the dictionary has features 0..{args.sae_features - 1}")
    settings = SteerSettings(directions=directions, state=state, steps=args.steps, window=args.window,
                             scales=args.scale, controls=args.controls, mode=args.mode, cells=args.cells, fit_fraction=args.fit_fraction, on=args.on,
                             threshold=args.threshold, seed=args.seed, sae_features=args.sae_features,
                             sae_steps=args.sae_steps, feature=args.feature, batch_size=args.batch_size, user=user,
                             sae=sae)
    model.to(pick_device(args.device))
    res = steering_experiment(model, x, y, settings, n_segments=args.segments, progress=show_progress(args))
    info = {**res.info, "checkpoint": args.ckpt, "puzzle_file": args.puzzle_file, "limit": args.limit,
            "directions": args.direction, "scales": args.scale, "mode": args.mode, "window": args.window, "seed": args.seed,
            "fit": "the first fit_fraction of the puzzles fit the directions; the rest are evaluated (disjoint)",
            "fit_fraction": args.fit_fraction, "on": args.on, "threshold": args.threshold}
    atomic_write_text(out / "steering.csv", res.table.to_csv(index=False))
    atomic_write_text(out / "puzzles.csv", res.puzzles.to_csv(index=False))
    atomic_write_json(out / "settings.json", info)
    atomic_write_json(out / "provenance.json", {"tool": TOOL_MARK, "command": "steer", "files": OUTPUTS})
    print(f"{info['n_puzzles']} puzzles, {info['unsteered_solved']} solved unsteered; directions fitted on the first "
          f"{info['n_fit']} ({info['fit_solved']} solved), evaluated on {info['n_evaluated']} "
          f"{'failed ' if args.on == 'failed' else ''}puzzle(s) of the rest")
    if len(res.table):
        cols = ["direction", "control", "step", "scale", "n", "solved_before", "solved_after", "after_lo", "after_hi",
                "metric_after", "cells_changed"]
        print(res.table[cols].round(3).to_string(index=False))
    print(f"written to {out}: {', '.join(OUTPUTS)}")
    return 0


def add_steer_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "steer", help="steer with a direction at chosen steps (or clamp decided cells) vs same-norm random controls",
        description=__doc__.split("\n\n")[0],
        epilog=examples("interp steer --ckpt zoo/hrm-sudoku9-hard --puzzle-file data/sudoku/top1465.sdm --limit 40 "
                        "--out out/steer",
                        "interp steer --ckpt zoo/trm-sudoku9-hard --puzzle-file data/sudoku/top1465.sdm --limit 40 "
                        "--direction mean_diff --steps 27 --scale 0.25,1 --out out/steer-trm"))
    add_ckpt_option(p)
    add_puzzle_source(p, required=True, file_help="puzzles (.sdm/.txt, CSV, maze text); for a language model a text file")
    add_task_option(p)
    add_limit_option(p)
    p.add_argument("--segments", type=positive_int, help="segments (passes) to run (default: the model's depth)")
    p.add_argument("--direction", type=choice_list(KINDS), default=["mean_diff", "sae", "probe", "clamp"],
                   help=f"comma list of direction kinds: {KINDS_HELP} (user: --vector)")
    p.add_argument("--steps", type=int_list(0, 1_000_000), help="global steps (the trace's step axis) where steering "
                   "starts; each must update the steered state (default: its first update in the segments at 1/4 and "
                   "1/2 of the depth)")
    p.add_argument("--window", type=nonneg_int, default=0, help="updates of the state steered from each start step "
                   "(0 = every later update)")
    p.add_argument("--scale", type=float_list(bounded_float(-1000, 1000)), default=[0.25, 1.0],
                   help="comma list of scales; 1 adds a vector as long as the mean target-cell state")
    p.add_argument("--controls", type=bounded_int(1, 100), default=1,
                   help="random controls per setting (same norm, same puzzles, same cells; one run each)")
    p.add_argument("--mode", choices=["add", "ablate", "clamp"], default="add",
                   help="add scale * v; ablate the direction (remove its coefficient; --scale unused); clamp its "
                        "coefficient to --scale (clamp_decided always holds cells)")
    p.add_argument("--state", type=nonempty_str, default="answer", help="the steered state: answer, slow, fast or a state name")
    p.add_argument("--cells", choices=["auto", "targets", "all"], default="auto",
                   help="positions steered: targets (blank cells), all, or auto (targets; all for language models)")
    p.add_argument("--on", choices=["failed", "all"], default="failed",
                   help="evaluate the failed puzzles of the evaluation set, or all of them")
    p.add_argument("--fit-fraction", type=open_probability, default=0.5,
                   help="fraction of the puzzles (the first ones) that fit the directions; the rest are evaluated")
    p.add_argument("--threshold", type=bounded_float(0, 1, lo_open=True), default=0.9,
                   help="clamp: a cell is decided when its decoded answer has at least this probability")
    p.add_argument("--sae", type=path_str, help="a dictionary folder in the SAELens layout (cfg.json + "
                   "sae_weights.safetensors, as `interp features` writes it): an SAE, or a crosscoder with --feature "
                   "(its decoder row at its first step); checked against this model's hooks, width and hash; "
                   "default: an SAE is trained on the fit puzzles' states")
    p.add_argument("--feature", type=nonneg_int, help="the SAE feature to steer with (default: the one that best "
                   "separates solved from failed fit puzzles)")
    p.add_argument("--sae-features", type=bounded_int(2, 4096), default=64, help="features of the trained SAE")
    p.add_argument("--sae-steps", type=bounded_int(1, 100_000), default=800, help="Adam steps of the trained SAE")
    p.add_argument("--vector", type=path_str, help="direction kind user: a .npy or one-tensor safetensors file holding a vector [D]")
    p.add_argument("--context", type=bounded_int(1, 1_000_000), default=64,
                   help="language models: tokens per window of the text file")
    p.add_argument("--batch-size", type=bounded_int(1, 4096), default=32, help="puzzles per forward")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the SAE, the probe and the random controls")
    p.add_argument("--attribution", action="store_true", help="instead of steering: gradient x activation of "
                   "every --sae feature at every update of --state, every cell (attribution.csv: puzzle, segment, "
                   "step, hook, cell, feature, activation, attribution)")
    p.add_argument("--metric", choices=["logit_diff", "logit_diff_max", "cross_entropy"], default="logit_diff",
                   help="--attribution: the metric of the last segment whose gradient is taken")
    p.add_argument("--top", type=bounded_int(0, 10_000), default=10, help="--attribution: rows printed")
    add_threads_option(p)
    add_device_option(p)
    p.add_argument("--out", type=path_str, default="out/steer", help="output directory")
    add_quiet(p)
    p.set_defaults(func=cmd_steer)
