"""Write a stability run to a directory: tables (CSV), the Markdown report and the figure (PNG)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from common.io import atomic_write_text
from common.outputs import check_replaceable, record_outputs
from common.mpl_figures import save_figure
from interp.stability.figures import stability_figure
from interp.stability.run import StabilityResult
from interp.stability.summary import stability_markdown


def write_stability_report(result: StabilityResult, out_dir: str | os.PathLike, title: str = "Stability",
                           provenance: dict[str, Any] | None = None) -> dict[str, Path]:
    """``per_puzzle.csv``, ``per_step.csv``, ``settings.json``, and with labels ``report.md`` and ``stability.png``,
    recorded in ``provenance.json``. ``out_dir`` must be new, empty or a previous output (``check_replaceable``)."""
    out = Path(out_dir)
    check_replaceable(out, ValueError, "stability output")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"per_puzzle": out / "per_puzzle.csv", "per_step": out / "per_step.csv", "settings": out / "settings.json"}
    atomic_write_text(paths["per_puzzle"], result.per_puzzle.to_csv(index=False))
    atomic_write_text(paths["per_step"], result.per_step.to_csv(index=False))
    settings = {**result.settings, **(provenance or {})}
    atomic_write_text(paths["settings"], json.dumps(settings, indent=2, default=str) + "\n")
    if "solved" in result.per_puzzle:
        paths["report"] = out / "report.md"
        atomic_write_text(paths["report"], stability_markdown(result.per_puzzle, settings, title=title))
        fig = stability_figure(result.per_puzzle, result.per_step, title=title)
        paths["figure"] = save_figure(fig, out / "stability", formats=("png",))[0]
    paths["provenance"] = record_outputs(out, {"command": "stability"})
    return paths


__all__ = ["write_stability_report"]
