"""What the ``interp`` commands share: the puzzle inputs, loading a checkpoint once, its task, colour, the viewer.

Help formatting and one-line errors are in ``common.cli_format``, options every
command line shares (``--threads``, ``--device``, ``--ckpt``, ...) in ``common.cli_options``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from common.cli_types import cap_note, segments_int
from common.cli_options import add_ckpt_option, add_limit_option, add_puzzle_file_option, add_puzzle_option, add_task_option


def add_puzzle_source(p: argparse.ArgumentParser, required: bool = False,
                      file_help: str | None = None) -> argparse._MutuallyExclusiveGroup:
    """The exclusive ``--puzzle``/``--puzzle-file`` group (``file_help``: that option's help); a command adds its
    other sources (``--text``, ``--tokens``, ...) to the returned group."""
    src = p.add_mutually_exclusive_group(required=required)
    add_puzzle_option(src)
    add_puzzle_file_option(src, help=file_help)
    return src


def add_puzzle_inputs(p: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """``--ckpt``, ``--puzzle``/``--puzzle-file`` (required, exclusive), ``--task``, ``--segments``, ``--limit``:
    the inputs of every command that runs a checkpoint on puzzles. Returns the puzzle-source group."""
    add_ckpt_option(p)
    src = add_puzzle_source(p, required=True)
    add_task_option(p)
    p.add_argument("--segments", type=segments_int,
                   help=f"segments to run (default: the model's evaluation depth){cap_note(segments_int)}")
    add_limit_option(p)
    return src


def checkpoint_task(ckpt: str, task_arg: str | None, command: str = "trace") -> Any:
    """The checkpoint's task, read from its config.json before torch is imported (bad input fails fast)."""
    from tasks.puzzles import resolve_task

    if ckpt.startswith("hf:"):  # a Hub spec: fetched (or found in the cache) first
        from models.hub import local_checkpoint

        ckpt = local_checkpoint(ckpt)
    p = Path(ckpt)
    if p.exists() and not (p / "config.json").exists() and (p.is_file() or (p / "all_config.yaml").exists()):
        # an official HRM/TRM checkpoint: its task follows from the model's shapes
        model, _ = load_model(ckpt)
        return resolve_task(model.cfg.to_dict(), None, task_arg, ckpt=ckpt, command=command)
    from common.io import read_json

    meta = None
    try:
        meta = read_json(p / "config.json", max_bytes=4 << 20)
    except (OSError, ValueError):
        pass
    if not (isinstance(meta, dict) and meta.get("format") == "recurse-interp/1" and isinstance(meta.get("model"), dict)):
        from models.checkpoint import read_checkpoint_config

        meta = read_checkpoint_config(ckpt)  # raises the precise one-line error
    return resolve_task(meta["model"], meta.get("task"), task_arg, ckpt=ckpt, command=command)


_LOADED: dict[str, Any] = {}


def load_model(ckpt: str) -> tuple[Any, dict[str, Any]]:
    """Our checkpoint directory, an official HRM/TRM file, an HRM-Text folder or an ``hf:`` spec (``load_any``), loaded once per process."""
    if ckpt not in _LOADED:
        from models.load import load_any

        _LOADED[ckpt] = load_any(ckpt)
    return _LOADED[ckpt]


def use_color(args: argparse.Namespace) -> bool:
    """``--color``: always, never, or auto (when stdout is a terminal)."""
    if args.color == "always":
        return True
    if args.color == "never":
        return False
    return sys.stdout.isatty()


def write_trace_viewer(tr: Any, out: Path, names: list[str] | None = None, n: int = 8, plotly_js: str = "file") -> None:
    """``viewer.html`` in the trace directory: the first ``n`` puzzles with a picker (plotly.min.js beside it).

    A failure is a warning, never an error: the trace is already safe on disk."""
    from interp.views.trace_viewer import write_viewer

    k = max(1, min(int(n), tr.n_puzzles))
    try:
        path = write_viewer(tr, out / "viewer.html", puzzle=list(range(k)),
                            names=list(names[:k]) if names is not None and len(names) >= k else None,
                            plotly_js=plotly_js)
        print(f"viewer written to {path or out / 'viewer.html'} ({k} puzzle(s); open it in a browser)")
    except Exception as e:  # noqa: BLE001 - the trace is already safe on disk
        print(f"warning: could not write the HTML viewer ({type(e).__name__}: {e})", file=sys.stderr)


def lens_options(args: argparse.Namespace, text: bool = False) -> dict[str, bool]:
    """``trace_to_disk`` keywords of ``--lens`` and ``--no-confidence`` (the per-step lens is most of a trace's cost).

    Without ``--lens``: every state for puzzle models, the answer state only for language models (``text``),
    whose printed story reads only the answer state and whose every decode is a pass over the whole vocabulary."""
    lens = getattr(args, "lens", None) or ("answer" if text else "all")
    return {"decode_latents": lens == "all", "confidence": not getattr(args, "no_confidence", False)}
