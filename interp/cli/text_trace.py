"""``interp trace --text``: trace a language model (HRM-Text, HRM-LM, causal baselines) on one text.

    interp trace --ckpt hf:sapientinc/HRM-Text-1B --text "The capital of France is" --out traces/hrm-text
    interp trace --ckpt zoo/hrm-lm-pydoc --text "def main():"

The text is tokenised with the checkpoint's own tokenizer (a transformers
``AutoTokenizer`` from the checkpoint folder for HRM-Text, the task's
tokenizer, e.g. bytes, for ours); the labels are the next tokens. Prints
per step the cross-entropy of the logit lens and the top next-token guess
at the last position, writes the trace (``interp show`` reads it) and its
viewer.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np


def text_tokenizer(model: Any, meta: dict[str, Any], folder: str | None):
    """(encode(text) -> ids, decode(ids) -> str) for a loaded language model."""
    if getattr(model.cfg, "family", "") == "hrm_text":
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, TypeError) as e:
            raise ValueError(f"no usable tokenizer in {folder} ({type(e).__name__}); pass token ids with --tokens") from None
        return (lambda s: np.asarray(tok(s)["input_ids"], dtype=np.int64)), (lambda ids: tok.decode(list(ids)))
    name = (meta.get("task") or {}).get("tokenizer") or ((meta.get("task") or {}).get("data") or {}).get("tokenizer")
    if name is None:
        raise ValueError("the checkpoint does not name its tokenizer; pass token ids with --tokens")
    from tasks.text import get_tokenizer

    tok = get_tokenizer(name)
    return tok.encode, tok.decode


def parse_tokens(text: str) -> np.ndarray:
    """Token ids separated by commas or spaces, each a whole number in [0, 2**63) (checked against the
    vocabulary by the model)."""
    try:
        ids = [int(t, 10) for t in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"--tokens expects integers separated by commas or spaces, got {text[:40]!r}") from None
    bad = next((t for t in ids if not 0 <= t < 2**63), None)
    if bad is not None:
        raise ValueError(f"--tokens: token id {str(bad)[:30]} is outside [0, 2**63)")
    return np.asarray(ids, dtype=np.int64)


def cmd_trace_text(args: argparse.Namespace) -> int:
    """Load, tokenise, trace to disk, print the per-step story of the last position."""
    from interp.cli.common import lens_options, write_trace_viewer
    from interp.tracing.schema import is_lm_model
    from interp.tracing.store import load_trace
    from interp.tracing.stream import trace_to_disk
    from models.load import load_any
    from models.hub import is_hub_spec, local_checkpoint

    kwargs: dict[str, Any] = {}
    folder = local_checkpoint(args.ckpt)  # an hf: spec is fetched (or found in the cache) first
    if getattr(args, "device", None) or getattr(args, "dtype", None):
        from models.hub import detect_layout

        if Path(folder).is_dir() and detect_layout(folder) == "transformers":
            from training.distributed import pick_device

            device = str(pick_device(args.device)) if getattr(args, "device", None) else None  # auto: cuda if there
            kwargs = {k: v for k, v in (("device", device), ("dtype", args.dtype)) if v}
    model, meta = load_any(folder, **kwargs)
    if not is_lm_model(model):
        raise ValueError(f"--text needs a language model; {args.ckpt} is a {model.cfg.family} puzzle model (use --puzzle)")
    if getattr(args, "tokens", None):  # ids given: a tokenizer only renders the guesses, if there is one
        ids = parse_tokens(args.tokens)
        try:
            decode = text_tokenizer(model, meta, folder)[1]
        except (ValueError, ImportError):
            decode = lambda t: f"<{t[0]}>"  # noqa: E731
    else:
        encode, decode = text_tokenizer(model, meta, folder)
        ids = encode(args.text)
    if ids.size < 2:
        raise ValueError("the text must give at least two tokens (labels are the next tokens)")
    inputs = ids[None, : model.cfg.seq_len]
    h = hashlib.sha256(inputs.tobytes()).hexdigest()[:8]
    out = Path(args.out) if args.out else Path("traces") / f"{Path(args.ckpt.split(':')[-1]).name}-{h}"
    device = next(model.parameters()).device
    print(f"model: {model.cfg.family} from {args.ckpt} on {device} ({meta['model'].get('dtype', 'float32')}); "
          f"{inputs.shape[1]} tokens", file=sys.stderr)
    states = args.states if args.states in ("all", "summary") else [s.strip() for s in args.states.split(",")]
    trace_to_disk(model, inputs, out, batch_size=1, states=states, task={"name": "text"}, checkpoint=folder,
                  overwrite=args.overwrite, progress=False, attention=bool(getattr(args, "attention", False)),
                  **lens_options(args, text=True))
    tr = load_trace(out)
    if is_hub_spec(args.ckpt):
        print(f"hub: {args.ckpt} -> {folder}")
    print_text_steps(tr, decode)
    print(f"\ntrace written to {out}")
    write_trace_viewer(tr, out)
    return 0


def print_text_steps(tr: Any, decode: Any) -> None:
    """The per-step story of the first text of a trace: cross-entropy, accuracy, the next-token guess at the end."""
    print(f"traced {tr.inputs.shape[1]} tokens: {tr.n_steps} steps; states {', '.join(tr.state_names)} "
          f"(answer: {tr.answer_state})")
    pred = tr.predictions[0]
    print(f"\n{'step':>4} {'updated':>8} {'ce':>8} {'acc':>6}  next-token guess after the last input token")
    ce, acc = tr.metric("ce")[0], tr.metric("token_acc")[0]
    for k in range(int(tr.steps_ran[0])):
        guess = decode([int(pred[k, -1])]) if pred.ndim == 2 and not np.isnan(ce[k]) else "-"  # "-": no state yet
        print(f"{k:>4} {str(tr.steps['updated'][k]):>8} {ce[k]:>8.4f} {acc[k]:>6.3f}  {guess!r}")


__all__ = ["cmd_trace_text", "print_text_steps", "parse_tokens"]
