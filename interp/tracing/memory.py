"""Refuse, before any work, a trace that would not fit in memory."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from interp.tracing.schema import StepSchema
from interp.tracing.trace import TraceError


def check_trace_memory(model: nn.Module, schema: StepSchema, keep_states: Sequence[str], kept: int, rows: int,
                       length: int, n_decoded: int, where: str) -> int:
    """Refuse with one line, before any work, a trace that would hold more than ``RECURSE_MAX_MEMORY_GB`` at once.

    ``kept`` puzzles' full states and ``rows`` puzzles' summaries are in memory together (the whole trace
    for ``trace``, one chunk for ``trace_to_disk``). Full states count three times (device buffer,
    host parts, the concatenated chunk); summaries as their int64/float32 device buffers. Returns the bytes.
    """
    from models.config import MEMORY_ENV, max_memory_bytes

    P = int(getattr(model, "prefix_len", 0) or 0) + int(length)
    D, H = int(model.cfg.hidden_size), int(getattr(model.cfg, "num_heads", 1) or 1)
    per_step = 4 * sum(H * P * P if s in schema.pattern_states else P * D for s in keep_states)
    states = 3 * kept * (schema.n_steps + 1) * per_step
    summaries = rows * schema.n_steps * (16 + length * 12 * max(1, n_decoded))
    total = states + summaries
    limit = max_memory_bytes()
    if total > limit:
        raise TraceError(
            f"the trace would hold about {total / 1e9:.1f} GB in memory at once ({where}: full states of {kept} "
            f"puzzle(s) x {schema.n_steps} steps at {per_step / 1e6:.2f} MB per step, summaries of {rows}), above the "
            f"limit of {limit / 1e9:.1f} GB; keep states for fewer puzzles (--state-puzzles), use smaller chunks "
            f"(--chunk-size) or set {MEMORY_ENV}")
    return total


__all__ = ["check_trace_memory"]
