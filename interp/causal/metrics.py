"""Metrics of a run's answer that patching and attribution explain (differentiable where they must be).

* ``logit_diff``: at each target position, the logit of the correct token minus
  the logit of the best wrong answer token, averaged over the target positions
  of a row (> 0 means the answer is right). As in IOI-style patching the wrong
  token is fixed per pair and position ("foil"): the best wrong token of the
  *source* run (for a corrupted Sudoku, the digit the corrupted puzzle leads the
  model to). A fixed foil keeps the metric linear in the logits, so a patch of
  the final answer state is scored exactly by first-order attribution;
* ``logit_diff_max``: the same with the wrong token re-chosen in every run
  (correct minus the largest other logit), a max that first-order methods
  cannot follow where the best wrong token switches;
* ``cross_entropy``: mean negative log-likelihood of the correct tokens at the targets;
* ``exact``: 1.0 when every labelled position is right (not differentiable:
  patching only).

The answer alphabet is the set of tokens that occur in the labels (Sudoku: the
digits), so "best wrong" never picks padding or the blank token; a language
model's single next-token target uses the whole vocabulary (the usual token
logit difference against the best other token).
"""

from __future__ import annotations

import torch


def _wide(logits: torch.Tensor) -> torch.Tensor:
    """Logits in float32, or float64 when they already are (a float64 model keeps its precision)."""
    return logits if logits.dtype == torch.float64 else logits.float()

METRICS = ("logit_diff", "logit_diff_max", "cross_entropy", "exact")
DIFFERENTIABLE = ("logit_diff", "logit_diff_max", "cross_entropy")


def answer_alphabet(labels: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Bool [V]: tokens that occur as labels (the whole vocabulary when fewer than two do, e.g. one LM target)."""
    alpha = torch.zeros(vocab_size, dtype=torch.bool, device=labels.device)
    alpha[labels[labels >= 0].long().unique()] = True
    if int(alpha.sum()) < 2:
        alpha[:] = True
    return alpha


def best_wrong(logits: torch.Tensor, labels: torch.Tensor, alphabet: torch.Tensor) -> torch.Tensor:
    """[B, L] the highest-scoring answer token other than the label, per position (the foil)."""
    y = labels.clamp_min(0).long().expand(logits.shape[:2])
    others = _wide(logits).masked_fill(~alphabet.view(1, 1, -1), float("-inf"))
    return others.scatter(-1, y.unsqueeze(-1), float("-inf")).argmax(-1)


def fixed_logit_diff(logits: torch.Tensor, labels: torch.Tensor, foils: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[B] mean over target positions of logit(label) - logit(foil)."""
    x = _wide(logits)
    y = labels.clamp_min(0).long().expand(x.shape[:2])
    f = foils.long().expand(x.shape[:2])
    diff = x.gather(-1, y.unsqueeze(-1)).squeeze(-1) - x.gather(-1, f.unsqueeze(-1)).squeeze(-1)
    w = targets.expand(x.shape[:2]).float()
    return (diff * w).sum(-1) / w.sum(-1).clamp_min(1)


def logit_diff(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor, alphabet: torch.Tensor) -> torch.Tensor:
    """[B] mean over target positions of logit(correct) - max logit(other answer token).

    ``labels``/``targets`` [B or 1, L] broadcast over the batch of ``logits`` [B, L, V]."""
    x = _wide(logits)
    y = labels.clamp_min(0).long().expand(x.shape[:2])
    targets = targets.expand(x.shape[:2])
    correct = x.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    others = x.masked_fill(~alphabet.view(1, 1, -1), float("-inf")).scatter(-1, y.unsqueeze(-1), float("-inf"))
    diff = correct - others.max(-1).values
    w = targets.float()
    return (diff * w).sum(-1) / w.sum(-1).clamp_min(1)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[B] mean cross-entropy of the correct tokens over the target positions."""
    logp = torch.log_softmax(_wide(logits), dim=-1)
    y = labels.clamp_min(0).long().expand(logp.shape[:2])
    nll = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    w = targets.expand(logp.shape[:2]).float()
    return (nll * w).sum(-1) / w.sum(-1).clamp_min(1)


def exact(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[B] 1.0 where every labelled position's argmax is the label."""
    labels = labels.expand(logits.shape[:2])
    ok = (logits.argmax(-1) == labels) | (labels < 0)
    return ok.all(-1).float()


def metric_fn(name: str, labels: torch.Tensor, targets: torch.Tensor, alphabet: torch.Tensor,
              source_logits: torch.Tensor | None = None):
    """``f(logits) -> [B]`` for the metric ``name`` on these labels and targets. ``alphabet`` (bool [V], see
    ``answer_alphabet``; compute it once per experiment so every row uses the same one); ``logit_diff``
    takes its foils from ``source_logits``, the source run's answer logits."""
    if name == "logit_diff":
        if source_logits is None:
            raise ValueError("logit_diff needs the source run's logits to fix its foils")
        foils = best_wrong(source_logits, labels, alphabet)
        return lambda logits: fixed_logit_diff(logits, labels, foils, targets)
    if name == "logit_diff_max":
        return lambda logits: logit_diff(logits, labels, targets, alphabet)
    if name == "cross_entropy":
        return lambda logits: cross_entropy(logits, labels, targets)
    if name == "exact":
        return lambda logits: exact(logits, labels)
    from interp.causal.errors import CausalError

    raise CausalError(f"unknown metric {name!r} (one of {', '.join(METRICS)})")


__all__ = ["METRICS", "DIFFERENTIABLE", "answer_alphabet", "best_wrong", "fixed_logit_diff", "logit_diff", "cross_entropy", "exact", "metric_fn"]
