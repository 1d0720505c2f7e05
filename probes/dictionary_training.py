"""The Adam loop shared by the sparse dictionaries (``probes.sae``, ``probes.crosscoder``): random batches,
reconstruction + L1 loss, a loss history every ``log_every`` steps."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

StepLoss = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def train_dictionary(model: nn.Module, x: torch.Tensor, step_loss: StepLoss, l1: float, steps: int, batch_size: int,
                     lr: float, seed: int, log_every: int, after_step: Callable[[], None] | None = None,
                     desc: str | None = None) -> list[dict[str, float]]:
    """Train ``model`` with Adam on batches drawn (with replacement, seeded) from ``x`` [M, ...].

    ``step_loss(batch) -> (mse, sparsity, codes)``; the loss is ``mse + l1 * sparsity``. ``after_step``: run after
    each optimiser step (e.g. renormalising decoder rows); ``desc``: a progress bar on stderr with that name.
    Returns the history: step, loss, mse, l1 (the sparsity term) and l0 (mean active codes per sample)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    history = []
    bar = None
    if desc is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, unit="step", desc=desc, leave=False)
    for step in range(steps):
        xb = x[torch.randint(0, x.shape[0], (min(batch_size, x.shape[0]),), generator=g)]
        mse, sparsity, codes = step_loss(xb)
        loss = mse + l1 * sparsity
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step()
        if step % log_every == 0 or step == steps - 1:
            history.append({"step": step, "loss": float(loss.detach()), "mse": float(mse.detach()),
                            "l1": float(sparsity.detach()), "l0": float((codes.detach() > 0).float().sum(-1).mean())})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return history


__all__ = ["train_dictionary"]
