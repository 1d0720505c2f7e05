"""``metrics.jsonl``, the run's log of training and evaluation records: JSON-safe values, truncation on resume."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from common.atomic import atomic_write_text


def jsonable(x: Any) -> Any:
    """``x`` with numpy scalars as Python numbers and non-finite floats as null / +-1e308 (strict JSON)."""
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else (1e308 if x > 0 else -1e308)
    if isinstance(x, (np.floating, np.integer)):
        return jsonable(x.item())
    return x


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records written after ``step`` by a run that was killed before its next checkpoint."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue
    atomic_write_text(path, "".join(line + "\n" for line in keep))


__all__ = ["jsonable", "truncate_metrics"]
