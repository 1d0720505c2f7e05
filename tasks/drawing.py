"""Draw puzzle grids in the terminal: token characters, the box worth printing, coloured text grids."""

from __future__ import annotations

import math

import numpy as np

from tasks.task_info import TaskInfo


def cell_chars(task: str, size: int) -> dict[int, str]:
    """Token -> display character."""
    if task == "sudoku":
        digits = "123456789ABCDEFGHIJKLMNOP"
        return {0: "_", 1: ".", **{t: digits[t - 2] for t in range(2, size + 2)}}
    if task == "maze":
        return {0: "_", 1: "#", 2: " ", 3: "S", 4: "G", 5: "o"}
    return {0: " ", 1: "|", **{t: str(t - 2) for t in range(2, 12)}}


def view_box(task: TaskInfo, *token_grids: np.ndarray) -> tuple[range, range]:
    """Rows and columns to print: the whole grid, or for ARC the box holding any non-pad input/label token."""
    rows, cols = task.grid
    if task.name != "arc":
        return range(rows), range(cols)
    from tasks.arc.grid import content_box

    box = content_box(token_grids, rows, cols)
    if box is None:
        return range(rows), range(cols)
    r0, r1, c0, c1 = box
    return range(r0, r1), range(c0, c1)


def render_grid(tokens: np.ndarray, task: TaskInfo, changed: np.ndarray | None = None,
                wrong: np.ndarray | None = None, given: np.ndarray | None = None, color: bool = False,
                box: tuple[range, range] | None = None) -> str:
    """A grid as text: changed cells in [brackets]; with ``color``, wrong cells red, right ones green, givens dim.

    ``box`` limits the printed rows/columns (``view_box``; ARC's 30x30 canvas is mostly padding).
    """
    rows, cols = task.grid
    row_range, col_range = box or (range(rows), range(cols))
    chars = cell_chars(task.name, rows)
    n = math.isqrt(rows) if task.name == "sudoku" else 0
    lines = []
    for r in row_range:
        if n and r and r % n == 0:
            lines.append("-" * (3 * cols + (n - 1)))
        out = []
        for c in col_range:
            i = r * cols + c
            ch = chars.get(int(tokens[i]), "?")
            ch = f"[{ch}]" if changed is not None and changed[i] else f" {ch} "
            if color:
                if given is not None and given[i]:
                    ch = f"\033[2m{ch}\033[0m"
                elif wrong is not None and wrong[i]:
                    ch = f"\033[31m{ch}\033[0m"
                elif changed is not None and changed[i]:
                    ch = f"\033[32;1m{ch}\033[0m"
            if n and c and c % n == 0:
                out.append("|")
            out.append(ch)
        lines.append("".join(out).rstrip() if not color else "".join(out))
    return "\n".join(lines)


__all__ = ["cell_chars", "view_box", "render_grid"]
