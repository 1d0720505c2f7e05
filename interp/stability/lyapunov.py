"""Finite-time Lyapunov exponents of a step map, with Jacobian-vector products (``torch.func``).

A *step map* ``f`` takes a dict of batched states ``{name: [B, ...]}`` to the
next dict of the same shapes; every batch row evolves on its own (rows never
mix). ``ftle`` runs ``z_{t+1} = f(z_t)`` for ``n_steps`` steps and pushes ``k``
tangent vectors per row through the Jacobian of ``f`` at each ``z_t``
(``torch.func.jvp``, ``vmap``-ed over the ``k`` tangents), re-orthonormalising
them with a QR decomposition after every step (Benettin's method). With
``V = J Q_t = Q_{t+1} R_t``, ``log|R_t[i, i]|`` is the log stretch of the i-th
direction at step t; the i-th finite-time exponent is its mean over steps.
``log|R_t[0, 0]|`` is the per-step log stretch of the leading direction, and
``||z_{t+1} - z_t||`` the per-step drift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.func import jvp, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

States = dict[str, torch.Tensor]
StepMap = Callable[[States], States]


@dataclass
class FTLEResult:
    """Per row (puzzle) and step; exponents are means of ``log_stretch`` over the steps after ``burn_in``."""

    log_stretch: torch.Tensor  # [B, T, k] log|R_t[i, i]| (natural log, per step)
    drift: torch.Tensor  # [B, T] ||z_{t+1} - z_t|| over all states together
    rel_drift: torch.Tensor  # [B, T] drift / ||z_t||
    states: list[States]  # z_0 .. z_T (detached)
    burn_in: int = 0

    @property
    def exponents(self) -> torch.Tensor:
        """[B, k] finite-time Lyapunov spectrum (largest first, up to QR ordering)."""
        return self.log_stretch[:, self.burn_in:].mean(dim=1)

    @property
    def largest(self) -> torch.Tensor:
        """[B] the leading finite-time exponent."""
        return self.exponents[:, 0]


def flat(states: States, names: list[str] | None = None) -> torch.Tensor:
    """The states of each row concatenated into one vector: [B, dim]."""
    names = names or sorted(states)
    return torch.cat([states[n].flatten(1) for n in names], dim=1)


def unflat(vec: torch.Tensor, like: States, names: list[str] | None = None) -> States:
    """Inverse of ``flat``: split [B, dim] (or [k, B, dim]) into tensors shaped like ``like``."""
    names = names or sorted(like)
    out, a = {}, 0
    lead = vec.shape[:-1]
    for n in names:
        size = like[n][0].numel()
        out[n] = vec[..., a:a + size].reshape(*lead, *like[n].shape[1:])
        a += size
    return out


def random_tangents(z: States, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``k`` orthonormal random tangent vectors per row: [B, dim, k]."""
    B, dim = flat(z).shape
    if not 1 <= k <= dim:
        raise ValueError(f"k must be in [1, {dim}] (the state dimension), got {k}")
    g = torch.randn(B, dim, k, generator=generator, dtype=torch.float64)
    q, _ = torch.linalg.qr(g)
    return q


def jvp_step(f: StepMap, z: States, tangents: torch.Tensor, batched: bool = True) -> tuple[States, torch.Tensor]:
    """``f(z)`` and ``J_f(z) v`` for each of the k tangents ``[B, dim, k]`` -> (f(z), [B, dim, k]).

    One ``torch.func.jvp`` per tangent, batched with ``vmap`` over k (``batched=False``: one after the
    other, for maps with data-dependent Python control flow, which ``vmap`` cannot run); attention runs on
    the math kernel, the one with a forward-mode derivative.
    """
    names = sorted(z)
    dtype = next(iter(z.values())).dtype
    t = unflat(tangents.permute(2, 0, 1).to(dtype), z, names)  # {name: [k, B, ...]}
    t = {n: t[n] for n in z}  # jvp wants the primals' key order

    def one(tan: States) -> tuple[States, States]:
        return jvp(f, (z,), (tan,))

    with sdpa_kernel(SDPBackend.MATH):  # the fused CPU attention kernels have no forward-mode derivative
        if not batched:
            pairs = [one({n: v[i] for n, v in t.items()}) for i in range(tangents.shape[2])]
            jv = {n: torch.stack([p[1][n] for p in pairs]) for n in names}
            return pairs[0][0], flat_k(jv, names)
        out, jv = vmap(one, in_dims=(0,))(t)  # the primal output comes back repeated k times
    return {n: v[0] for n, v in out.items()}, flat_k(jv, names)


def flat_k(jv: States, names: list[str]) -> torch.Tensor:
    """{name: [k, B, ...]} -> [B, dim, k]."""
    return torch.cat([jv[n].flatten(2) for n in names], dim=2).permute(1, 2, 0)


def ftle(f: StepMap | Sequence[StepMap], z0: States, n_steps: int, k: int = 1, burn_in: int = 0, seed: int = 0,
         batched: bool = True) -> FTLEResult:
    """Benettin estimate of the top-``k`` finite-time Lyapunov exponents of ``f`` from ``z0``; see module doc.

    ``f`` may be a sequence of ``n_steps`` maps, step ``t`` running ``f[t]`` (a non-autonomous loop, such as
    a looped model whose calls differ in their other arguments); ``batched``: as in ``jvp_step``."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if not 0 <= burn_in < n_steps:
        raise ValueError(f"burn_in must be in [0, {n_steps}), got {burn_in}")
    gen = torch.Generator().manual_seed(seed)
    z = {n: v.detach() for n, v in z0.items()}
    q = random_tangents(z, k, gen)
    stretch, drift, rel = [], [], []
    states = [z]
    if not callable(f) and len(f) != n_steps:
        raise ValueError(f"{len(f)} step maps for {n_steps} steps")
    for step in range(n_steps):
        fn = f if callable(f) else f[step]
        with torch.no_grad():  # forward-mode AD still runs; no reverse graph over the weights
            z_next, v = jvp_step(fn, z, q.to(next(iter(z.values())).device), batched)
        q, r = torch.linalg.qr(v.double().cpu())
        diag = torch.diagonal(r, dim1=-2, dim2=-1).abs()
        stretch.append(torch.log(diag.clamp_min(1e-300)))
        z_next = {n: t.detach() for n, t in z_next.items()}
        d = (flat(z_next) - flat(z)).double().norm(dim=1).cpu()
        drift.append(d)
        rel.append(d / flat(z).double().norm(dim=1).cpu().clamp_min(1e-300))
        z = z_next
        states.append(z)
    return FTLEResult(torch.stack(stretch, 1), torch.stack(drift, 1), torch.stack(rel, 1), states, burn_in)


__all__ = ["FTLEResult", "StepMap", "States", "ftle", "jvp_step", "random_tangents", "flat", "unflat"]
