"""Per-step quantities recorded in a trace, as small torch functions.

All take a batch on the first axis and return one value per batch row, so the
tracer and the synthetic-trace builder compute exactly the same numbers.
States are [B, P, D] (P positions, D features); logits [B, L, V].
"""

from __future__ import annotations

import torch

from common.labels import IGNORE_LABEL


def position_norms(x: torch.Tensor) -> torch.Tensor:
    """L2 norm over features at each position: [B, P] (shared by ``state_norm`` and ``mean_cosine``)."""
    return x.float().norm(dim=-1)


def state_norm(x: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over positions of the L2 norm over features: [B] (``norms``: its ``position_norms``, if known)."""
    return (position_norms(x) if norms is None else norms).mean(dim=-1)


def relative_change(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``||new - old||_F / ||old||_F`` per row (Frobenius over positions and features): [B].

    0/0 gives 0 (an unchanged zero state), x/0 gives inf.
    """
    new32, old32 = new.float().flatten(1), old.float().flatten(1)
    num = (new32 - old32).norm(dim=1)
    den = old32.norm(dim=1)
    out = num / den
    return torch.where((num == 0) & (den == 0), torch.zeros_like(out), out)


def mean_cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12,
                norms: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Cosine similarity between ``a`` and ``b`` at each position, averaged over positions: [B].

    ``norms``: the ``position_norms`` of ``a`` and ``b`` when the caller already has them.
    """
    a32, b32 = a.float(), b.float()
    dot = (a32 * b32).sum(-1)
    na, nb = (position_norms(a32), position_norms(b32)) if norms is None else norms
    den = (na * nb).clamp_min(eps)
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


def decoded_metrics(logits: torch.Tensor, labels: torch.Tensor | None, mask: torch.Tensor | None,
                    confidence: bool = False) -> dict[str, torch.Tensor]:
    """Prediction and scores of decoded logits against labels (the per-step logit lens).

    Returns ``pred`` [B, L] (argmax) and, with labels, ``ce`` (softmax cross-entropy averaged over
    labelled cells), ``token_acc`` (accuracy over ``mask`` cells), ``n_wrong`` (wrong ``mask`` cells)
    and ``exact`` (every labelled cell right), each [B]; with ``confidence`` also ``conf`` [B, L],
    the top softmax probability of each cell. One max and one log-sum-exp serve all of them
    (``softmax`` over a short vocabulary axis costs several times more on a CPU).
    """
    lf = logits.float()
    top, pred = lf.max(-1)
    out = {"pred": pred}
    need_lse = confidence or labels is not None
    if need_lse:
        sum_exp = (lf - top.unsqueeze(-1)).exp_().sum(-1)  # >= 1: the top cell contributes exp(0)
    if confidence:
        out["conf"] = sum_exp.reciprocal()
    if labels is None:
        return out
    valid = labels != IGNORE_LABEL
    safe = labels.clamp_min(0).long()
    ce_tok = top + sum_exp.log() - lf.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    n_valid = valid.sum(1)
    ce = (ce_tok * valid).sum(1) / n_valid.clamp_min(1)
    ce = torch.where(n_valid > 0, ce, torch.full_like(ce, float("nan")))
    right = pred == labels
    n_mask = mask.sum(1)
    token_acc = (right & mask).sum(1).float() / n_mask.clamp_min(1)
    token_acc = torch.where(n_mask > 0, token_acc, torch.full_like(token_acc, float("nan")))
    n_wrong = (mask & ~right).sum(1).float()
    exact = (right | ~valid).all(1) & (n_valid > 0)
    out.update(ce=ce, token_acc=token_acc, n_wrong=n_wrong, exact=exact)
    return out


__all__ = ["position_norms", "state_norm", "relative_change", "mean_cosine", "eval_mask", "decoded_metrics"]
