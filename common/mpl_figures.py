"""Static matplotlib figures: a pyplot-free Figure, the project's colours, and atomic PNG/SVG files.

Every stage that draws a static figure (``interp.report``, ``interp.stability``,
``scripts/``) uses these, so they live in the lowest layer. matplotlib is imported
only when a figure is made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.io import atomic_write

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def new_figure(width: float, height: float) -> Any:
    """A pyplot-free matplotlib Figure (Agg canvas)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), constrained_layout=True)


def save_figure(fig: Any, base: str | os.PathLike, dpi: int = 150, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write ``fig`` as ``base.png`` and ``base.svg`` (atomic: temp file + rename); returns the paths."""
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = base.with_name(base.name + f".{fmt}")
        metadata = {"Date": None} if fmt == "svg" else None  # reproducible SVGs
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata))
        out.append(path)
    return out
