"""Directions in a state space: what a steering or feature intervention adds, removes or clamps.

A :class:`Direction` is one vector ``v`` [D] in the space of one state (TRM ``y``, HRM ``z_H``, HRM-LM
``fast``...) and, optionally, a *coefficient* function: how much of the direction a state holds. For a
plain vector the coefficient is the projection ``<t, v> / |v|^2``; for a sparse-autoencoder feature it is
the feature's activation, and ``v`` is the feature's decoder row mapped back to state units. Any source
gives one: a user vector, a difference of means, a probe's weight, an SAE feature (:func:`sae_feature`),
or any dictionary's decoder row (a crosscoder's), so intervention code never depends on where a direction
came from. :func:`random_like` is the matched control: a random direction of the same norm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

Coefficient = Callable[[torch.Tensor], torch.Tensor]  # [..., D] states -> [...] amount of the direction


class DirectionError(ValueError):
    """A direction that cannot be used (wrong width, not finite, unknown feature): one-line message."""


@dataclass(frozen=True)
class Direction:
    """A vector ``vector`` [D] in the space of ``state``; ``coefficient`` (default: projection) reads how much of
    it a state holds. ``kind`` says where it came from (``mean_diff``, ``sae``, ``probe``, ``user``, ``random``);
    ``control`` marks a matched random control."""

    name: str
    vector: torch.Tensor
    state: str
    kind: str = "user"
    control: bool = False
    coefficient_fn: Coefficient | None = None

    def __post_init__(self):
        v = torch.as_tensor(self.vector)
        if v.dim() != 1 or v.numel() == 0:
            raise DirectionError(f"direction {self.name!r} must be a vector [D], got shape {list(v.shape)}")
        if not bool(torch.isfinite(v).all()):
            raise DirectionError(f"direction {self.name!r} holds NaN or inf")
        if float(v.norm()) == 0.0:
            raise DirectionError(f"direction {self.name!r} is the zero vector")
        object.__setattr__(self, "vector", v.detach().float().cpu())

    @property
    def width(self) -> int:
        return int(self.vector.numel())

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    def coefficient(self, t: torch.Tensor) -> torch.Tensor:
        """How much of the direction the states ``t`` [..., D] hold (feature activation or projection)."""
        if self.coefficient_fn is not None:
            return self.coefficient_fn(t)
        v = self.vector.to(t.device, t.dtype)
        return (t @ v) / (v @ v)

    def scaled_to(self, norm: float) -> Direction:
        """The same direction with ``|v| = norm`` (the coefficient rescaled to match)."""
        if not np.isfinite(norm) or norm <= 0:
            raise DirectionError(f"a direction's norm must be finite and > 0, got {norm}")
        k = norm / self.norm
        fn = self.coefficient_fn
        return replace(self, vector=self.vector * k, coefficient_fn=None if fn is None else (lambda t: fn(t) / k))


def check_width(direction: Direction, width: int, state: str | None = None) -> None:
    """One-line error unless ``direction`` lives in a ``width``-wide space (of ``state``, when given)."""
    if direction.width != width:
        raise DirectionError(f"direction {direction.name!r} has width {direction.width}, but the model's "
                             f"{state or direction.state} states have width {width}")
    if state is not None and direction.state != state:
        raise DirectionError(f"direction {direction.name!r} is for state {direction.state!r}, not {state!r}")


def random_like(direction: Direction, seed: int) -> Direction:
    """The matched control: a Gaussian random direction of the same norm and state (projection coefficient)."""
    g = torch.Generator().manual_seed(int(seed))
    v = torch.randn(direction.width, generator=g)
    v = v * (direction.norm / float(v.norm()))
    return Direction(f"random({direction.name})", v, direction.state, "random", True)


def mean_difference(positive: np.ndarray | torch.Tensor, negative: np.ndarray | torch.Tensor, state: str,
                    name: str = "mean_diff") -> Direction:
    """``mean(positive) - mean(negative)`` over samples [n, D] (e.g. states of solved minus failed puzzles)."""
    a = torch.as_tensor(np.asarray(positive, dtype=np.float32))
    b = torch.as_tensor(np.asarray(negative, dtype=np.float32))
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise DirectionError(f"mean difference needs two non-empty [n, D] sample sets, got {list(a.shape)} and {list(b.shape)}")
    return Direction(name, a.mean(0) - b.mean(0), state, "mean_diff")


def probe_direction(x: np.ndarray, y: np.ndarray, state: str, name: str = "probe", C: float = 1.0,
                    seed: int = 0) -> Direction:
    """The weight of a logistic-regression probe of ``y`` (bool [n]) on states ``x`` [n, D], in state units
    (pointing towards ``y = 1``)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=bool)
    if x.ndim != 2 or len(x) != len(y):
        raise DirectionError(f"a probe needs samples [n, D] and labels [n], got {list(x.shape)} and {list(y.shape)}")
    if y.all() or not y.any():
        raise DirectionError(f"a probe needs both classes; got {int(y.sum())} of {len(y)} positive")
    mu, sd = x.mean(0), x.std(0) + 1e-8
    clf = LogisticRegression(C=C, max_iter=500, random_state=seed).fit((x - mu) / sd, y)
    return Direction(name, torch.as_tensor(clf.coef_[0] / sd, dtype=torch.float32), state, "probe")


def sae_feature(sae, index: int, state: str, name: str | None = None) -> Direction:
    """Feature ``index`` of a :class:`probes.sae.SparseAutoencoder` as a direction: its decoder row in state
    units (``W_dec[i] * scale``); the coefficient is the feature's activation, so ablating it removes
    exactly the feature's share ``a_i W_dec[i] scale`` of the reconstruction."""
    n = int(sae.n_features)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= int(index) < n:
        raise DirectionError(f"unknown feature {index!r}: the dictionary has features 0..{n - 1}")
    i = int(index)
    vec = (sae.W_dec[i].detach() * sae.scale.detach()).float()

    def activation(t: torch.Tensor) -> torch.Tensor:
        shape = t.shape[:-1]
        with torch.no_grad():
            a = sae.encode(t.reshape(-1, t.shape[-1]).float())[:, i]
        return a.reshape(shape).to(t.dtype)

    return Direction(name or f"sae[{i}]", vec, state, "sae", False, activation)


def decoder_direction(decoder: np.ndarray | torch.Tensor, index: int, state: str, name: str | None = None,
                      kind: str = "dictionary") -> Direction:
    """Row ``index`` of any dictionary's decoder [F, D] (a crosscoder, an SAE loaded elsewhere) as a direction."""
    W = torch.as_tensor(np.asarray(decoder, dtype=np.float32)) if not isinstance(decoder, torch.Tensor) else decoder
    if W.dim() != 2:
        raise DirectionError(f"a decoder must be [features, D], got shape {list(W.shape)}")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= int(index) < W.shape[0]:
        raise DirectionError(f"unknown feature {index!r}: the dictionary has features 0..{W.shape[0] - 1}")
    return Direction(name or f"{kind}[{int(index)}]", W[int(index)], state, kind)


def crosscoder_feature(cc, index: int, slot: int, state: str, hook: str = "") -> Direction:
    """Feature ``index`` of a :class:`probes.crosscoder.StepCrosscoder` as a direction: its decoder row at step
    slot ``slot`` in state units (``W_dec[i, slot] * scale[slot]``), named ``crosscoder[i]@hook``."""
    if isinstance(slot, bool) or not 0 <= int(slot) < int(cc.n_steps):
        raise DirectionError(f"step slot {slot!r} is out of range: the crosscoder has slots 0..{int(cc.n_steps) - 1}")
    rows = (cc.W_dec.detach()[:, int(slot)] * cc.scale[int(slot)]).float()
    return decoder_direction(rows, index, state, f"crosscoder[{index}]@{hook or slot}", kind="sae")


__all__ = ["Coefficient", "Direction", "DirectionError", "check_width", "random_like", "mean_difference",
           "probe_direction", "sae_feature", "decoder_direction",
           "crosscoder_feature"]
