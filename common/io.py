"""Atomic file writes for every interp/probes output: a temporary file beside the target, then ``os.replace``.

Readers never see half a file, a failed write leaves no temporary file, and
the result gets the permissions a plain ``open`` would give (``mkstemp`` makes
0600 files, too strict for traces, figures and reports meant to be shared).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def file_mode() -> int:
    """The mode a plain ``open`` would give a new file: 0o666 minus the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any], fsync: bool = False, mkdir: bool = True) -> Path:
    """Create ``path`` atomically: ``write(tmp)`` fills a temporary file in the same directory, which replaces ``path``.

    ``fsync`` flushes the data to disk before the rename; ``mkdir`` creates missing parent directories.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())  # after writing: some writers (safetensors) keep mkstemp's 0600
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, fsync: bool = False, mkdir: bool = True) -> Path:
    """``atomic_write`` of a UTF-8 text file."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), fsync=fsync, mkdir=mkdir)


__all__ = ["atomic_write", "atomic_write_text", "file_mode"]
