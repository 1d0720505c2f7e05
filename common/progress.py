"""Progress of long loops on stderr, one look for every command: done / total, rate, time left, then the wall time.

    with Progress(len(x), "trace", unit="puzzle", enabled=show) as bar:
        for batch in batches:
            ...
            bar.update(len(batch))
    # stderr: "trace: 512/512 puzzles [00:09<00:00, 56.1 puzzles/s]", then "trace: 512 puzzles in 9.1 s (56.1/s)"

The bar is tqdm's (updated once per batch, redrawn at most 10 times a second); the closing line is printed
when the loop ends normally, so a long command always says how long it took. ``status`` prints a one-line
note for a silent phase (compiling, loading) on the same stream. Disabled (``enabled=False``: not a terminal,
``--quiet``), nothing is printed and every method is a no-op.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def format_seconds(s: float) -> str:
    """``9.1 s``, ``2 min 05 s``, ``1 h 02 min``."""
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


class Progress:
    """A per-batch progress bar on stderr and a closing line with the wall time (see the module docstring)."""

    def __init__(self, total: int | None, desc: str, unit: str = "puzzle", enabled: bool = True,
                 initial: int = 0, file: TextIO | None = None, leave: bool = False):
        self.desc, self.unit, self.enabled = desc, unit, enabled
        self.file = file if file is not None else sys.stderr
        self.initial, self.n = initial, initial
        self.closed = False
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=f" {unit}s", initial=initial, file=self.file,
                            dynamic_ncols=True, mininterval=0.1, leave=leave, unit_scale=False,
                            bar_format="{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt}{unit} "
                                       "[{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]")
        self.t0 = time.perf_counter()

    def update(self, n: int = 1) -> None:
        """``n`` more items done (call once per batch)."""
        self.n += n
        if self.bar is not None:
            if n < 0:
                self.bar.n = self.n
                self.bar.refresh()
            else:
                self.bar.update(n)

    def goto(self, n: int) -> None:
        """Set the count to ``n`` (e.g. after a rollback to an earlier step)."""
        self.update(n - self.n)

    def wrap(self, items: Any) -> Any:
        """Iterate ``items``, one update per item (the bar's total is ``len(items)`` when it had none)."""
        if self.bar is not None and self.bar.total is None and hasattr(items, "__len__"):
            self.bar.total = len(items)
        for item in items:
            yield item
            self.update(1)

    def write(self, text: str) -> None:
        """A line above the bar (or plainly on the stream when the bar is off)."""
        if self.bar is not None:
            self.bar.write(text, file=self.file)
        else:
            print(text, file=self.file)

    def set_postfix(self, text: str) -> None:
        """A short note after the rate (e.g. the current loss)."""
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def close(self, ok: bool = True) -> None:
        """Remove the bar; with ``ok`` print ``desc: N units in T (rate/s)`` once."""
        if self.closed:
            return
        self.closed = True
        if self.bar is None:
            return
        self.bar.close()
        if ok:
            wall = time.perf_counter() - self.t0
            done = self.n - self.initial
            rate = f" ({done / wall:.1f}/s)" if wall > 0 and done else ""
            plural = "" if done == 1 else "s"
            print(f"{self.desc}: {done} {self.unit}{plural} in {format_seconds(wall)}{rate}", file=self.file, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)


def status(message: str, enabled: bool = True, file: TextIO | None = None) -> None:
    """One line on stderr saying what a silent phase is doing (``enabled=False``: nothing)."""
    if enabled:
        print(message, file=file if file is not None else sys.stderr, flush=True)


__all__ = ["Progress", "status", "format_seconds"]
