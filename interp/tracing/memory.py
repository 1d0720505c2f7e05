"""Refuse, before any work, a trace that would not fit in memory, or a run whose sizes multiply past a limit."""

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


WORK_ENV = "RECURSE_MAX_PFLOP"
DEFAULT_MAX_PFLOP = 1000.0
"""Default work limit: 10^18 floating-point operations (hours on a large GPU, years on one CPU thread)."""


def max_work_flop() -> float:
    """The work limit in FLOP (``RECURSE_MAX_PFLOP`` petaFLOP, default :data:`DEFAULT_MAX_PFLOP`); garbage: one line."""
    from models.config import env_limit

    return env_limit(WORK_ENV, DEFAULT_MAX_PFLOP, 1e9, "petaFLOP") * 1e15


def estimate_run_cost(model: nn.Module, n_inputs: int, segments: int, passes: int = 1, copies: int = 1,
                      rows: int = 1) -> dict[str, float]:
    """Forward FLOP of ``n_inputs`` x ``segments`` x ``passes`` x ``copies`` and activation bytes of one batch.

    A segment costs one stack call per step hook (``step_hook_names(0)``), each about 2 x parameters x
    positions FLOP; a batch of ``rows`` puzzles (``copies`` each, e.g. tangent vectors) holds about 16
    float32 activations of positions x width per row at once."""
    P = int(getattr(model, "prefix_len", 0) or 0) + int(model.cfg.seq_len)
    D = int(model.cfg.hidden_size)
    n_params = sum(p.numel() for p in model.parameters())
    calls = len(model.step_hook_names(0)) if hasattr(model, "step_hook_names") else 1
    flop = 2.0 * n_params * P * max(1, calls) * segments * n_inputs * passes * copies
    mem = 16.0 * 4 * rows * copies * P * D
    return {"flop": flop, "bytes": mem}


def check_run_cost(model: nn.Module, n_inputs: int, segments: int, passes: int = 1, copies: int = 1, rows: int = 1,
                   where: str = "run", hint: str = "") -> dict[str, float]:
    """``estimate_run_cost`` refused in one line above ``RECURSE_MAX_PFLOP`` or ``RECURSE_MAX_MEMORY_GB``,
    before any work; ``hint`` names the options that shrink it."""
    from models.config import MEMORY_ENV, max_memory_bytes

    est = estimate_run_cost(model, n_inputs, segments, passes, copies, rows)
    limit = max_work_flop()
    if est["flop"] > limit:
        raise TraceError(f"{where}: about {est['flop'] / 1e15:.3g} PFLOP of forward passes ({n_inputs} input(s) x "
                         f"{segments} segment(s) x {passes} pass(es) x {copies} cop(ies)), above the limit of "
                         f"{limit / 1e15:g} PFLOP; {hint + ', or ' if hint else ''}set {WORK_ENV} to raise it")
    mem = max_memory_bytes()
    if est["bytes"] > mem:
        raise TraceError(f"{where}: about {est['bytes'] / 1e9:.1f} GB of activations at once ({rows} row(s) x {copies} "
                         f"cop(ies)), above the limit of {mem / 1e9:.1f} GB; {hint + ', or ' if hint else ''}set "
                         f"{MEMORY_ENV} to raise it")
    return est


__all__ = ["check_trace_memory", "check_run_cost", "estimate_run_cost", "max_work_flop", "WORK_ENV"]
