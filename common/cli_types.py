"""Bounded argparse types: every numeric or path option of every command is checked here.

An option declared ``type=positive_int`` (or ``bounded_int(1, 4096)``, ``probability``,
``finite_float`` ...) is refused by argparse itself with one line naming the option and
the allowed range, before any file is read or written. A cap is part of the type, so
``--help`` can state it (:func:`cap_note`). Only argparse and math are imported.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

INT_CAP = 10**9
"""No count option of the project makes sense above this; bigger numbers are refused (no int64 overflow later)."""


def _int(text: str) -> int:
    """An integer written in decimal (``1e3`` and ``2.0`` refused: counts are whole numbers)."""
    s = str(text).strip()
    try:
        return int(s, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _float(text: str) -> float:
    """A finite float (nan, inf and non-numbers refused)."""
    try:
        v = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def bounded_int(lo: int | None = None, hi: int | None = INT_CAP, name: str | None = None) -> Callable[[str], int]:
    """An argparse type for whole numbers in ``[lo, hi]`` (either bound may be None = open)."""

    def parse(text: str) -> int:
        v = _int(text)
        if lo is not None and v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"must be <= {hi}, got {v}")
        return v

    parse.__name__ = name or f"int in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
    parse.lo, parse.hi = lo, hi  # type: ignore[attr-defined]
    return parse


def bounded_float(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                  name: str | None = None) -> Callable[[str], float]:
    """An argparse type for finite floats in ``[lo, hi]`` (``lo_open``: strictly above ``lo``)."""

    def parse(text: str) -> float:
        v = _float(text)
        if lo is not None and (v <= lo if lo_open else v < lo):
            raise argparse.ArgumentTypeError(f"must be {'>' if lo_open else '>='} {lo}, got {v:g}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"must be <= {hi}, got {v:g}")
        return v

    parse.__name__ = name or "number"
    parse.lo, parse.hi = lo, hi  # type: ignore[attr-defined]
    return parse


positive_int = bounded_int(1, INT_CAP, "positive whole number")
"""1, 2, ... (sizes, counts, steps)."""

nonneg_int = bounded_int(0, INT_CAP, "whole number >= 0")
"""0, 1, ... (seeds, offsets, '0 = off' options)."""

finite_float = bounded_float(name="finite number")
"""Any finite float (scales, offsets)."""

positive_float = bounded_float(0.0, None, lo_open=True, name="number > 0")
"""Strictly positive finite float (learning rates, tolerances, temperatures)."""

nonneg_float = bounded_float(0.0, None, name="number >= 0")
"""Finite float >= 0 (noise levels, weights)."""

probability = bounded_float(0.0, 1.0, name="probability in [0, 1]")
"""A probability or fraction in [0, 1]."""


def open_probability(text: str) -> float:
    """A level strictly inside (0, 1), e.g. a confidence level."""
    v = probability(text)
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {v:g}")
    return v


def cap_note(kind: Callable[[str], object]) -> str:
    """``" (max N)"`` for a bounded type with an upper cap, for use in help strings."""
    hi = getattr(kind, "hi", None)
    return f" (max {hi:,})" if hi is not None and hi != INT_CAP else ""


MAX_TEXT = 1 << 20
"""Longest string option (a text, a puzzle, a comma list): a megabyte; longer is a mistake or an attack."""

MAX_PATH = 4096
"""Longest path option (Linux PATH_MAX)."""


def nonempty_str(text: str) -> str:
    """A string option that must not be empty or whitespace, hold a NUL byte or exceed :data:`MAX_TEXT` characters."""
    s = str(text)
    if not s.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    if "\0" in s:
        raise argparse.ArgumentTypeError("must not contain a NUL byte")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in argv arrive as lone surrogates
        raise argparse.ArgumentTypeError("is not valid UTF-8 text") from None
    if len(s) > MAX_TEXT:
        raise argparse.ArgumentTypeError(f"is {len(s):,} characters long (max {MAX_TEXT:,})")
    return s


def path_str(text: str) -> str:
    """A file or folder path: not empty, no NUL byte, at most :data:`MAX_PATH` characters (what it names is
    checked by the command: regular file, folder it owns, ...)."""
    s = str(text)
    if not s.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    if "\0" in s:
        raise argparse.ArgumentTypeError("must not contain a NUL byte")
    if len(s) > MAX_PATH:
        raise argparse.ArgumentTypeError(f"is a path of {len(s):,} characters (max {MAX_PATH:,})")
    return s


path_str.__name__ = "path"
nonempty_str.__name__ = "non-empty text"


def int_list(lo: int = 0, hi: int = INT_CAP) -> Callable[[str], list[int]]:
    """Comma-separated whole numbers in ``[lo, hi]``, with ``a-b`` ranges: ``0,2,5-7`` -> [0, 2, 5, 6, 7]."""
    one = bounded_int(lo, hi)

    def parse(text: str) -> list[int]:
        out: list[int] = []
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                raise argparse.ArgumentTypeError(f"empty item in list {text!r}")
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, "")
                x, y = one(a), one(b)
                if y < x:
                    raise argparse.ArgumentTypeError(f"range {part!r} runs backwards")
                if y - x > 100_000:
                    raise argparse.ArgumentTypeError(f"range {part!r} is too long (max 100,000 items)")
                out.extend(range(x, y + 1))
            else:
                out.append(one(part))
        return out

    parse.__name__ = "comma-separated list of whole numbers"
    return parse


def float_list(kind: Callable[[str], float] = finite_float) -> Callable[[str], list[float]]:
    """Comma-separated numbers, each checked by ``kind``: ``0.5,1,2``."""

    def parse(text: str) -> list[float]:
        parts = [p.strip() for p in str(text).split(",")]
        if not parts or any(not p for p in parts):
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
        return [kind(p) for p in parts]

    parse.__name__ = "comma-separated list of numbers"
    return parse


def choice_list(choices: tuple[str, ...] | list[str]) -> Callable[[str], list[str]]:
    """Comma-separated names, each one of ``choices``, duplicates dropped: ``a,b`` -> ["a", "b"]."""
    allowed = tuple(choices)

    def parse(text: str) -> list[str]:
        parts = [p.strip() for p in nonempty_str(text).split(",")]
        bad = [p for p in parts if p not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown item {bad[0]!r} (comma list of {', '.join(allowed)})")
        return list(dict.fromkeys(parts))

    parse.__name__ = f"comma-separated list of {', '.join(allowed)}"
    return parse


SEGMENTS_CAP = 1024
"""Most ACT segments any command runs (the models' own ``halt_max_steps`` bound)."""

segments_int = bounded_int(1, SEGMENTS_CAP, f"segments in [1, {SEGMENTS_CAP}]")
"""``--segments``: 1 .. :data:`SEGMENTS_CAP`."""

BATCH_CAP = 1 << 16
"""Largest batch of any command (the memory estimate refuses big models sooner)."""

batch_int = bounded_int(1, BATCH_CAP, f"batch size in [1, {BATCH_CAP}]")
"""``--batch-size``: 1 .. :data:`BATCH_CAP`."""

seed_int = bounded_int(0, 2**63 - 1, "seed (whole number >= 0)")
"""``--seed``: any non-negative int64."""

BOOT_CAP = 1_000_000
"""Most bootstrap resamples."""

boot_int = bounded_int(1, BOOT_CAP, f"resamples in [1, {BOOT_CAP:,}]")
"""``--n-boot``: 1 .. :data:`BOOT_CAP` (0 resamples give no interval)."""


def device_str(text: str) -> str:
    """``--device``: auto, cpu, cuda, cuda:N or mps (``meta``, ``bogus``, ``cuda:-1`` refused here; whether
    CUDA is present is checked when the device is picked)."""
    s = str(text).strip()
    if s in ("auto", "cpu", "cuda", "mps"):
        return s
    if s.startswith("cuda:") and s[5:].isdigit() and len(s) <= 9:
        return s
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda, cuda:N or mps, got {str(text)[:40]!r}")


device_str.__name__ = "device"
