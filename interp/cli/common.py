"""What every ``interp`` command shares: one-line usage errors, loading a checkpoint once, its task, colour."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from collections.abc import Sequence
from typing import Any, NoReturn

EXIT_USAGE = 2


class _DefaultsMixin:
    """Append ``(default: X)`` to an option's help when it has a real default (not None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def help_formatter() -> type:
    """Help with defaults shown and examples kept as written: rich-argparse when installed, else plain argparse."""
    try:
        from rich_argparse import RawDescriptionRichHelpFormatter as base
    except ImportError:  # pragma: no cover - rich-argparse is a declared dependency
        base = argparse.RawDescriptionHelpFormatter
    return type("HelpFormatter", (_DefaultsMixin, base), {})


def version_string() -> str:
    """``recurse-interp X.Y.Z`` from the installed distribution (or pyproject's version in a bare checkout)."""
    try:
        from importlib.metadata import version

        return f"recurse-interp {version('recurse-interp')}"
    except Exception:  # pragma: no cover - not installed
        return "recurse-interp (not installed)"


def examples(*lines: str) -> str:
    """An ``examples:`` epilog for a parser's help."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


class _PlainFormatter(_DefaultsMixin, argparse.RawDescriptionHelpFormatter):
    """Used while parsers are built and arguments parsed: cheap (rich is imported only to print help)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as a single ``error: ...`` line; help shows defaults and examples."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _PlainFormatter)
        super().__init__(*args, **kwargs)

    def format_help(self) -> str:
        if self.formatter_class is _PlainFormatter:
            self.formatter_class = help_formatter()  # rich-argparse, imported now that help is shown
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


class _UsageError(Exception):
    pass


class VersionAction(argparse.Action):
    """``--version``: reads the installed version only when asked (importlib.metadata costs ~0.1 s)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, default: Any = argparse.SUPPRESS,
                 help: str = "print the version and exit") -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None) -> None:
        print(version_string())
        parser.exit()


# ----------------------------------------------------------------------------- helpers
def add_quiet(p: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bars (they are also off when stderr is not a terminal)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (off anyway when stderr is not a terminal)")


def add_plotly(p: argparse.ArgumentParser) -> None:
    """``--plotly {file,cdn,inline}``: how the HTML files written by a command load plotly.js."""
    p.add_argument("--plotly", choices=["file", "cdn", "inline"], default="file",
                   help="how HTML files load plotly.js: file = one plotly.min.js beside them (offline, small files), "
                        "cdn = from cdn.plot.ly (needs a network), inline = embedded in every file (4.8 MB each)")


def add_puzzle_inputs(p: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """``--ckpt``, ``--puzzle``/``--puzzle-file`` (required, exclusive), ``--task``, ``--segments``, ``--limit``:
    the inputs of every command that runs a checkpoint on puzzles. Returns the puzzle-source group."""
    p.add_argument("--ckpt", required=True, help="checkpoint directory (model.safetensors + config.json), "
                   "an official HRM/TRM weights file / run directory with all_config.yaml, a transformers "
                   "HRM-Text folder, or a Hub spec hf:ORG/NAME[@REVISION][:SUBFOLDER]")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--puzzle", help="one puzzle as text (Sudoku: 81 chars, '.' or '0' for blanks)")
    src.add_argument("--puzzle-file", help="a file of puzzles (.sdm/.txt lines, Sudoku-Extreme CSV, maze text, ARC JSON)")
    p.add_argument("--task", choices=["sudoku", "maze", "arc"], help="override/confirm the checkpoint's task")
    p.add_argument("--segments", type=int, help="segments to run (default: the model's evaluation depth)")
    p.add_argument("--limit", type=int, help="use at most this many puzzles from --puzzle-file")
    return src


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars on stderr: only for a terminal, and never with ``--quiet``."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def error_line(e: BaseException) -> str:
    """An error as the one line after ``error:`` (KeyError's quotes dropped, whitespace folded)."""
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(msg.split()) or type(e).__name__


def _checkpoint_task(ckpt: str, task_arg: str | None, command: str = "trace"):
    """The checkpoint's task, read from its config.json before torch is imported (bad input fails fast)."""
    from tasks.puzzles import resolve_task

    if ckpt.startswith("hf:"):  # a Hub spec: fetched (or found in the cache) first
        from models.hub import local_checkpoint

        ckpt = local_checkpoint(ckpt)
    p = Path(ckpt)
    if p.exists() and not (p / "config.json").exists() and (p.is_file() or (p / "all_config.yaml").exists()):
        # an official HRM/TRM checkpoint: its task follows from the model's shapes
        model, _ = _load_model(ckpt)
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


def _viewer(tr, out: Path, names: list[str] | None = None, n: int = 8, plotly_js: str = "file") -> None:
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


def lens_options(args: argparse.Namespace) -> dict[str, bool]:
    """``trace_to_disk`` keywords of ``--lens`` and ``--no-confidence`` (the per-step lens is most of a trace's cost)."""
    return {"decode_latents": getattr(args, "lens", "all") == "all", "confidence": not getattr(args, "no_confidence", False)}
