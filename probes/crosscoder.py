"""A crosscoder over the steps of a recursion: one shared latent per (puzzle, cell), per-step encoders and decoders.

Samples are trajectories ``x`` [M, T, D]: one state (e.g. TRM ``y``) of one cell of one puzzle after each of
the T steps that update it. Following Lindsey et al. (2024, "acausal" crosscoder, with steps in place of
layers)::

    f       = ReLU(sum_t xn_t @ W_enc[t] + b_enc)           one activation per feature for the whole trajectory
    xn_hat_t = f @ W_dec[:, t] + b_dec[t]                   every step reconstructed from the same f
    loss    = sum_t |xn_t - xn_hat_t|^2 + l1 * sum_i f_i * sum_t |W_dec[i, t]|

where ``xn_t = (x_t - mean_t) / scale_t`` is normalised per step (``scale_t``: the step's RMS norm). The
L1 is weighted by the sum of the feature's per-step decoder norms, so a feature pays for every step it
writes to: a feature needed at only some steps is pushed to zero decoder norm at the others. The decoder
norm profile ``|W_dec[i, t]|`` over t is how a feature is followed through the recursion
(:func:`step_profiles`): present at every step (*persistent*), from some step on (*appearing*), up to
some step (*fading*), or in a window (*transient*). ``k`` switches to TopK on the shared latent (no L1).

Why this form and not one shared dictionary with per-step decoders: the states of a recursion drift
(step norms differ several-fold on the zoo models) and a feature can write different directions at
different steps; per-step encoders and decoders with one latent allow both, and the decoder norms answer
"at which steps is this feature there" directly. The per-step strength ``f_i * |W_dec[i, t]|``
(:meth:`StepCrosscoder.step_activations`) is what feature pages and trajectories show.

Steering code needs only: ``decoder_direction(i, t)`` (unit vector in state space), ``n_features``,
``n_steps``, ``d_in`` and ``encode``/``decode``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from probes.dictionary_training import train_dictionary


class StepCrosscoder(nn.Module):
    """Acausal crosscoder over T steps of a d_in-dimensional state, with n_features shared latents."""

    def __init__(self, n_steps: int, d_in: int, n_features: int, k: int | None = None, seed: int = 0):
        super().__init__()
        if k is not None and not 1 <= k <= n_features:
            raise ValueError(f"k must be in [1, {n_features}], got {k}")
        g = torch.Generator().manual_seed(seed)
        dec = F.normalize(torch.randn(n_features, n_steps, d_in, generator=g), dim=-1) / n_steps ** 0.5
        self.W_dec = nn.Parameter(dec)
        self.W_enc = nn.Parameter(dec.permute(1, 2, 0).clone())  # [T, D, F]
        self.b_enc = nn.Parameter(torch.zeros(n_features))
        self.b_dec = nn.Parameter(torch.zeros(n_steps, d_in))
        self.register_buffer("mean", torch.zeros(n_steps, d_in))
        self.register_buffer("scale", torch.ones(n_steps))
        self.k = k

    @property
    def n_features(self) -> int:
        return self.W_dec.shape[0]

    @property
    def n_steps(self) -> int:
        return self.W_dec.shape[1]

    @property
    def d_in(self) -> int:
        return self.W_dec.shape[2]

    def fit_normalisation(self, x: torch.Tensor) -> None:
        """Per step: centre on the mean and divide by the RMS norm of ``x`` [M, T, D]."""
        with torch.no_grad():
            self.mean.copy_(x.mean(0))
            self.scale.copy_((x - self.mean).norm(dim=-1).pow(2).mean(0).sqrt().clamp_min(1e-8))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale[:, None]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Trajectories [M, T, D] -> shared feature activations [M, F]."""
        pre = torch.einsum("mtd,tdf->mf", self.normalise(x), self.W_enc) + self.b_enc
        if self.k is None:
            return F.relu(pre)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, F.relu(top.values))

    def decode_normalised(self, f: torch.Tensor) -> torch.Tensor:
        return torch.einsum("mf,ftd->mtd", f, self.W_dec) + self.b_dec

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Feature activations [M, F] -> trajectories [M, T, D] in state units."""
        return self.decode_normalised(f) * self.scale[:, None] + self.mean

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.encode(x)
        return self.decode(f), f

    def decoder_norms(self) -> torch.Tensor:
        """[F, T]: how much feature i writes at step t (normalised units)."""
        return self.W_dec.detach().norm(dim=-1)

    def decoder_direction(self, feature: int, step: int) -> torch.Tensor:
        """Unit vector [D] in state space that feature ``feature`` writes at step index ``step``."""
        if not 0 <= feature < self.n_features:
            raise IndexError(f"feature {feature} is out of range (the crosscoder has {self.n_features})")
        if not 0 <= step < self.n_steps:
            raise IndexError(f"step index {step} is out of range (the crosscoder has {self.n_steps} steps)")
        return F.normalize(self.W_dec.detach()[feature, step] * self.scale[step], dim=0)

    def step_activations(self, f: torch.Tensor) -> torch.Tensor:
        """Per-step strength ``f_i * |W_dec[i, t]|``: [M, F] -> [M, T, F]."""
        return f[:, None, :] * self.decoder_norms().T[None]


@dataclass
class CrosscoderTraining:
    """A trained crosscoder with its loss history and fit statistics (overall and per step)."""

    crosscoder: StepCrosscoder
    history: list[dict[str, float]] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    step_fve: np.ndarray | None = None


def crosscoder_stats(cc: StepCrosscoder, x: torch.Tensor, batch: int = 8192) -> tuple[dict[str, float], np.ndarray]:
    """Fraction of variance explained (overall, and per step [T]), active features per trajectory, share alive."""
    T = cc.n_steps
    sse, sst = torch.zeros(T, dtype=torch.float64), torch.zeros(T, dtype=torch.float64)
    l0, alive = 0.0, torch.zeros(cc.n_features, dtype=torch.bool)
    with torch.no_grad():
        for a in range(0, x.shape[0], batch):
            xb = x[a:a + batch]
            xh, f = cc(xb)
            sse += (xh - xb).pow(2).sum((0, 2)).double()
            sst += (xb - cc.mean).pow(2).sum((0, 2)).double()
            l0 += float((f > 0).sum())
            alive |= (f > 0).any(0)
    step_fve = (1 - sse / sst.clamp_min(1e-12)).numpy()
    stats = {"fve": float(1 - sse.sum() / sst.sum().clamp_min(1e-12)), "l0": l0 / max(1, x.shape[0]),
             "alive": float(alive.float().mean())}
    return stats, step_fve


def train_crosscoder(
    x: np.ndarray | torch.Tensor,
    n_features: int,
    l1: float = 1e-2,
    k: int | None = None,
    steps: int = 2000,
    batch_size: int = 1024,
    lr: float = 3e-3,
    seed: int = 0,
    log_every: int = 100,
    progress: bool = False,
) -> CrosscoderTraining:
    """Train a crosscoder on trajectories ``x`` [M, T, D] (e.g. per-cell states over steps) with Adam
    (``progress``: a bar on stderr)."""
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.float()
    if xt.dim() != 3 or xt.shape[0] < 2:
        raise ValueError(f"x must be [M >= 2, T, D] trajectories, got shape {list(xt.shape)}")
    torch.manual_seed(seed)
    cc = StepCrosscoder(xt.shape[1], xt.shape[2], n_features, k=k, seed=seed)
    cc.fit_normalisation(xt)

    def step_loss(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = cc.encode(xb)
        mse = (cc.decode_normalised(f) - cc.normalise(xb)).pow(2).sum((-1, -2)).mean()
        return mse, (f * cc.W_dec.norm(dim=-1).sum(-1)).sum(-1).mean(), f

    history = train_dictionary(cc, xt, step_loss, 0.0 if k is not None else l1, steps, batch_size, lr, seed, log_every,
                               desc="crosscoder" if progress else None)
    stats, step_fve = crosscoder_stats(cc, xt)
    return CrosscoderTraining(cc, history, stats, step_fve)


def encode_trajectories(cc: StepCrosscoder, x: np.ndarray, batch: int = 16384) -> np.ndarray:
    """Shared activations of trajectories ``x`` [..., T, D] -> [..., F] (float32)."""
    arr = np.asarray(x, dtype=np.float32)
    flat = arr.reshape(-1, arr.shape[-2], arr.shape[-1])
    out = np.empty((flat.shape[0], cc.n_features), dtype=np.float32)
    with torch.no_grad():
        for a in range(0, flat.shape[0], batch):
            out[a:a + batch] = cc.encode(torch.from_numpy(flat[a:a + batch])).numpy()
    return out.reshape(*arr.shape[:-2], cc.n_features)


def crosscoder_step_acts(cc: StepCrosscoder, states: np.ndarray) -> np.ndarray:
    """Per-step strengths [N, T, L, F] of states [N, T, L, D] (the layout of ``probes.sae.encode_array``)."""
    s = np.asarray(states, dtype=np.float32)
    traj = np.moveaxis(s, 1, 2)  # [N, L, T, D]
    f = encode_trajectories(cc, traj)  # [N, L, F]
    norms = cc.decoder_norms().numpy()  # [F, T]
    return np.ascontiguousarray(f[:, None, :, :] * norms.T[None, :, None, :])


PROFILE_KINDS = ("persistent", "appearing", "fading", "transient", "dead")


def step_profiles(norms: np.ndarray, alive: np.ndarray | None = None, present: float = 0.25) -> pd.DataFrame:
    """Classify features by their per-step decoder norms ``norms`` [F, T].

    A feature is *present* at step t when its norm there is at least ``present`` times its largest norm.
    Kinds: ``persistent`` (present at every step), ``appearing`` (absent at the first step, present from its
    onset to the last), ``fading`` (present from the first step up to its offset, absent at the last),
    ``transient`` (anything else), ``dead`` (``alive`` False: never active on the data). Rows: feature, kind,
    onset, offset (first and last step index where present), n_present, peak (step index of the largest norm).
    """
    n = np.asarray(norms, dtype=np.float64)
    F_, T = n.shape
    top = n.max(1, keepdims=True)
    pres = n >= present * np.where(top > 0, top, np.inf)
    rows = []
    for i in range(F_):
        on = np.flatnonzero(pres[i])
        if (alive is not None and not alive[i]) or on.size == 0:
            rows.append({"feature": i, "kind": "dead", "onset": -1, "offset": -1, "n_present": 0, "peak": -1})
            continue
        contiguous = on.size == on[-1] - on[0] + 1
        if on.size == T:
            kind = "persistent"
        elif contiguous and on[-1] == T - 1:
            kind = "appearing"
        elif contiguous and on[0] == 0:
            kind = "fading"
        else:
            kind = "transient"
        rows.append({"feature": i, "kind": kind, "onset": int(on[0]), "offset": int(on[-1]),
                     "n_present": int(on.size), "peak": int(n[i].argmax())})
    return pd.DataFrame(rows)


__all__ = ["StepCrosscoder", "CrosscoderTraining", "train_crosscoder", "crosscoder_stats", "encode_trajectories",
           "crosscoder_step_acts", "step_profiles", "PROFILE_KINDS"]
