"""Per-step quantities recorded in a trace, as small torch functions.

All take a batch on the first axis and return one value per batch row, so the
tracer and the synthetic-trace builder compute exactly the same numbers.
States are [B, P, D] (P positions, D features); logits [B, L, V].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from common.labels import IGNORE_LABEL


def state_norm(x: torch.Tensor) -> torch.Tensor:
    """Mean over positions of the L2 norm over features: [B]."""
    return x.float().norm(dim=-1).mean(dim=-1)


def relative_change(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``||new - old||_F / ||old||_F`` per row (Frobenius over positions and features): [B].

    0/0 gives 0 (an unchanged zero state), x/0 gives inf.
    """
    new32, old32 = new.float().flatten(1), old.float().flatten(1)
    num = (new32 - old32).norm(dim=1)
    den = old32.norm(dim=1)
    out = num / den
    return torch.where((num == 0) & (den == 0), torch.zeros_like(out), out)


def mean_cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Cosine similarity between ``a`` and ``b`` at each position, averaged over positions: [B]."""
    a32, b32 = a.float(), b.float()
    dot = (a32 * b32).sum(-1)
    den = (a32.norm(dim=-1) * b32.norm(dim=-1)).clamp_min(eps)
    return (dot / den).mean(dim=-1)


def eval_mask(inputs: torch.Tensor, labels: torch.Tensor, lm: bool) -> torch.Tensor:
    """Cells whose token accuracy is reported: labelled cells that differ from the input.

    For Sudoku these are exactly the blanks (a given digit equals its label);
    for a maze, the path cells. A language model scores every labelled position.
    """
    valid = labels != IGNORE_LABEL
    if lm:
        return valid
    return valid & (inputs.long() != labels)


def decoded_metrics(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Prediction and scores of decoded logits against labels.

    Returns ``pred`` [B, L] (argmax), ``ce`` (softmax cross-entropy averaged over
    labelled cells), ``token_acc`` (accuracy over ``mask`` cells), ``n_wrong``
    (wrong ``mask`` cells) and ``exact`` (every labelled cell right), each [B].
    """
    pred = logits.argmax(-1)
    valid = labels != IGNORE_LABEL
    safe = labels.clamp_min(0).long()
    ce_tok = F.cross_entropy(logits.float().transpose(1, 2), safe, reduction="none")
    n_valid = valid.sum(1)
    ce = (ce_tok * valid).sum(1) / n_valid.clamp_min(1)
    ce = torch.where(n_valid > 0, ce, torch.full_like(ce, float("nan")))
    right = pred == labels
    n_mask = mask.sum(1)
    token_acc = (right & mask).sum(1).float() / n_mask.clamp_min(1)
    token_acc = torch.where(n_mask > 0, token_acc, torch.full_like(token_acc, float("nan")))
    n_wrong = (mask & ~right).sum(1).float()
    exact = (right | ~valid).all(1) & (n_valid > 0)
    return {"pred": pred, "ce": ce, "token_acc": token_acc, "n_wrong": n_wrong, "exact": exact}


__all__ = ["state_norm", "relative_change", "mean_cosine", "eval_mask", "decoded_metrics"]
