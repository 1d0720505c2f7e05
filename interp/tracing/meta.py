"""The metadata stored with every trace: model, schema, settings, provenance and versions."""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from interp.tracing.model_hash import checkpoint_info, model_sha256
from interp.tracing.schema import StepSchema
from interp.tracing.trace import FORMAT


def trace_meta(model: nn.Module, schema: StepSchema, *, seq_len: int, labelled: bool, decode_states: list[str],
               stored: list[str], state_dtype: str, task: Any = None, checkpoint: str | os.PathLike | None = None,
               intervened: bool = False, extra: dict | None = None, model_hash: str | None = None) -> dict[str, Any]:
    """Metadata stored with every trace (JSON-serialisable); ``model_hash``: ``model_sha256(model)`` if known."""
    import importlib.metadata as im

    if isinstance(task, str):
        task = {"name": task}
    try:
        version = im.version("recurse-interp")
    except im.PackageNotFoundError:
        version = "dev"
    return {
        "format": FORMAT,
        "family": schema.family,
        "model_config": model.cfg.to_dict(),
        "state_names": list(schema.state_names),
        "answer_state": schema.answer_state,
        "slow_state": schema.slow_state,
        "fast_state": schema.fast_state,
        "gate_states": list(schema.gate_states),
        "decoded_states": decode_states,
        "stored_states": stored,
        "fusion_sources": list(getattr(model, "fusion_sources", ())),
        "prefix_len": int(getattr(model, "prefix_len", 0)),
        "seq_len": int(seq_len),
        "hidden_size": int(model.cfg.hidden_size),
        "vocab_size": int(model.cfg.vocab_size),
        "n_segments": schema.n_segments,
        "segment_unit": "pass" if schema.family in ("hrm_lm", "hrm_text", "looped") else "segment",
        "n_steps": schema.n_steps,
        "labelled": labelled,
        "state_dtype": state_dtype,
        "task": task,
        "checkpoint": checkpoint_info(checkpoint),
        "model_sha256": model_hash or model_sha256(model),
        "intervened": intervened,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"recurse-interp": version, "torch": torch.__version__, "numpy": np.__version__},
        **({"pattern_states": list(schema.pattern_states)} if schema.pattern_states else {}),
        **({"variable_steps": True} if schema.variable_steps else {}),
        **(extra or {}),
    }


__all__ = ["trace_meta"]
