"""Evaluation of puzzle models with bootstrap confidence intervals.

Evaluation semantics of HRM/TRM: a fresh carry per batch, *all*
``halt_max_steps`` segments, predictions from the last segment. The halting
step a model would have chosen is reported too: the first segment whose
halting signal fires (``q_halt > 0`` for TRM, ``q_halt > q_continue`` for
HRM), or ``halt_max_steps`` if it never fires.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable

import numpy as np
import torch

from common.stats import bootstrap_mean_ci, wilson_interval


def _mean_interval(values: np.ndarray, n_boot: int, alpha: float, seed: int) -> tuple[float, float]:
    """(low, high) of ``common.stats.bootstrap_mean_ci``."""
    ci = bootstrap_mean_ci(values, alpha, n_boot=n_boot, seed=seed)
    return (ci.low, ci.high)

from .data import PuzzleArrays, load_puzzle_split, puzzle_arrays
from .losses import row_mean_loss, row_stats, token_cross_entropy


def default_halting(model) -> str:
    fam = getattr(model.cfg, "family", "")
    return {"hrm": "act_q", "trm": "bce"}.get(fam, "none")


def as_puzzle_arrays(split: Any) -> PuzzleArrays:
    """Accept our ``PuzzleArrays``, a ``read_puzzle_split`` result, or a split/dataset directory (test split)."""
    if isinstance(split, PuzzleArrays):
        return split
    if isinstance(split, (str, os.PathLike)):
        return load_puzzle_split(split, "test")
    return puzzle_arrays(split)


@torch.no_grad()
def evaluate(
    model,
    split: Any,
    batch_size: int = 64,
    n: int | None = None,
    halting: str = "auto",
    loss_kind: str = "stablemax",
    device: torch.device | str | None = None,
    autocast: Callable[[], Any] | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Exact accuracy after all segments and at the model's own halt (Wilson intervals), blank-cell and token
    accuracy and halting segments (bootstrap intervals of the mean), loss, on the first ``n`` examples.

    Blank cells are the cells whose label differs from the input (Sudoku: the blanks); ``blanks_range`` is
    their min and max count per puzzle.
    """
    data = as_puzzle_arrays(split)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if halting == "auto":
        halting = default_halting(model)
    total = data.num_examples if not n else min(n, data.num_examples)
    if total < 1:
        raise ValueError("the evaluation split holds no examples")
    S = model.cfg.halt_max_steps
    model.ensure_segment_hooks(S)
    was_training = model.training
    model.eval()
    pids_all = data.example_puzzle_ids()
    exact, tok_acc, halt_steps, q_acc, losses, exact_at_halt, blank_acc, blanks = [], [], [], [], [], [], [], []
    exact_by_seg = np.zeros(S)
    starts = range(0, total, batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="eval", unit="batch")
    for i in starts:
        j = min(total, i + batch_size)
        x = torch.from_numpy(data.get_inputs(slice(i, j))).to(device)
        y = torch.from_numpy(data.get_labels(slice(i, j))).to(device)
        pid = torch.from_numpy(pids_all[i:j]).to(device)
        model.check_inputs(x, pid)
        B = x.shape[0]
        states = model.init_states(B, device)
        first_halt = torch.full((B,), S, dtype=torch.long, device=device)
        correct_at_halt = torch.zeros(B, dtype=torch.bool, device=device)
        decided = torch.zeros(B, dtype=torch.bool, device=device)
        for s in range(S):
            with autocast() if autocast is not None else contextlib.nullcontext():
                states, out = model.segment(states, x, pid, seg=s)
            st = row_stats(out.logits, y)
            exact_by_seg[s] += float(st.exact.sum())
            if halting == "act_q":
                fire = out.q_halt > out.q_continue
            elif halting == "bce":
                fire = out.q_halt > 0
            else:
                fire = torch.zeros(B, dtype=torch.bool, device=device)
            if s == S - 1:
                fire = torch.ones_like(fire)
            new = fire & ~decided
            first_halt = torch.where(new, torch.full_like(first_halt, s + 1), first_halt)
            correct_at_halt |= new & st.exact
            decided |= fire
        exact.append(st.exact.cpu().numpy())
        todo = (x != y) & (y != -100)  # cells the model must fill (Sudoku: the blanks)
        right = (out.logits.argmax(-1) == y) & todo
        n_todo = todo.sum(-1)
        blanks.append(n_todo.cpu().numpy())
        blank_acc.append(torch.where(n_todo > 0, right.sum(-1) / n_todo.clamp(min=1), torch.ones_like(n_todo,
                                     dtype=torch.float32)).float().cpu().numpy())
        tok_acc.append(st.token_accuracy.cpu().numpy())
        halt_steps.append(first_halt.cpu().numpy())
        q_acc.append(((out.q_halt >= 0) == st.exact).cpu().numpy())
        exact_at_halt.append(correct_at_halt.cpu().numpy())
        losses.append(row_mean_loss(token_cross_entropy(out.logits, y, loss_kind), y).float().cpu().numpy())
    if was_training:
        model.train()
    exact_v = np.concatenate(exact).astype(np.float64)
    tok_v = np.concatenate(tok_acc).astype(np.float64)
    halt_v = np.concatenate(halt_steps).astype(np.float64)
    halt_exact = np.concatenate(exact_at_halt)
    blank_v = np.concatenate(blank_acc).astype(np.float64)
    blanks_v = np.concatenate(blanks)
    n_exact, n_halt = int(exact_v.sum()), int(halt_exact.sum())
    return {
        "n": int(total),
        "exact_accuracy": float(exact_v.mean()),
        "exact_accuracy_ci": wilson_interval(n_exact, int(total), alpha),  # a proportion: Wilson
        "token_accuracy": float(tok_v.mean()),
        "token_accuracy_ci": _mean_interval(tok_v, n_boot, alpha, seed + 1),
        "avg_halt_steps": float(halt_v.mean()),
        "avg_halt_steps_ci": _mean_interval(halt_v, n_boot, alpha, seed + 2),
        "exact_accuracy_at_halt": float(halt_exact.mean()),
        "exact_accuracy_at_halt_ci": wilson_interval(n_halt, int(total), alpha),
        "blank_accuracy": float(blank_v.mean()),
        "blank_accuracy_ci": _mean_interval(blank_v, n_boot, alpha, seed + 3),
        "blanks_range": [int(blanks_v.min()), int(blanks_v.max())],
        "q_halt_accuracy": float(np.concatenate(q_acc).mean()),
        "loss": float(np.concatenate(losses).mean()),
        "exact_accuracy_by_segment": (exact_by_seg / total).tolist(),
        "segments": S,
        "halting": halting,
        "ci_level": 1 - alpha,
    }
