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
from models.device import model_device


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


ROW_METRICS = ("exact", "token_accuracy", "halt_steps", "q_halt_correct", "exact_at_halt", "blank_accuracy",
               "blanks", "loss")  # per-puzzle arrays of one batch (``_evaluate_batch``)


def _halt_fires(out: Any, halting: str, last: bool) -> torch.Tensor:
    """Which rows halt after this segment under the ``halting`` rule (all rows at the last segment)."""
    if halting == "act_q":
        fire = out.q_halt > out.q_continue
    elif halting == "bce":
        fire = out.q_halt > 0
    else:
        fire = torch.zeros(out.q_halt.shape[0], dtype=torch.bool, device=out.q_halt.device)
    return torch.ones_like(fire) if last else fire


def _evaluate_batch(model, x: torch.Tensor, y: torch.Tensor, pid: torch.Tensor, halting: str, loss_kind: str,
                    autocast: Callable[[], Any] | None, exact_by_seg: np.ndarray) -> dict[str, np.ndarray]:
    """Run one batch through every segment; per-row metrics (``ROW_METRICS``), exact counts added to ``exact_by_seg``."""
    S = model.cfg.halt_max_steps
    model.check_inputs(x, pid)
    B, device = x.shape[0], x.device
    states = model.init_states(B, device)
    first_halt = torch.full((B,), S, dtype=torch.long, device=device)
    correct_at_halt = torch.zeros(B, dtype=torch.bool, device=device)
    decided = torch.zeros(B, dtype=torch.bool, device=device)
    for s in range(S):
        with autocast() if autocast is not None else contextlib.nullcontext():
            states, out = model.segment(states, x, pid, seg=s)
        st = row_stats(out.logits, y)
        exact_by_seg[s] += float(st.exact.sum())
        fire = _halt_fires(out, halting, s == S - 1)
        new = fire & ~decided
        first_halt = torch.where(new, torch.full_like(first_halt, s + 1), first_halt)
        correct_at_halt |= new & st.exact
        decided |= fire
    todo = (x != y) & (y != -100)  # cells the model must fill (Sudoku: the blanks)
    right = (out.logits.argmax(-1) == y) & todo
    n_todo = todo.sum(-1)
    blank_acc = torch.where(n_todo > 0, right.sum(-1) / n_todo.clamp(min=1), torch.ones_like(n_todo,
                            dtype=torch.float32)).float()
    return {
        "exact": st.exact.cpu().numpy(),
        "token_accuracy": st.token_accuracy.cpu().numpy(),
        "halt_steps": first_halt.cpu().numpy(),
        "q_halt_correct": ((out.q_halt >= 0) == st.exact).cpu().numpy(),
        "exact_at_halt": correct_at_halt.cpu().numpy(),
        "blank_accuracy": blank_acc.cpu().numpy(),
        "blanks": n_todo.cpu().numpy(),
        "loss": row_mean_loss(token_cross_entropy(out.logits, y, loss_kind), y).float().cpu().numpy(),
    }


def _summarise(rows: dict[str, np.ndarray], exact_by_seg: np.ndarray, total: int, halting: str, n_boot: int,
               alpha: float, seed: int) -> dict[str, Any]:
    """The result record of ``evaluate`` from the per-row metrics of every batch (intervals at level 1 - alpha)."""
    exact_v = rows["exact"].astype(np.float64)
    tok_v = rows["token_accuracy"].astype(np.float64)
    halt_v = rows["halt_steps"].astype(np.float64)
    halt_exact = rows["exact_at_halt"]
    blank_v = rows["blank_accuracy"].astype(np.float64)
    blanks_v = rows["blanks"]
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
        "q_halt_accuracy": float(rows["q_halt_correct"].mean()),
        "loss": float(rows["loss"].mean()),
        "exact_accuracy_by_segment": (exact_by_seg / total).tolist(),
        "segments": len(exact_by_seg),
        "halting": halting,
        "ci_level": 1 - alpha,
    }


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
    device = torch.device(device) if device is not None else model_device(model)
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
    batches: list[dict[str, np.ndarray]] = []
    exact_by_seg = np.zeros(S)
    from common.progress import Progress

    bar = Progress(total, "eval", unit="example", enabled=bool(progress))
    for i in range(0, total, batch_size):
        j = min(total, i + batch_size)
        x = torch.from_numpy(data.get_inputs(slice(i, j))).to(device)
        y = torch.from_numpy(data.get_labels(slice(i, j))).to(device)
        pid = torch.from_numpy(pids_all[i:j]).to(device)
        batches.append(_evaluate_batch(model, x, y, pid, halting, loss_kind, autocast, exact_by_seg))
        bar.update(j - i)
    bar.close()
    if was_training:
        model.train()
    rows = {k: np.concatenate([b[k] for b in batches]) for k in ROW_METRICS}
    return _summarise(rows, exact_by_seg, total, halting, n_boot, alpha, seed)
