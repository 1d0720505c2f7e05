"""Recognising a full disk or a file-size limit in an exception, whichever library raised it."""

from __future__ import annotations

import errno

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DISK_FULL_TEXT = ("no space left", "disk quota", "file too large", "errno 28", "os error 28", "os error 27",
                   "os error 122")


def is_disk_full(e: BaseException) -> bool:
    """Whether ``e`` reports a full disk or a file size limit, also safetensors' own ``SafetensorError``."""
    if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
        return True
    text = str(e).lower()
    return type(e).__name__ in ("SafetensorError", "OSError", "RuntimeError", "IOError") and any(
        t in text for t in _DISK_FULL_TEXT)


__all__ = ["DISK_FULL_ERRNOS", "is_disk_full"]
