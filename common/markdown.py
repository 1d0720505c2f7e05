"""Markdown pipe tables: written by reports, stability summaries, guess scaling and scripts alike.

Kept in the lowest layer so that every stage can write a table without importing
``interp.report`` (which sits above them). pandas is only a type here.
"""

from __future__ import annotations

from typing import Any


def markdown_table(display: Any) -> str:
    """A pipe table of ``display``'s cells as strings: first column left-aligned, the others right-aligned.

    ``display`` is a pandas DataFrame whose cells are already formatted as wanted."""
    cols = [str(c) for c in display.columns]
    lines = ["| " + " | ".join(_md_escape(c) for c in cols) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|"]
    for _, row in display.iterrows():
        lines.append("| " + " | ".join(_md_escape(str(v)) for v in row.tolist()) + " |")
    return "\n".join(lines)


def _md_escape(s: str) -> str:
    return s.replace("|", r"\|").replace("\n", " ")
