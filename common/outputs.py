"""Output folders this tool owns: the manifest of the files it wrote, and the checks before one is (re)written.

Every command that writes a folder records each file it wrote, by relative POSIX name and SHA-256, in the
folder's ``provenance.json`` (``{"tool": TOOL_MARK, "files": {name: sha256}, ...}``, :func:`record_outputs`).
Before writing again (a re-run, or ``--overwrite``), :func:`check_replaceable` refuses in one line when the folder
holds anything else: a file the record does not list (a user's ``thesis.tex``), a listed file whose bytes
changed since (a user edited ``report.md``), a symbolic link, or no record at all. Ownership is decided by the
record, never by a file's name. A symlinked output folder is never followed (:func:`ensure_out_not_symlink`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from .atomic import atomic_write_json
from .hashing import file_sha256
from .untrusted import read_json

TOOL_MARK = "recurse-interp"  # provenance.json's "tool": marks an output folder this project wrote
PROVENANCE = "provenance.json"
_HEX = frozenset("0123456789abcdef")


def listed_files(root: str | os.PathLike) -> list[str]:
    """Every file under ``root`` as a sorted relative POSIX path (what a provenance ``files`` record holds)."""
    r = Path(root)
    return sorted(p.relative_to(r).as_posix() for p in r.rglob("*") if p.is_file() or p.is_symlink())


def _is_sha(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 64 and set(v) <= _HEX


def recorded_files(out: str | os.PathLike, error: type[Exception] = ValueError) -> Optional[dict[str, Optional[str]]]:
    """``{name: sha256}`` from ``out/provenance.json`` when this tool wrote it (None when absent or foreign).
    A record from before hashes were kept (a list of names) maps each name to None: owned by name only."""
    try:
        prov = read_json(Path(out) / PROVENANCE, error, max_bytes=8 << 20)
    except FileNotFoundError:
        return None
    if not (isinstance(prov, dict) and prov.get("tool") == TOOL_MARK):
        return None
    files = prov.get("files")
    if isinstance(files, list) and all(isinstance(f, str) for f in files):
        return {f: None for f in files}
    if isinstance(files, dict) and all(isinstance(k, str) and _is_sha(v) for k, v in files.items()):
        return dict(files)
    return None


def unowned_files(out: str | os.PathLike, error: type[Exception] = ValueError,
                  known: Optional[Mapping[str, Optional[str]]] = None) -> list[str]:
    """Files under ``out`` this tool may not replace, each as ``"name (why)"``: not in the record (nor in
    ``known``, names a caller's own manifest lists, with their SHA-256 or None), changed since written, or a link."""
    root = Path(out)
    record = recorded_files(root, error) or {}
    allowed = {**record, **(known or {})}
    bad = []
    for name in listed_files(root):
        p = root / name
        if name == PROVENANCE and record:
            continue
        if p.is_symlink() or not p.is_file():
            bad.append(f"{name} (a link or special file)")
        elif name not in allowed:
            bad.append(f"{name} (not written by this tool)")
        elif allowed[name] is not None and file_sha256(p) != allowed[name]:
            bad.append(f"{name} (changed since this tool wrote it)")
    return bad


def check_replaceable(out: str | os.PathLike, error: type[Exception] = ValueError, what: str = "output",
                      known: Optional[Mapping[str, Optional[str]]] = None) -> bool:
    """Whether ``out`` may be (re)written: it is absent, empty, or holds only files its ``provenance.json``
    (or ``known``) lists with matching SHA-256. Anything else raises ``error`` in one line: a symlinked or
    non-directory ``out``, a foreign, modified or linked file, a non-empty folder without our record.
    Returns True when ``out`` holds a previous output."""
    p = ensure_out_not_symlink(out, error)
    if not p.exists():
        return False
    if not p.is_dir():
        raise error(f"refusing to write to {p}: it exists and is not a directory")
    if not listed_files(p):
        return False
    if recorded_files(p, error) is None and not known:
        names = listed_files(p)
        raise error(f"refusing to write to {p}: it is not empty and holds no {what} this tool wrote (no {PROVENANCE} "
                    f"record; {', '.join(names[:3])}{' ...' if len(names) > 3 else ''} (not written by this tool)); "
                    "choose another directory")
    bad = unowned_files(p, error, known)
    if bad:
        raise error(f"refusing to replace {p}: {'; '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; "
                    "move them or choose another directory")
    return True


def remove_owned(out: str | os.PathLike, error: type[Exception] = ValueError, what: str = "output",
                 known: Optional[Mapping[str, Optional[str]]] = None) -> None:
    """Delete a previous output (``--overwrite``): only after :func:`check_replaceable` found every file owned."""
    root = Path(out)
    if not check_replaceable(root, error, what, known):
        return
    for name in listed_files(root):
        (root / name).unlink()
    for d in sorted((d for d in root.rglob("*") if d.is_dir() and not d.is_symlink()), key=lambda d: -len(d.parts)):
        if not any(d.iterdir()):
            d.rmdir()


def record_outputs(out: str | os.PathLike, fields: Optional[Mapping[str, Any]] = None,
                   known: Optional[Mapping[str, str]] = None, names: Optional[Iterable[str]] = None) -> Path:
    """Write ``out/provenance.json``: ``fields`` plus every file under ``out`` (or ``names``) with its SHA-256
    (taken from ``known`` when given, e.g. chunk hashes a manifest already holds). Call it after the command
    wrote its files into a folder that :func:`check_replaceable` cleared; returns the record's path."""
    root = Path(out)
    files = sorted(set(listed_files(root) if names is None else names) - {PROVENANCE})
    known = known or {}
    record = {"tool": TOOL_MARK, **(fields or {}),
              "files": {f: known.get(f) or file_sha256(root / f) for f in files
                        if (root / f).is_file() and not (root / f).is_symlink()}}
    return atomic_write_json(root / PROVENANCE, record, indent=1, default=str)


def ensure_out_not_symlink(path: str | os.PathLike, error: type[Exception] = ValueError) -> Path:
    """Refuse an output path that is a symbolic link (writing through it would land somewhere else)."""
    p = Path(path)
    if p.is_symlink():
        raise error(f"refusing to write to {p}: it is a symbolic link (pass the real directory)")
    return p


__all__ = ["TOOL_MARK", "PROVENANCE", "listed_files", "recorded_files", "unowned_files", "check_replaceable",
           "remove_owned", "record_outputs", "ensure_out_not_symlink"]
