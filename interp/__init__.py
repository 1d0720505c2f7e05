"""Interpretability for recursive reasoning models: per-step traces, analyses, interventions.

Quick start::

    import interp
    from models.checkpoint import load_checkpoint

    model, meta = load_checkpoint("zoo/trm-sudoku9")
    tr = interp.trace(model, inputs, labels)          # a Trace (interp.tracing.trace)
    tr.summary("step")                                # per-step accuracy, loss, norms, ...
    interp.trace_to_disk(model, "data/sudoku/test", "traces/run1", states="summary")
    tr = interp.load_trace("traces/run1")             # no model needed

Names are imported lazily so ``import interp`` stays cheap (no pandas/torch
work until a function is used, never TransformerLens/nnsight/umap/sklearn).
"""

from __future__ import annotations

from common.lazy import lazy_exports

_EXPORTS = {
    "trace": "interp.tracing.tracer",
    "Trace": "interp.tracing.trace",
    "TraceError": "interp.tracing.trace",
    "trace_to_disk": "interp.tracing.stream",
    "trace_looped": "interp.tracing.looped",
    "wrap_looped": "interp.tracing.looped",
    "load_trace": "interp.tracing.store",
    "save_trace": "interp.tracing.store",
    "TraceIncompleteError": "interp.tracing.store",
    "build_schema": "interp.tracing.schema",
    "ablate": "interp.interventions.ablation",
    "patch": "interp.interventions.ablation",
    "slow_ablation_table": "interp.interventions.ablation",
    "fixed_point_residual": "interp.interventions.fixed_point",
    "multiple_fixed_points": "interp.interventions.fixed_point",
    "one_unknown_cell_probe": "interp.interventions.fixed_point",
    "synthetic_trace": "interp.tracing.synthetic",
    "attribute": "interp.causal.attribute",
    "make_pairs": "interp.causal.pairs",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("interp", _EXPORTS, globals())
