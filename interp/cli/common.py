"""What every ``interp`` command shares: one-line usage errors, loading a checkpoint once, its task, colour."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as a single ``error: ...`` line."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


class _UsageError(Exception):
    pass


# ----------------------------------------------------------------------------- helpers
def error_line(e: BaseException) -> str:
    """An error as the one line after ``error:`` (KeyError's quotes dropped, whitespace folded)."""
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(msg.split()) or type(e).__name__


def _checkpoint_task(ckpt: str, task_arg: str | None):
    """The checkpoint's task, read from its config.json before torch is imported (bad input fails fast)."""
    from tasks.puzzles import resolve_task

    if ckpt.startswith("hf:"):  # a Hub spec: fetched (or found in the cache) first
        from models.hub import local_checkpoint

        ckpt = local_checkpoint(ckpt)
    p = Path(ckpt)
    if p.exists() and not (p / "config.json").exists() and (p.is_file() or (p / "all_config.yaml").exists()):
        # an official HRM/TRM checkpoint: its task follows from the model's shapes
        model, _ = _load_model(ckpt)
        return resolve_task(model.cfg.to_dict(), None, task_arg)
    meta = None
    try:
        meta = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        pass
    if not (isinstance(meta, dict) and meta.get("format") == "recurse-interp/1" and isinstance(meta.get("model"), dict)):
        from models.checkpoint import read_checkpoint_config

        meta = read_checkpoint_config(ckpt)  # raises the precise one-line error
    return resolve_task(meta["model"], meta.get("task"), task_arg)


_LOADED: dict[str, Any] = {}


def _load_model(ckpt: str):
    """Our checkpoint directory, an official HRM/TRM file, an HRM-Text folder or an ``hf:`` spec (``load_any``), loaded once per process."""
    if ckpt not in _LOADED:
        from models.load import load_any

        _LOADED[ckpt] = load_any(ckpt)
    return _LOADED[ckpt]


def _color(args: argparse.Namespace) -> bool:
    if args.color == "always":
        return True
    if args.color == "never":
        return False
    return sys.stdout.isatty()


def _viewer(tr, out: Path) -> None:
    """Write ``out/viewer.html`` next to a trace; a failure is a warning, never an error."""
    from interp.views.trace_viewer import write_viewer

    try:
        path = write_viewer(tr, out / "viewer.html")
        print(f"viewer written to {path or out / 'viewer.html'}")
    except Exception as e:  # the trace is already safe on disk; a viewer failure must not hide it
        print(f"warning: could not write the HTML viewer ({type(e).__name__}: {e})", file=sys.stderr)
