"""Units of causal analysis: one state written at one recurrent step, at one position.

A unit is a step hook (``seg3.h1.l0.hook_z_L``: z_L written by the L-update
(h=1, l=0) of segment 3) and a position (a Sudoku cell, a maze cell, a token).
The hook's place on the trace's step axis (global step, segment, state) comes
from the model's :class:`StepSchema`, so attribution tables line up with
traces. Gates (HRM-LM ``gate_fast``/``gate_slow``) are units too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from interp.causal.errors import CausalError
from interp.tracing.schema import StepSchema


@dataclass(frozen=True)
class UnitHook:
    """One step hook and where it sits on the step axis."""

    hook: str
    state: str
    step: int
    segment: int


def state_choices(schema: StepSchema) -> list[str]:
    return [*schema.state_names, *schema.gate_states]


def unit_hooks(schema: StepSchema, states: Sequence[str] | str | None = None,
               segments: Sequence[int] | None = None) -> list[UnitHook]:
    """The step hooks of ``states`` (default every state and gate) in step order, optionally only some segments."""
    every = state_choices(schema)
    if states is None or states == "all":
        wanted = every
    else:
        wanted = [states] if isinstance(states, str) else list(states)
        alias = {"slow": schema.slow_state, "fast": schema.fast_state, "answer": schema.answer_state}
        wanted = [alias.get(s) or s for s in wanted]
        unknown = [s for s in wanted if s not in every]
        if unknown:
            raise CausalError(f"unknown state {unknown[0]!r} for a {schema.family} model (states: {', '.join(every)})")
    segs = None if segments is None else set(int(s) for s in segments)
    out = [
        UnitHook(h, st, k, schema.steps[k].segment)
        for h, (k, st) in schema.hook_to_step.items()
        if st in wanted and (segs is None or schema.steps[k].segment in segs)
    ]
    return sorted(out, key=lambda u: (u.step, wanted.index(u.state)))


def units_frame(hooks: Sequence[UnitHook], n_positions: int, prefix_len: int = 0) -> pd.DataFrame:
    """One row per (hook, position): ``hook, segment, step, state, position`` (position = cell/token index;
    puzzle-embedding prefix positions are negative)."""
    rows = [(u.hook, u.segment, u.step, u.state, p - prefix_len) for u in hooks for p in range(n_positions)]
    return pd.DataFrame(rows, columns=["hook", "segment", "step", "state", "position"])


__all__ = ["UnitHook", "state_choices", "unit_hooks", "units_frame"]
