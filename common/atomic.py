"""Atomic writes, the one implementation: files (``atomic_write*``) and directories (``atomic_dir``, ``replace_dir``).

A file is written to a temporary file beside the target, then ``os.replace``:
readers never see half a file, a failed write leaves no temporary file, and
the result gets the permissions a plain ``open`` would give (``mkstemp`` makes
0600 files, too strict for datasets, traces, figures and reports meant to be shared).
A directory is built in a temporary sibling (``.<name>.tmp-*``) and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


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


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False, mkdir: bool = True) -> Path:
    """``atomic_write`` of raw bytes."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), fsync=fsync, mkdir=mkdir)


def atomic_write_json(
    path: str | os.PathLike, obj: Any, indent: int | None = 2, default: Callable[[Any], Any] | None = None,
    fsync: bool = False, mkdir: bool = True,
) -> Path:
    """``atomic_write`` of ``obj`` as JSON (``indent``, ``default`` as in ``json.dumps``) plus a final newline."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=default) + "\n", fsync=fsync, mkdir=mkdir)


def old_dir(final: str | os.PathLike) -> Path:
    """``<final>.old``: where ``replace_dir(..., recoverable=True)`` keeps the previous version during a replace."""
    final = Path(final)
    return final.with_name(final.name + ".old")


def replace_dir(tmp: str | os.PathLike, final: str | os.PathLike, recoverable: bool = False) -> Path:
    """Move the finished directory ``tmp`` to ``final``, replacing an older ``final`` (moved aside, then deleted).

    By default the older ``final`` goes into a hidden temporary folder. With
    ``recoverable`` it goes to ``<final>.old``: a crash between the two renames
    then leaves ``<final>.old``, the previous complete version, which readers can
    fall back to and writers rename back (``models.checkpoint``); a stale
    ``<final>.old`` from an earlier crash is deleted too.
    """
    tmp, final = Path(tmp), Path(final)
    if recoverable:
        old = old_dir(final)
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
        os.replace(tmp, final)
        if old.exists():
            shutil.rmtree(old)
    elif final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory's entries (a rename inside it) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_dir_beside(final: str | os.PathLike, tag: str = "tmp") -> Path:
    """A new empty hidden directory ``.<name>.<tag>-*`` beside ``final`` (parents created), to build ``final`` in."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.{tag}-", dir=final.parent))


@contextmanager
def atomic_dir(final: str | os.PathLike, recoverable: bool = False, fsync: bool = False) -> Iterator[Path]:
    """Build the directory ``final`` atomically: fill the yielded temporary sibling, which then replaces ``final``.

    On an exception the temporary directory is deleted and ``final`` is untouched.
    ``recoverable``: see ``replace_dir``. ``fsync``: flush the new directory and
    its parent to disk around the rename.
    """
    final = Path(final)
    tmp = temp_dir_beside(final)
    try:
        yield tmp
        if fsync:
            fsync_dir(tmp)
        replace_dir(tmp, final, recoverable=recoverable)
        if fsync:
            fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


__all__ = ["file_mode", "atomic_write", "atomic_write_text", "atomic_write_bytes", "atomic_write_json", "old_dir",
           "replace_dir", "fsync_dir", "temp_dir_beside", "atomic_dir"]
