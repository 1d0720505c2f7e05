"""Token losses and accuracy for puzzle and language models.

Stable-max (HRM/TRM): replace ``exp`` in softmax by
``s(x) = 1 / (1 - x)`` for ``x < 0`` and ``x + 1`` otherwise, which grows only
linearly and so avoids the "softmax collapse" of long training runs; the
log-probabilities are computed in float64. Labels equal to ``IGNORE_LABEL``
(-100) contribute neither loss nor accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common.labels import IGNORE_LABEL


def stablemax_s(x: torch.Tensor) -> torch.Tensor:
    """``s(x) = 1/(1-x)`` for ``x < 0`` else ``x + 1`` (positive, monotone, linear growth)."""
    return torch.where(x < 0, 1.0 / (1.0 - x.clamp(max=0)), x + 1.0)


def log_stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log(s(x_i) / sum_j s(x_j)) in float64."""
    s = stablemax_s(logits.to(torch.float64))
    return torch.log(s / s.sum(dim=dim, keepdim=True))


def token_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, kind: str = "stablemax", ignore_index: int = IGNORE_LABEL
) -> torch.Tensor:
    """Per-token cross-entropy [..., L] (0 where the label is ignored).

    ``kind`` is ``"stablemax"`` (float64) or ``"softmax"`` (float32).
    """
    mask = labels != ignore_index
    safe = torch.where(mask, labels, torch.zeros_like(labels)).long()
    if kind == "stablemax":
        logp = log_stablemax(logits)
    elif kind == "softmax":
        logp = F.log_softmax(logits.float(), dim=-1)
    else:
        raise ValueError(f"loss must be stablemax or softmax, not {kind!r}")
    nll = -logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return torch.where(mask, nll, torch.zeros_like(nll))


@dataclass
class RowStats:
    """Per-row accuracy statistics of a batch of sequence predictions."""

    n_valid: torch.Tensor  # [B] supervised tokens per row
    n_correct: torch.Tensor  # [B] correctly predicted supervised tokens
    exact: torch.Tensor  # [B] bool: every supervised token correct (and at least one supervised)

    @property
    def token_accuracy(self) -> torch.Tensor:
        """[B] fraction of supervised tokens correct (0 for rows without supervision)."""
        return self.n_correct.float() / self.n_valid.clamp(min=1).float()


def row_stats(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL) -> RowStats:
    """Argmax predictions against labels, per row."""
    mask = labels != ignore_index
    correct = (logits.argmax(-1) == labels) & mask
    n_valid = mask.sum(-1)
    n_correct = correct.sum(-1)
    return RowStats(n_valid=n_valid, n_correct=n_correct, exact=(n_correct == n_valid) & (n_valid > 0))


def row_mean_loss(per_token: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL) -> torch.Tensor:
    """[B] mean loss over each row's supervised tokens (HRM's per-example normalisation)."""
    n = (labels != ignore_index).sum(-1).clamp(min=1)
    return per_token.sum(-1) / n.to(per_token.dtype)
