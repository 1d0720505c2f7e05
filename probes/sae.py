"""A small sparse autoencoder (ReLU + L1, or TopK) for per-step states, trained on CPU.

``a = act((x - mean) / scale @ W_enc + b_enc)``, ``x_hat = (a @ W_dec + b_dec) * scale + mean``;
decoder rows (the feature directions) are kept at unit norm after every Adam
step, so the L1 penalty cannot be dodged by shrinking activations and growing
the decoder. Inputs are centred and divided by their RMS norm (``scale``)
first, so the L1 coefficient means the same for any state size. ``k`` switches
to TopK (keep the k largest pre-activations per sample, no L1).

Why not ``sae-lens``: it trains on activations streamed from a TransformerLens
language model (hook names, token contexts, its own runner and config); the
states here are per-cell vectors of a recurrent model pooled over steps,
already in memory as arrays, and this module is about 100 lines with no
dependency beyond torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from probes.dictionary_training import train_dictionary


class SparseAutoencoder(nn.Module):
    """ReLU (L1) or TopK sparse autoencoder with unit-norm decoder rows."""

    def __init__(self, d_in: int, n_features: int, k: int | None = None, seed: int = 0):
        super().__init__()
        if k is not None and not 1 <= k <= n_features:
            raise ValueError(f"k must be in [1, {n_features}], got {k}")
        g = torch.Generator().manual_seed(seed)
        dec = F.normalize(torch.randn(n_features, d_in, generator=g), dim=1)
        self.W_dec = nn.Parameter(dec)
        self.W_enc = nn.Parameter(dec.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(n_features))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("mean", torch.zeros(d_in))
        self.register_buffer("scale", torch.ones(()))
        self.k = k

    @property
    def n_features(self) -> int:
        return self.W_dec.shape[0]

    def fit_normalisation(self, x: torch.Tensor) -> None:
        """Centre on the mean of ``x`` and divide by its RMS norm."""
        with torch.no_grad():
            self.mean.copy_(x.mean(0))
            self.scale.copy_((x - self.mean).norm(dim=1).pow(2).mean().sqrt().clamp_min(1e-8))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = ((x - self.mean) / self.scale - self.b_dec) @ self.W_enc + self.b_enc
        if self.k is None:
            return F.relu(pre)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, F.relu(top.values))

    def decode(self, a: torch.Tensor) -> torch.Tensor:
        return (a @ self.W_dec + self.b_dec) * self.scale + self.mean

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.encode(x)
        return self.decode(a), a

    def decoder_direction(self, feature: int, step: int | None = None) -> torch.Tensor:
        """Unit vector [d_in] in state space that ``feature`` writes (``step`` is ignored: one dictionary for all
        steps; the same call as ``probes.crosscoder.StepCrosscoder.decoder_direction``)."""
        if not 0 <= feature < self.n_features:
            raise IndexError(f"feature {feature} is out of range (the SAE has {self.n_features})")
        return F.normalize(self.W_dec.detach()[feature], dim=0)

    def normalise_decoder(self) -> None:
        with torch.no_grad():
            self.W_dec.copy_(F.normalize(self.W_dec, dim=1))


@dataclass
class SAETraining:
    """A trained SAE with its loss history and final fit statistics."""

    sae: SparseAutoencoder
    history: list[dict[str, float]] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)


def fit_stats(sae: SparseAutoencoder, x: torch.Tensor, batch: int = 8192) -> dict[str, float]:
    """Fraction of variance explained, mean active features per sample (L0), fraction of features ever active."""
    sse, sst, l0, alive = 0.0, 0.0, 0.0, torch.zeros(sae.n_features, dtype=torch.bool)
    with torch.no_grad():
        for a in range(0, x.shape[0], batch):
            xb = x[a:a + batch]
            xh, act = sae(xb)
            sse += float((xh - xb).pow(2).sum())
            sst += float((xb - sae.mean).pow(2).sum())
            l0 += float((act > 0).sum())
            alive |= (act > 0).any(0)
    return {"fve": 1 - sse / max(sst, 1e-12), "l0": l0 / max(1, x.shape[0]), "alive": float(alive.float().mean())}


def train_sae(
    x: np.ndarray | torch.Tensor,
    n_features: int,
    l1: float = 1e-2,
    k: int | None = None,
    steps: int = 2000,
    batch_size: int = 1024,
    lr: float = 3e-3,
    seed: int = 0,
    log_every: int = 100,
) -> SAETraining:
    """Train an SAE on samples ``x`` [n, d] (e.g. per-cell states pooled over puzzles and steps) with Adam."""
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.float()
    if xt.dim() != 2 or xt.shape[0] < 2:
        raise ValueError(f"x must be [n >= 2, d] samples, got shape {list(xt.shape)}")
    sae = SparseAutoencoder(xt.shape[1], n_features, k=k, seed=seed)
    sae.fit_normalisation(xt)

    def step_loss(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xn = (xb - sae.mean) / sae.scale
        a = sae.encode(xb)
        mse = (a @ sae.W_dec + sae.b_dec - xn).pow(2).sum(-1).mean()
        return mse, a.sum(-1).mean(), a  # decoder rows have unit norm, so the sparsity is the usual L1 term

    history = train_dictionary(sae, xt, step_loss, 0.0 if k is not None else l1, steps, batch_size, lr, seed, log_every,
                               after_step=sae.normalise_decoder)
    return SAETraining(sae, history, fit_stats(sae, xt))


def encode_array(sae: SparseAutoencoder, x: np.ndarray, batch: int = 65536) -> np.ndarray:
    """Feature activations of ``x`` [..., d] -> [..., n_features] (float32)."""
    arr = np.asarray(x, dtype=np.float32)
    flat = arr.reshape(-1, arr.shape[-1])
    out = np.empty((flat.shape[0], sae.n_features), dtype=np.float32)
    with torch.no_grad():
        for a in range(0, flat.shape[0], batch):
            out[a:a + batch] = sae.encode(torch.from_numpy(flat[a:a + batch])).numpy()
    return out.reshape(*arr.shape[:-1], sae.n_features)


__all__ = ["SparseAutoencoder", "SAETraining", "train_sae", "fit_stats", "encode_array"]
