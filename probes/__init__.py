"""Probes of recursive-model states: per-cell targets, linear probes per step, trajectory projections.

Modules: ``probes.features`` (Sudoku cell targets), ``probes.linear``
(GroupKFold logistic-regression probes with a shuffled-label control),
``probes.projection`` (PCA / optional UMAP of trajectories, Plotly figures),
``probes.sae``/``probes.sae_features`` (sparse autoencoders per step, feature naming).
Names are imported lazily so ``import probes`` does not load scikit-learn.
"""

from __future__ import annotations

from common.lazy import lazy_exports

_EXPORTS = {
    "sudoku_targets": "probes.features",
    "candidate_counts": "probes.features",
    "prediction_correct": "probes.features",
    "probe_curves": "probes.linear",
    "probe_step": "probes.linear",
    "group_splits": "probes.linear",
    "probes_from_trace": "probes.linear",
    "pca_trajectories": "probes.projection",
    "umap_trajectories": "probes.projection",
    "pca_from_trace": "probes.projection",
    "umap_from_trace": "probes.projection",
    "trajectory_figure": "probes.projection",
    "train_sae": "probes.sae",
    "SparseAutoencoder": "probes.sae",
    "name_features": "probes.sae_features",
    "feature_trajectories": "probes.sae_features",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("probes", _EXPORTS, globals())
