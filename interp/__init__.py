"""Interpretability for recursive reasoning models: per-step traces, analyses, interventions.

Quick start::

    import interp
    from models.checkpoint import load_checkpoint

    model, meta = load_checkpoint("zoo/trm-sudoku9")
    tr = interp.trace(model, inputs, labels)          # a Trace (interp.trace_format)
    tr.summary("step")                                # per-step accuracy, loss, norms, ...
    interp.trace_to_disk(model, "data/sudoku/test", "traces/run1", states="summary")
    tr = interp.load_trace("traces/run1")             # no model needed

Names are imported lazily so ``import interp`` stays cheap (no pandas/torch
work until a function is used, never TransformerLens/nnsight/umap/sklearn).
"""

from __future__ import annotations

from .lazy import lazy_exports

_EXPORTS = {
    "trace": "interp.tracer",
    "Trace": "interp.trace_format",
    "TraceError": "interp.trace_format",
    "trace_to_disk": "interp.storage",
    "load_trace": "interp.storage",
    "save_trace": "interp.storage",
    "TraceIncompleteError": "interp.storage",
    "build_schema": "interp.schema",
    "ablate": "interp.interventions",
    "patch": "interp.interventions",
    "slow_ablation_table": "interp.interventions",
    "fixed_point_residual": "interp.fixed_point_probes",
    "multiple_fixed_points": "interp.fixed_point_probes",
    "one_unknown_cell_probe": "interp.fixed_point_probes",
    "synthetic_trace": "interp.synthetic",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("interp", _EXPORTS, globals())
