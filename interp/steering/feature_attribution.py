"""Feature attribution: gradient x activation of dictionary features for every (step, feature, cell).

A dictionary (an SAE, a crosscoder) reads a state ``t`` [D] as feature activations ``a = encode(t)`` [F] and
writes feature ``f`` as the decoder row ``d_f`` [D] in state units. Removing feature ``f`` at one step and
cell changes the state by ``-a_f d_f``; to first order the metric then moves by ``-a_f <d_f, dM/dt>``. The
score is the feature's first-order contribution

    score(step, f, cell) = a_f(t) * <d_f, dM/dt>        (M(run) - M(run with f removed there), to first order)

with ``dM/dt`` the total derivative of the metric of the last segment through every later step and segment,
from :func:`interp.causal.attribution.unit_gradients` (the attribution-patching machinery, one backward per
segment under :func:`models.grad.full_graph`). Where the metric is linear in the state (the last answer state
of a model with a linear head, ``logit_diff`` with fixed foils) the score is exactly the effect of ablating
the feature (:func:`interp.steering.intervene.direction_hooks` with ``mode="ablate"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from interp.causal.attribution import cached_run, unit_gradients
from interp.causal.metrics import answer_alphabet, metric_fn
from interp.causal.runner import SegmentRunner
from interp.causal.units import unit_hooks
from interp.steering.run import resolve_state, target_mask

Encoder = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class FeatureScores:
    """``scores`` and ``activations`` [B, T, P, F] at the hooks ``hooks`` (global steps ``steps`` [T],
    segments ``segments`` [T]); positions include a puzzle-embedding prefix of ``prefix_len``."""

    scores: np.ndarray
    activations: np.ndarray
    hooks: list[str]
    steps: np.ndarray
    segments: np.ndarray
    prefix_len: int = 0

    def frame(self, min_activation: float = 0.0) -> pd.DataFrame:
        """Long table of the (puzzle, step, cell, feature) entries with activation above ``min_activation``:
        ``puzzle, segment, step, hook, position, feature, activation, score`` (position: cell index)."""
        b, t, p, f = np.nonzero(self.activations > min_activation)
        return pd.DataFrame({"puzzle": b, "segment": self.segments[t], "step": self.steps[t],
                             "hook": np.asarray(self.hooks, dtype=object)[t], "position": p - self.prefix_len,
                             "feature": f, "activation": self.activations[b, t, p, f], "score": self.scores[b, t, p, f]})


def sae_dictionary(sae) -> tuple[Encoder, torch.Tensor]:
    """``(encode, decoder [F, D] in state units)`` of a :class:`probes.sae.SparseAutoencoder`: a feature's share of
    the reconstruction is ``a_f * W_dec[f] * scale``."""
    return (lambda t: sae.encode(t)), (sae.W_dec.detach() * sae.scale.detach()).float()


def feature_attribution(model: nn.Module, inputs: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                        encode: Encoder, decoder: torch.Tensor, state: str = "answer", metric: str = "logit_diff",
                        targets: np.ndarray | None = None, n_segments: int | None = None,
                        segments: list[int] | None = None) -> FeatureScores:
    """Gradient x activation of every feature at every update of ``state`` (optionally only in ``segments``),
    every position, for each puzzle of ``inputs`` [B, L]; see the module docstring.

    ``metric``: ``logit_diff`` (foils fixed at the run's own best wrong answer, so the metric is linear in the
    logits), ``logit_diff_max`` or ``cross_entropy``, averaged over ``targets`` (default: the labelled positions
    whose label differs from the input)."""
    model.eval()
    runner = SegmentRunner(model, n_segments)
    name = resolve_state(runner, state)
    hooks = unit_hooks(runner.schema, name, segments)
    from models.device import model_device

    dev = model_device(model)
    x = torch.as_tensor(np.asarray(inputs), device=dev).long()
    y = torch.as_tensor(np.asarray(labels), device=dev).long()
    if targets is None:
        targets = target_mask(x.cpu().numpy(), y.cpu().numpy())
    tg = torch.as_tensor(np.asarray(targets, dtype=bool), device=dev)
    batch = runner.prepare(x, None)
    logits, carries, values = cached_run(runner, batch, hooks)
    alphabet = answer_alphabet(y, int(model.cfg.vocab_size))
    if metric not in ("logit_diff", "logit_diff_max", "cross_entropy"):
        raise ValueError(f"feature attribution needs a differentiable metric (logit_diff, logit_diff_max, "
                         f"cross_entropy), got {metric!r}")
    fn = metric_fn(metric, y, tg, alphabet, source_logits=logits)
    grads = unit_gradients(runner, batch, carries, fn, hooks)
    W = decoder.to(dev).double()
    scores, acts = [], []
    with torch.no_grad():
        for u in hooks:
            v = values[u.hook]
            if v.shape[-1] != W.shape[1]:
                raise ValueError(f"the dictionary has width {W.shape[1]}, the state at {u.hook} {v.shape[-1]}")
            a = encode(v.float()).double()  # [B, P, F]
            acts.append(a.cpu().numpy())
            scores.append((a * (grads[u.hook].double() @ W.T)).cpu().numpy())
    return FeatureScores(np.stack(scores, 1), np.stack(acts, 1), [u.hook for u in hooks],
                         np.array([u.step for u in hooks]), np.array([u.segment for u in hooks]),
                         int(getattr(model, "prefix_len", 0)))


__all__ = ["Encoder", "FeatureScores", "sae_dictionary", "feature_attribution"]
