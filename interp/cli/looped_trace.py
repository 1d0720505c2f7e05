"""``interp trace --loop-module``: trace any transformers causal LM per call of its loop module(s).

    interp trace --ckpt DIR --loop-module model.norm --tokens "1 2 3 4"
    interp trace --ckpt DIR --loop-module z_L=model.L_module,z_H=model.H_module --text "The capital of"
    interp trace --ckpt DIR --loop-module auto --trust-remote-code --text "def f(x):"

``DIR`` is a local ``save_pretrained`` folder (safetensors); a model whose code lives in the folder
(``auto_map``) is loaded only with ``--trust-remote-code``. The loop, the lens and every check run
before anything is written (``interp.tracing.looped``); the trace, its per-step story and its viewer
are those of ``interp trace --text``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any


def parse_loop(text: str) -> list[str] | dict[str, str] | None:
    """``auto`` -> None; ``a,b`` -> paths; ``z_L=model.L_module,z_H=model.H_module`` -> state names to paths."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if parts == ["auto"]:
        return None
    if not parts:
        raise ValueError("--loop-module needs module names (NAME[,NAME...], STATE=NAME[,...] or auto)")
    named = [p for p in parts if "=" in p]
    if named and len(named) != len(parts):
        raise ValueError(f"--loop-module: name every module (STATE=NAME) or none, got {text!r}")
    if not named:
        return parts
    out: dict[str, str] = {}
    for p in parts:
        k, _, v = p.partition("=")
        if not k.strip() or not v.strip() or k.strip() in out:
            raise ValueError(f"--loop-module: bad or repeated item {p!r}")
        out[k.strip()] = v.strip()
    return out


def _tokenizer(folder: str, trust: bool) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=trust)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ValueError(f"no usable tokenizer in {folder} ({type(e).__name__}); pass token ids with --tokens") from None


def load_looped_lm(args: argparse.Namespace) -> tuple[Any, str, Any, Any, Any]:
    """The transformers model of ``--ckpt`` and its ``--text``/``--tokens`` ids, checked before anything is written:
    (model, folder, device, inputs [1, L] int64, decode(ids) -> text). Shared by ``trace`` and ``stability``."""
    if args.text is None and args.tokens is None:
        raise ValueError("--loop-module runs a language model on --text or --tokens, not on puzzles")
    import numpy as np

    from interp.cli.text_trace import parse_tokens
    from models.hrm_text import default_dtype
    from models.hub import local_checkpoint
    from models.transformers_lm import load_causal_lm
    from training.distributed import pick_device

    folder = local_checkpoint(args.ckpt)
    device = pick_device(args.device)
    model = load_causal_lm(folder, args.trust_remote_code, device, args.dtype or default_dtype(device))
    if args.tokens is not None:
        ids = parse_tokens(args.tokens)
        try:
            tok = _tokenizer(folder, args.trust_remote_code)
            decode = lambda t: tok.decode(list(t))  # noqa: E731
        except (ValueError, ImportError):
            decode = lambda t: f"<{t[0]}>"  # noqa: E731
    else:
        tok = _tokenizer(folder, args.trust_remote_code)
        ids = np.asarray(tok(args.text)["input_ids"], dtype=np.int64)
        decode = lambda t: tok.decode(list(t))  # noqa: E731
    if ids.size < 2:
        raise ValueError("the text must give at least two tokens (labels are the next tokens)")
    vocab = getattr(model.config, "vocab_size", None)
    if vocab is not None and (ids.min() < 0 or ids.max() >= int(vocab)):
        raise ValueError(f"token ids must lie in [0, {vocab}), got [{ids.min()}, {ids.max()}]")
    return model, folder, device, ids[None], decode


def cmd_trace_looped(args: argparse.Namespace) -> int:
    """Load, tokenise, plan the loop, trace to disk, print the per-step story of the last position."""
    if args.text is None and args.tokens is None:
        raise ValueError("--loop-module traces a language model on --text or --tokens, not on puzzles")
    loop = parse_loop(args.loop_module)
    norm = None if args.lens_norm == "none" else args.lens_norm

    from interp.cli.common import lens_options, write_trace_viewer
    from interp.cli.text_trace import print_text_steps
    from interp.tracing.looped import wrap_looped
    from interp.tracing.store import load_trace
    from interp.tracing.stream import trace_to_disk

    model, folder, device, inputs, decode = load_looped_lm(args)
    wrapped = wrap_looped(model, inputs, loop, head=args.lens_head, norm=norm, batch_size=1)
    if loop is None:  # say what the dry run saw, so the user can name another loop
        import torch

        from models.looped import default_call, find_loop_modules

        x = torch.as_tensor(inputs, device=device)
        found = find_loop_modules(model, lambda: default_call(model, x))
        print("note: modules called more than once per forward: "
              + ", ".join(f"{n} ({c})" for n, c in list(found.items())[:12]) + ("" if len(found) <= 12 else ", ..."),
              file=sys.stderr)
    h = hashlib.sha256(inputs.tobytes() + args.loop_module.encode()).hexdigest()[:8]
    out = Path(args.out) if args.out else Path("traces") / f"{Path(folder).name}-{h}"
    states = args.states if args.states in ("all", "summary") else [s.strip() for s in args.states.split(",")]
    trace_to_disk(wrapped, inputs, out, batch_size=1, states=states, task={"name": "text"}, checkpoint=folder,
                  overwrite=args.overwrite, progress=False, attention=bool(getattr(args, "attention", False)),
                  **lens_options(args, text=True))
    tr = load_trace(out)
    c = wrapped.cfg
    print(f"model: {c.model_class} from {args.ckpt} on {device}; loop {', '.join(f'{s}={p}' for s, p in c.loop.items())}"
          f" ({c.max_steps} calls); lens {wrapped.lens_description()}")
    print_text_steps(tr, decode)
    print(f"\ntrace written to {out}")
    write_trace_viewer(tr, out)
    return 0


def add_looped_options(p: argparse.ArgumentParser) -> None:
    """``--loop-module``, ``--trust-remote-code``, ``--lens-head``, ``--lens-norm`` on ``interp trace``."""
    from common.cli_types import nonempty_str

    p.add_argument("--loop-module", type=nonempty_str, metavar="NAME[,NAME...]",
                   help="with --text/--tokens: trace any transformers causal LM per call of these module(s) "
                        "(STATE=NAME names a state; auto: the modules called more than once per forward)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="with --loop-module: allow a model whose code lives in the checkpoint folder (auto_map) to run")
    p.add_argument("--lens-head", type=nonempty_str, default="auto",
                   help="with --loop-module: the logit-lens head module (auto: the output embeddings)")
    p.add_argument("--lens-norm", type=nonempty_str, default="auto",
                   help="with --loop-module: the norm before the head (auto: the last norm after the loop; none)")


__all__ = ["add_looped_options", "cmd_trace_looped", "load_looped_lm", "parse_loop"]
