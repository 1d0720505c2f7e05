"""Options that several commands share, each defined once with one default.

``interp`` (``interp.cli``), ``recurse-train`` (``training.cli``), ``scripts/`` and
``benchmarks/`` add them with these functions instead of spelling them out, so a
flag means the same thing, with the same default, everywhere. Only argparse is
imported here; torch is imported by :func:`set_threads` when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from common.cli_types import device_str, nonempty_str, nonneg_int, path_str, positive_int

THREADS_DEFAULT = 1
"""``--threads`` everywhere: one CPU thread (reproducible timings); 0 leaves torch's own choice."""

DEVICE_DEFAULT = "auto"
"""``--device`` everywhere: ``auto`` is cuda when available, else cpu (``training.distributed.pick_device``)."""

CKPT_HELP = ("checkpoint directory (model.safetensors + config.json), an official HRM/TRM weights file / run directory "
             "with all_config.yaml, a transformers HRM-Text folder, or a Hub spec hf:ORG/NAME[@REVISION][:SUBFOLDER]")

bounded_threads = nonneg_int
"""``--threads`` values: 0 (torch's choice) or a positive count."""

Container = Any  # an ArgumentParser or an argument group (mutually exclusive or not)


def add_threads_option(p: Container, help: str | None = None) -> None:
    """``--threads N``: torch CPU threads (default :data:`THREADS_DEFAULT`; 0 = torch's choice); see :func:`set_threads`."""
    p.add_argument("--threads", type=bounded_threads, default=THREADS_DEFAULT,
                   help=help or "torch CPU threads (0 = torch's own choice, usually all cores)")


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads``: ``torch.set_num_threads`` unless it is 0 (torch's choice)."""
    n = getattr(args, "threads", THREADS_DEFAULT)
    if n is not None and n < 0:
        raise ValueError(f"--threads must be >= 0, got {n}")
    if n:
        import torch

        torch.set_num_threads(n)


def add_device_option(p: Container, help: str | None = None) -> None:
    """``--device``: a torch device name, default :data:`DEVICE_DEFAULT`."""
    p.add_argument("--device", type=device_str, default=DEVICE_DEFAULT,
                   help=help or "torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:1, mps")


def add_ckpt_option(p: Container, repeat: bool = False, help: str | None = None) -> None:
    """``--ckpt`` (required): anything ``models.load.load_any`` reads; ``repeat`` lets it be given several times."""
    extra = {"action": "append"} if repeat else {}
    p.add_argument("--ckpt", type=path_str, required=True, help=help or CKPT_HELP, **extra)


def add_puzzle_option(p: Container) -> None:
    """``--puzzle``: one puzzle given as text on the command line."""
    p.add_argument("--puzzle", type=nonempty_str, help="one puzzle as text (Sudoku: 81 chars, '.' or '0' for blanks)")


def add_puzzle_file_option(p: Container, help: str | None = None) -> None:
    """``--puzzle-file``: puzzles in any format ``tasks.puzzles.read_puzzles`` reads."""
    p.add_argument("--puzzle-file", type=path_str, help=help or "a file of puzzles (.sdm/.txt lines, Sudoku-Extreme CSV, maze text, "
                                                 "ARC JSON)")


def add_task_option(p: Container) -> None:
    """``--task``: confirm or override the checkpoint's puzzle task."""
    p.add_argument("--task", choices=["sudoku", "maze", "arc"], help="override/confirm the checkpoint's task")


def add_limit_option(p: Container) -> None:
    """``--limit N``: the first N puzzles only."""
    p.add_argument("--limit", type=positive_int, help="use at most this many puzzles (the first ones)")


def add_quiet(p: Container) -> None:
    """``--quiet``: no progress bars (they are also off when stderr is not a terminal)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (off anyway when stderr is not a terminal)")


def add_plotly(p: Container) -> None:
    """``--plotly {file,cdn,inline}``: how the HTML files written by a command load plotly.js."""
    p.add_argument("--plotly", choices=["file", "cdn", "inline"], default="file",
                   help="how HTML files load plotly.js: file = one plotly.min.js beside them (offline, small files), "
                        "cdn = from cdn.plot.ly (needs a network), inline = embedded in every file (4.8 MB each)")


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars on stderr: only for a terminal, and never with ``--quiet`` or ``--no-progress``."""
    return not getattr(args, "quiet", False) and not getattr(args, "no_progress", False) and sys.stderr.isatty()
