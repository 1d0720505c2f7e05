"""Per-step SAEs (one dictionary per step) and following their features across steps by decoder similarity.

The baseline the crosscoder (``probes.crosscoder``) is compared with: ``train_step_saes`` trains one
``probes.sae.SparseAutoencoder`` per step on that step's states only. Their features have no identity
across steps, so following one through the recursion needs a matching: ``track_features`` links each
feature of step t to the feature of step t+1 whose decoder direction has the largest cosine, when that
cosine is at least ``min_cos``, and counts the chains that run from the first step to the last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from probes.sae import SparseAutoencoder, fit_stats, train_sae


@dataclass
class StepSAEs:
    """One SAE per step, with the pooled fit statistics over all steps."""

    saes: list[SparseAutoencoder]
    stats: dict[str, float]
    step_fve: np.ndarray


def train_step_saes(x: np.ndarray, n_features: int, l1: float = 1e-2, k: int | None = None, steps: int = 2000,
                    seed: int = 0, batch_size: int = 1024, progress: bool = False) -> StepSAEs:
    """One SAE per step of trajectories ``x`` [M, T, D]; ``stats``: fve over all steps (pooled sums), l0 summed
    over steps (active features per trajectory, comparable with the crosscoder's), share of features alive."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 3:
        raise ValueError(f"x must be [M, T, D] trajectories, got shape {arr.shape}")
    saes, fves, sse, sst, l0, alive = [], [], 0.0, 0.0, 0.0, 0.0
    steps_iter = range(arr.shape[1])
    if progress:
        from tqdm.auto import tqdm

        steps_iter = tqdm(steps_iter, unit="step SAE", desc="per-step SAEs", leave=False)
    for t in steps_iter:
        xt = torch.from_numpy(np.ascontiguousarray(arr[:, t]))
        res = train_sae(xt, n_features, l1=l1, k=k, steps=steps, seed=seed + t, batch_size=batch_size)
        saes.append(res.sae)
        with torch.no_grad():
            xh, _ = res.sae(xt)
            e, s = float((xh - xt).pow(2).sum()), float((xt - xt.mean(0)).pow(2).sum())
        sse, sst = sse + e, sst + s
        fves.append(1 - e / max(s, 1e-12))
        st = fit_stats(res.sae, xt)
        l0 += st["l0"]
        alive += st["alive"] / arr.shape[1]
    return StepSAEs(saes, {"fve": 1 - sse / max(sst, 1e-12), "l0": l0, "alive": alive}, np.array(fves))


def _unit_rows(w: torch.Tensor) -> np.ndarray:
    a = w.detach().numpy().astype(np.float64)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def track_features(decoders: list[np.ndarray] | list[torch.Tensor], min_cos: float = 0.7) -> dict[str, float]:
    """Chains of best-cosine matches between consecutive steps' decoder rows (``decoders[t]`` [F_t, D]).

    Returns ``tracked_first_to_last`` (features of the first step whose chain reaches the last step),
    ``n_first``, ``tracked_share`` and ``mean_link_cos`` (mean best cosine over all consecutive links).
    """
    mats = [_unit_rows(torch.as_tensor(d)) for d in decoders]
    if len(mats) < 2:
        return {"tracked_first_to_last": float(len(mats[0])) if mats else 0.0, "n_first": float(len(mats[0]) if mats else 0),
                "tracked_share": 1.0, "mean_link_cos": float("nan")}
    alive = np.ones(len(mats[0]), dtype=bool)
    cur = np.arange(len(mats[0]))
    link_cos = []
    for a, b in zip(mats[:-1], mats[1:]):
        cos = a @ b.T
        best, arg = cos.max(1), cos.argmax(1)
        link_cos.append(best.mean())
        alive &= best[cur] >= min_cos
        cur = arg[cur]
    n = len(mats[0])
    return {"tracked_first_to_last": float(alive.sum()), "n_first": float(n), "tracked_share": float(alive.mean()),
            "mean_link_cos": float(np.mean(link_cos))}


def step_sae_decoders(s: StepSAEs, alive_only_x: np.ndarray | None = None) -> list[torch.Tensor]:
    """Decoder rows of each step's SAE; with ``alive_only_x`` [M, T, D], only the features that fire at that step."""
    out = []
    for t, sae in enumerate(s.saes):
        w = sae.W_dec.detach()
        if alive_only_x is not None:
            with torch.no_grad():
                fired = (sae.encode(torch.from_numpy(np.ascontiguousarray(alive_only_x[:, t], dtype=np.float32))) > 0).any(0)
            w = w[fired]
        out.append(w)
    return out


__all__ = ["StepSAEs", "train_step_saes", "track_features", "step_sae_decoders"]
