"""Keep freed memory in the process instead of handing it back to the OS after every batch.

glibc's malloc returns freed memory at the top of its heap to the kernel once more than a
(dynamically chosen) trim threshold is free, and serves large blocks by ``mmap``. A per-step
tracer keeps a few more tensors alive than the plain forward, which shifts the heap so that
blocks of tens of MB are released and faulted back in batch after batch: on the 2-core CPU of
``benchmarks/RESULTS.md`` that was 0.2-1.7 million minor page faults and up to 0.9 s of kernel
time per 1,000 traced puzzles (``benchmarks/bench_trace.py`` prints the counts). Fixing the
thresholds keeps the freed memory for the next batch; the process's resident memory then stays
at its peak (which a bounded-memory trace already has to allow for).

``retain_freed_memory()`` is called by the ``interp`` command before it runs; a library user can
call it too. It does nothing outside glibc, or with ``RECURSE_MALLOC=default`` in the environment.
"""

from __future__ import annotations

import os

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD = 256 << 20  # blocks below 256 MiB come from the heap, where they can be reused
TRIM_THRESHOLD = 1 << 30  # hand memory back only when more than 1 GiB at the top of the heap is free
TOP_PAD = 64 << 20  # grow the heap in steps of 64 MiB

_applied: bool | None = None


def retain_freed_memory() -> bool:
    """Set glibc's malloc thresholds once per process; True if they are set (False: not glibc, or opted out)."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("RECURSE_MALLOC", "").strip().lower() == "default":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
            return False
        ok = all(libc.mallopt(param, value) == 1 for param, value in
                 ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
    except (OSError, AttributeError):
        return False
    _applied = ok
    return ok


__all__ = ["retain_freed_memory"]
