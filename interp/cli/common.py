"""What every ``interp`` command shares: one-line usage errors, loading a checkpoint once, its task, colour."""

from __future__ import annotations

import argparse
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

    p = Path(ckpt)
    if p.exists() and not (p / "config.json").exists() and (p.is_file() or (p / "all_config.yaml").exists()):
        # an official HRM/TRM checkpoint: its task follows from the model's shapes
        model, _ = _load_model(ckpt)
        return resolve_task(model.cfg.to_dict(), None, task_arg)
    from common.io import read_json

    meta = None
    try:
        meta = read_json(p / "config.json", max_bytes=4 << 20)
    except (OSError, ValueError):
        pass
    if not (isinstance(meta, dict) and meta.get("format") == "recurse-interp/1" and isinstance(meta.get("model"), dict)):
        from models.checkpoint import read_checkpoint_config

        meta = read_checkpoint_config(ckpt)  # raises the precise one-line error
    return resolve_task(meta["model"], meta.get("task"), task_arg)


_LOADED: dict[str, Any] = {}


def _load_model(ckpt: str):
    """Our checkpoint directory or an official HRM/TRM file (``load_any``), loaded once per process."""
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
