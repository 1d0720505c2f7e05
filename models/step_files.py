"""``step_N`` names: the weights files of official HRM/TRM runs and the kept checkpoint copies of ours.

One pattern and its two uses (the step number of a name, the latest of several names),
so the official loader, the Hub resolver and the scripts agree on what a step file is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

STEP_PATTERN = r"step_(\d+)"  # also embedded in larger patterns (models.hub)
STEP_NAME = re.compile(STEP_PATTERN)

T = TypeVar("T")


def step_number(name: str) -> int | None:
    """N for a name ``step_N`` (the whole name), else None."""
    m = STEP_NAME.fullmatch(name)
    return int(m.group(1)) if m else None


def latest_step(items: Iterable[T], name: Callable[[T], str] = str) -> T | None:
    """The item whose ``name(item)`` is ``step_N`` with the largest N (None when no name is a step name)."""
    steps = [(n, str(item), item) for item in items if (n := step_number(name(item))) is not None]
    return max(steps, key=lambda t: t[:2])[2] if steps else None


def step_items(items: Iterable[T], name: Callable[[T], str] = str) -> list[tuple[int, T]]:
    """``(N, item)`` for every item named ``step_N``, in the given order."""
    return [(n, item) for item in items if (n := step_number(name(item))) is not None]


__all__ = ["STEP_PATTERN", "STEP_NAME", "step_number", "latest_step", "step_items"]
