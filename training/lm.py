"""Language-model objective shared by HRM-LM and the causal baselines.

Every family exposes ``forward_passes(tokens) -> [pass outputs]`` with
``logits`` and (HRM-LM only) ``fusion_entropy``. The loss is the mean
next-token cross-entropy over passes minus ``fusion_entropy_weight`` times the
mean fusion-gate entropy (an entropy *bonus* against gate collapse, the sign
convention of ``HRMLM.loss``; baselines have no gate and weight 0).
Validation loss is the last pass's cross-entropy in nats.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from common.labels import IGNORE_LABEL

from .losses import token_cross_entropy


def lm_loss(model, tokens: torch.Tensor, targets: torch.Tensor, loss_kind: str = "softmax", forward_fn=None):
    """(loss, metrics) for one batch; metrics are detached tensors (per-pass CE, entropy, accuracy)."""
    passes = (forward_fn or model.forward_passes)(tokens)
    mask = targets != IGNORE_LABEL
    n_tok = mask.sum().clamp(min=1)
    ces = torch.stack([token_cross_entropy(o.logits, targets, loss_kind).sum() / n_tok for o in passes])
    ce = ces.mean()
    ents = [o.fusion_entropy for o in passes if getattr(o, "fusion_entropy", None) is not None]
    weight = float(getattr(model.cfg, "fusion_entropy_weight", 0.0))
    loss = ce
    entropy = torch.zeros((), device=ce.device)
    if ents:
        entropy = torch.stack([e.float() for e in ents]).mean()
        loss = ce - weight * entropy.to(ce.dtype)
    with torch.no_grad():
        acc = ((passes[-1].logits.argmax(-1) == targets) & mask).sum() / n_tok
    metrics = {
        "loss": loss.detach(),
        "ce": ce.detach(),
        "ce_last": ces[-1].detach(),
        "fusion_entropy": entropy.detach(),
        "accuracy": acc.detach(),
    }
    for p, c in enumerate(ces):
        metrics[f"ce_pass{p}"] = c.detach()
    return loss, metrics


@torch.no_grad()
def evaluate_lm(model, windows: np.ndarray, batch_size: int = 16, device: torch.device | str = "cpu", autocast=None) -> dict[str, float]:
    """Validation cross-entropy (nats/token) of every pass and the last, over ``windows`` [N, L+1]."""
    model.eval()
    sums: dict[int, float] = {}
    n_tok = 0
    correct = 0
    for i in range(0, len(windows), batch_size):
        w = torch.from_numpy(windows[i : i + batch_size]).to(device)
        x, y = w[:, :-1], w[:, 1:]
        ctx = autocast() if autocast is not None else contextlib.nullcontext()
        with ctx:
            passes = model.forward_passes(x)
        for p, o in enumerate(passes):
            sums[p] = sums.get(p, 0.0) + float(token_cross_entropy(o.logits, y, "softmax").sum())
        correct += int((passes[-1].logits.argmax(-1) == y).sum())
        n_tok += y.numel()
    last = max(sums)
    out = {f"val_loss_pass{p}": s / n_tok for p, s in sorted(sums.items())}
    out["val_loss"] = sums[last] / n_tok
    out["val_ppl"] = math.exp(min(out["val_loss"], 50.0))
    out["val_accuracy"] = correct / n_tok
    out["n_windows"] = len(windows)
    out["n_tokens"] = n_tok
    return out

