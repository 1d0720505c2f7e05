"""The head every offline HTML page of interp/views/ starts with: doctype, charset, ``__TITLE__``, the style sheet."""

from __future__ import annotations

_FONTS = '-apple-system, "Segoe UI", Helvetica, Arial, sans-serif'


def page_head(css: str, font_size: int | None = None) -> str:
    """``<!doctype html>`` up to ``</head>``: the ``__TITLE__`` placeholder, a body rule (no margin, the sans-serif
    fonts, ``font_size`` px when given) and then ``css`` (rules, one per line, each indented two spaces)."""
    size = f" font-size: {font_size}px;" if font_size is not None else ""
    return (f'<!doctype html>\n<html>\n<head>\n<meta charset="utf-8" />\n<title>__TITLE__</title>\n<style>\n'
            f"  body {{ margin: 0; font-family: {_FONTS};{size} }}\n{css}</style>\n</head>\n")


__all__ = ["page_head"]
