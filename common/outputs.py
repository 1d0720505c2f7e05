"""Output folders this tool owns: the provenance marker, and the checks before one is (re)written."""

from __future__ import annotations

import os
from pathlib import Path

from .untrusted import read_json

TOOL_MARK = "recurse-interp"  # provenance.json's "tool": marks an output folder this project wrote


def listed_files(root: str | os.PathLike) -> list[str]:
    """Every file under ``root`` as a sorted relative POSIX path (what a provenance ``files`` list records)."""
    r = Path(root)
    return sorted(p.relative_to(r).as_posix() for p in r.rglob("*") if p.is_file() or p.is_symlink())


def check_replaceable(out: str | os.PathLike, error: type[Exception] = ValueError, what: str = "output") -> bool:
    """Whether ``out`` may be (re)written: it is absent, empty, or holds only files that its own
    ``provenance.json`` (``"tool": TOOL_MARK``) lists as written by this tool. Anything else raises ``error``:
    a symlink, a file, a folder with a foreign file (a user's notebook) or without our marker.
    Returns True when ``out`` holds a previous output."""
    p = ensure_out_not_symlink(out, error)
    if not p.exists():
        return False
    if not p.is_dir():
        raise error(f"refusing to write to {p}: it exists and is not a directory")
    present = listed_files(p)
    if not present:
        return False
    try:
        prov = read_json(p / "provenance.json", error, max_bytes=8 << 20)
    except FileNotFoundError:
        prov = None
    if not (isinstance(prov, dict) and prov.get("tool") == TOOL_MARK and isinstance(prov.get("files"), list)):
        raise error(f"refusing to write to {p}: it is not empty and holds no {what} this tool wrote "
                    "(no provenance.json marker); choose another directory")
    foreign = sorted(set(present) - set(map(str, prov["files"])) - {"provenance.json"})
    if foreign:
        raise error(f"refusing to replace {p}: it holds files this tool did not write "
                    f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); move them or choose another directory")
    return True


def ensure_out_not_symlink(path: str | os.PathLike, error: type[Exception] = ValueError) -> Path:
    """Refuse an output path that is a symbolic link (writing through it would land somewhere else)."""
    p = Path(path)
    if p.is_symlink():
        raise error(f"refusing to write to {p}: it is a symbolic link (pass the real directory)")
    return p


__all__ = ["TOOL_MARK", "listed_files", "check_replaceable", "ensure_out_not_symlink"]
