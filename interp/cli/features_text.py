"""``interp features`` on language models (HRM-LM, HRM-Text): texts in, token-in-context feature pages out.

    interp features --ckpt zoo/hrm-lm-pydoc --text-file README.md --limit 16 --out out/features-lm

The samples of the dictionary are (text window, token position) trajectories across the steps that write the
state (default the answer state: HRM-LM ``fast``, HRM-Text ``z_H``). The tokens of ``--text``, ``--text-file``
(UTF-8) or ``--tokens`` (ids) are cut into consecutive windows of ``--context`` tokens (at most the model's
sequence length; at most ``--limit`` windows; a shorter text is one window). Writes
``dictionary/`` (SAELens layout, with hook names and model hash), ``features.csv`` (per feature: firing,
step profile, most-pushed token, label), ``comparison.csv``, ``summary.md`` and ``features.html``
(``interp.views.text_feature_pages``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from common.atomic import atomic_write_json, atomic_write_text
from common.markdown import markdown_table
from common.outputs import TOOL_MARK, listed_files

MAX_TEXT_BYTES = 16 << 20
OUTPUTS = ["dictionary/cfg.json", "dictionary/sae_weights.safetensors", "features.csv", "comparison.csv", "summary.md",
           "settings.json", "features.html", "plotly.min.js"]


def is_text_source(args: argparse.Namespace) -> bool:
    """Whether ``interp features`` was given a text (``--text``, ``--text-file`` or ``--tokens``)."""
    return any(getattr(args, k, None) is not None for k in ("text", "text_file", "tokens"))


def text_windows(ids: np.ndarray, length: int, limit: int | None) -> np.ndarray:
    """[N, length] consecutive windows of the token ids (the last partial window dropped; one shorter text is
    one window of its own length)."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size < 2:
        raise ValueError("the text must give at least two tokens")
    if ids.size <= length:
        return ids[None]
    n = ids.size // length
    n = min(n, limit) if limit else n
    return ids[: n * length].reshape(n, length)


def text_source(args: argparse.Namespace) -> tuple[Any, Any, Callable[[list[int]], str], str]:
    """(trace of the windows with full states of the state asked, model, decode, checkpoint folder)."""
    from common.untrusted import regular_file
    from interp.cli.text_trace import parse_tokens, text_tokenizer
    from interp.tracing.schema import is_lm_model
    from interp.tracing.tracer import trace
    from models.hub import local_checkpoint
    from models.load import load_any

    if args.trace:
        raise ValueError("give a trace directory or --text/--text-file/--tokens, not both")
    if not args.ckpt:
        raise ValueError("--text, --text-file and --tokens need --ckpt (a language model)")
    text = None
    if args.text_file is not None:
        f = regular_file(args.text_file, MAX_TEXT_BYTES, where="--text-file")
        text = f.read_bytes().decode("utf-8", errors="replace")
        if not text.strip():
            raise ValueError(f"--text-file {args.text_file} is empty")
    elif args.text is not None:
        text = args.text
    ids = parse_tokens(args.tokens) if args.tokens is not None else None
    folder = local_checkpoint(args.ckpt)
    model, meta = load_any(folder)
    if not is_lm_model(model):
        raise ValueError(f"--text needs a language model; {args.ckpt} is a {model.cfg.family} puzzle model "
                         "(use --puzzle or --puzzle-file)")
    try:
        encode, decode = text_tokenizer(model, meta, folder)
    except (ValueError, ImportError):
        if ids is None:
            raise
        encode, decode = None, (lambda t: f"<{t[0]}>")
    if ids is None:
        ids = encode(text)
    vocab = int(model.cfg.vocab_size)
    if ids.size and int(ids.max()) >= vocab:
        raise ValueError(f"token id {int(ids.max())} is outside the vocabulary (0..{vocab - 1})")
    seq = int(model.cfg.seq_len)
    windows = text_windows(ids, min(args.context, seq), args.limit)
    state = args.state or "answer"
    tr = trace(model, windows, states=[state], confidence=False, task={"name": "text"}, checkpoint=folder,
               progress=not args.quiet)
    return tr, model, decode, folder


def next_token_match(tops: list[list[tuple[int, int, int, float]]], tokens: np.ndarray, pushed: np.ndarray,
                     live: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Per live feature, the share of its top examples (``tops[f]``: (text, step, position, activation)) whose next
    token is the feature's most-pushed token ``pushed[f]``; the control uses the most-pushed token of another live
    feature (a random cyclic shift of ``live``). Means with bootstrap intervals (``feature``, ``control``), ``n``."""
    from common.stats import bootstrap_mean_ci

    L = tokens.shape[1]
    shift = int(np.random.default_rng(seed).integers(1, len(live))) if len(live) > 1 else 0
    other = np.roll(live, -shift)
    own, ctl = [], []
    for f, g in zip(live, other):
        nxt = np.asarray([tokens[n, p + 1] for n, _, p, _ in tops[f] if p + 1 < L])
        if nxt.size:
            own.append(float((nxt == pushed[f]).mean()))
            ctl.append(float((nxt == pushed[g]).mean()))
    return {"feature": bootstrap_mean_ci(own, seed=seed), "control": bootstrap_mean_ci(ctl, seed=seed), "n": len(own)}


def write_text_outputs(args: argparse.Namespace, out: Path, model: Any, decode: Callable[[list[int]], str],
                       info: dict[str, Any], result: dict[str, Any], steps: np.ndarray, tokens: np.ndarray) -> None:
    """Every output file of ``interp features`` on texts (see the module docstring)."""
    from interp.cli.features_run import decoder_directions
    from interp.views.text_feature_pages import auto_label, lm_push, top_pushed, write_text_feature_pages
    from interp.views.feature_pages import top_examples
    from probes.sae_files import save_crosscoder, save_sae

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "provenance.json", {"tool": TOOL_MARK, "command": "features", "files": OUTPUTS})
    if "steps" in result:  # a loaded SAE covers only the steps its hook names
        steps = steps[np.isin(steps, result["steps"])]
    acts, prof = result["acts"], result["profiles"].copy()
    F = acts.shape[-1]
    for col in ("onset", "offset", "peak"):
        prof[f"{col}_step"] = np.where(prof[col] >= 0, steps[np.maximum(prof[col], 0)], -1)
    push = lm_push(model.decode, decoder_directions(result["module"], result["profiles"]))
    among = None if args.push_among == "all" else np.unique(tokens)
    top1 = top_pushed(push, 1, among)[:, 0]
    render = lambda t: decode([int(t)])  # noqa: E731
    flat = acts.reshape(-1, F)
    table = pd.DataFrame({"feature": np.arange(F), "firing_rate": (flat > 0).mean(0), "mean_activation": flat.mean(0)})
    table = table.merge(prof[["feature", "kind", "onset_step", "offset_step", "peak_step"]], on="feature")
    table["top_pushed_token"] = [render(t) for t in top1]
    table["top_pushed_id"] = top1
    tops = [top_examples(acts, f, args.top) for f in range(F)]
    table["label"] = [auto_label([int(tokens[n, p]) for n, _, p, _ in tops[f]], int(top1[f]), render)
                      if table.loc[f, "firing_rate"] > 0 else "" for f in range(F)]
    match = next_token_match(tops, tokens, top1, np.flatnonzero(table["firing_rate"].to_numpy() > 0), args.seed)
    atomic_write_text(out / "features.csv", table.to_csv(index=False, float_format="%.5g"))
    if not result.get("loaded"):
        info = {**info, "extra": {"l1": args.l1, "k": args.topk, "train_steps": args.train_steps, "seed": args.seed}}
        save = save_crosscoder if result["kind"] == "crosscoder" else save_sae
        save(result["module"], out / "dictionary", info)
    atomic_write_text(out / "comparison.csv", result["comparison"].to_csv(index=False))
    pages = list(args.feature) if args.feature else (
        table[table["firing_rate"] > 0].sort_values("mean_activation", ascending=False)["feature"].head(args.pages).tolist())
    if not pages:
        raise ValueError("no feature fires on these texts: nothing to draw (train longer or lower --l1)")
    profiles = {int(r.feature): {"kind": str(r.kind), "onset": int(r.onset_step), "offset": int(r.offset_step)}
                for r in prof.itertuples()}
    write_text_feature_pages(out / "features.html", acts, steps, tokens, decode, plotly_js=args.plotly, features=pages,
                             push=push, n_top=args.top, profiles=profiles, among=among,
                             title=f"{result['kind']} features of {info['model_name'] or 'model'} ({info['state']})")
    N, T, L, _ = acts.shape
    counts = table["kind"].value_counts()
    lab = table[table["label"] != ""]
    summary = [f"## {result['kind']} features of {info['model_name'] or 'the model'} ({info['state']})", "",
               f"{N} text windows x {L} token positions x {T} steps that write {info['state']} (trace steps "
               f"{int(steps[0])}..{int(steps[-1])}); {F} features. Variance explained, active features per "
               "(window, position) trajectory, features alive:", "",
               markdown_table(result["comparison"].astype(object).where(result["comparison"].notna(), "")), "",
               "Step profiles of the live features: " + ", ".join(f"{k} {int(counts.get(k, 0))}" for k in
               ("persistent", "appearing", "fading", "transient")) + f" (dead {int(counts.get('dead', 0))}).", "",
               f"Automatic labels: {int(lab['label'].str.startswith('on ').sum())} features sit mostly on one input "
               f"token, {int(lab['label'].str.startswith('pushes ').sum())} are labelled by their most-pushed token.", "",
               f"Next token = the feature's most-pushed token at its top examples (up to {args.top} per feature, "
               f"N = {match['n']} live features, bootstrap 95% intervals): {100 * match['feature'].mean:.1f}% "
               f"({100 * match['feature'].low:.1f}-{100 * match['feature'].high:.1f}); control, the most-pushed "
               f"token of another live feature: {100 * match['control'].mean:.1f}% ({100 * match['control'].low:.1f}-"
               f"{100 * match['control'].high:.1f}).", ""]
    atomic_write_text(out / "summary.md", "\n".join(summary))
    atomic_write_json(out / "settings.json", {k: v for k, v in vars(args).items() if k not in ("func",)}, default=str)
    files = sorted(set(OUTPUTS) | set(listed_files(out)) - {"provenance.json"})
    atomic_write_json(out / "provenance.json", {"tool": TOOL_MARK, "command": "features", "files": files})


__all__ = ["is_text_source", "text_windows", "text_source", "next_token_match", "write_text_outputs"]
