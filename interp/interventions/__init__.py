"""Experiments that change a run: ablation and activation patching (``ablation``), fixed-point
residuals and the one-unknown-cell probe (``fixed_point``). They need a model; analyses need only a trace.
"""
