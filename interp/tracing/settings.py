"""Trace settings: stored-state dtypes, which states to keep and decode, and attention recording."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
from torch import nn

from interp.tracing.schema import StepSchema
from interp.tracing.trace import TraceError

STATE_DTYPES = {"float32": np.float32, "float16": np.float16}


def resolve_states(schema: StepSchema, states: str | Sequence[str] | None) -> list[str]:
    """``"all"`` -> every carried state, gate and recorded attention pattern; ``"summary"``/None -> none;
    a list -> checked names (aliases ok; ``pattern`` = every ``pattern.layer{k}``)."""
    every = [*schema.state_names, *schema.gate_states, *schema.pattern_states]
    if states is None or states == "summary":
        return []
    if states == "all":
        return every
    if isinstance(states, str):
        states = [states]
    alias = {"slow": schema.slow_state, "fast": schema.fast_state, "answer": schema.answer_state}
    out = []
    for s in states:
        if s == "pattern" and schema.pattern_states:
            out += [p for p in schema.pattern_states if p not in out]
            continue
        name = s if s in every else alias.get(s)
        if name is None or name not in every:
            hint = " (attention patterns need attention=True / --attention)" if s.startswith("pattern") else ""
            raise TraceError(f"unknown state {s!r} for a {schema.family} model (states: {', '.join(every)}){hint}")
        if name not in out:
            out.append(name)
    return out


def decode_state_list(schema: StepSchema, decode_latents: bool, model: nn.Module) -> list[str]:
    out = [schema.answer_state]
    if decode_latents:
        out += [s for s in schema.state_names if s != schema.answer_state]
    return out



@contextlib.contextmanager
def attention_recording(model: nn.Module, on: bool):
    """With ``on``, the model records its attention patterns (``model.record_attention``) inside the block only."""
    if not on:
        yield
        return
    if not hasattr(model, "record_attention"):
        raise TraceError(f"a {getattr(model.cfg, 'family', type(model).__name__)} model cannot record attention patterns")
    was = bool(getattr(model, "recording_attention", False))
    try:
        model.record_attention(True)
    except ValueError as e:
        raise TraceError(str(e)) from None
    try:
        yield
    finally:
        if not was:
            model.record_attention(False)


__all__ = ["STATE_DTYPES", "resolve_states", "decode_state_list", "attention_recording"]
