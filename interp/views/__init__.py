"""Interactive Plotly views: the per-puzzle step viewer (``trace_viewer``, grids drawn by ``grid``) and
dataset-level figures (``dataset_figures``). Static matplotlib figures for reports are in ``interp.report.figures``.
"""
