"""Deep supervision with adaptive computation time (ACT) for the puzzle models.

Training runs *one segment per optimiser step* and carries the recurrent
states across optimiser steps, as HRM/TRM do::

    carry = reset rows that halted last step (init states, steps = 0, next puzzle)
    states, out = model.segment(carry.states, inputs, puzzle_ids, cycles=...)
    steps += 1
    loss = lm_loss + 0.5 * (q_halt_loss [+ q_continue_loss])
    halted = steps >= halt_max_steps  |  halting signal (subject to exploration)

Halting signals: HRM's ACT Q-learning halts when ``q_halt > q_continue``;
``q_halt`` learns "the current answer is exactly right" and ``q_continue``
learns ``sigmoid(max(next q_halt, next q_continue))`` (just the next
``q_halt`` at the last step) from a second, gradient-free segment. TRM
halts when ``q_halt > 0`` and trains only ``q_halt`` (BCE against exact
correctness), with no extra forward. With probability ``halt_exploration_prob``
a row draws a minimum halting step in [2, halt_max_steps] (drawn afresh each
step, as in the reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .cgar import hsw_batch_scale, hsw_row_weights
from .losses import row_mean_loss, row_stats, token_cross_entropy


@dataclass
class ACTCarry:
    """Per-row training carry: recurrent states, steps taken, halted flags and the current puzzle."""

    states: dict[str, torch.Tensor]
    steps: torch.Tensor  # [B] int64
    halted: torch.Tensor  # [B] bool
    inputs: torch.Tensor  # [B, L] int64
    labels: torch.Tensor  # [B, L] int64
    puzzle_ids: torch.Tensor  # [B] int64

    def to_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"state.{k}": v for k, v in self.states.items()}
        out.update(steps=self.steps, halted=self.halted.to(torch.uint8), inputs=self.inputs, labels=self.labels, puzzle_ids=self.puzzle_ids)
        return out

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], device: torch.device) -> "ACTCarry":
        return cls(
            states={k[len("state."):]: v.to(device) for k, v in t.items() if k.startswith("state.")},
            steps=t["steps"].to(device).long(),
            halted=t["halted"].to(device).bool(),
            inputs=t["inputs"].to(device).long(),
            labels=t["labels"].to(device).long(),
            puzzle_ids=t["puzzle_ids"].to(device).long(),
        )


def initial_carry(model, batch_size: int, device: torch.device) -> ACTCarry:
    """A carry whose every row is halted, so the first step loads a full batch."""
    L = model.cfg.seq_len
    return ACTCarry(
        states=model.init_states(batch_size, device),
        steps=torch.zeros(batch_size, dtype=torch.long, device=device),
        halted=torch.ones(batch_size, dtype=torch.bool, device=device),
        inputs=torch.zeros(batch_size, L, dtype=torch.long, device=device),
        labels=torch.zeros(batch_size, L, dtype=torch.long, device=device),
        puzzle_ids=torch.zeros(batch_size, dtype=torch.long, device=device),
    )


def reset_halted(model, carry: ACTCarry, inputs: torch.Tensor, labels: torch.Tensor, puzzle_ids: torch.Tensor) -> ACTCarry:
    """Halted rows restart: init states, steps 0, and the next puzzles (in row order); others are untouched.

    ``inputs``/``labels``/``puzzle_ids`` hold exactly one new example per halted row.
    """
    h = carry.halted
    n = int(h.sum())
    if inputs.shape[0] != n:
        raise ValueError(f"reset_halted needs {n} new examples (one per halted row), got {inputs.shape[0]}")
    B = h.shape[0]
    init = model.init_states(B, h.device)
    states = {k: torch.where(h.view(B, *([1] * (v.dim() - 1))), init[k].to(v.dtype), v) for k, v in carry.states.items()}
    new_inputs, new_labels, new_pids = carry.inputs.clone(), carry.labels.clone(), carry.puzzle_ids.clone()
    new_inputs[h], new_labels[h], new_pids[h] = inputs, labels, puzzle_ids
    return ACTCarry(
        states=states,
        steps=torch.where(h, torch.zeros_like(carry.steps), carry.steps),
        halted=torch.zeros_like(h),
        inputs=new_inputs,
        labels=new_labels,
        puzzle_ids=new_pids,
    )


def q_continue_target(next_q_halt: torch.Tensor, next_q_continue: torch.Tensor, is_last: torch.Tensor) -> torch.Tensor:
    """HRM's Q-learning target: sigmoid(next q_halt) at the last step, else sigmoid(max(next q_halt, next q_continue))."""
    return torch.sigmoid(torch.where(is_last, next_q_halt, torch.maximum(next_q_halt, next_q_continue)))


def halting_decision(
    steps: torch.Tensor,
    q_halt: torch.Tensor,
    q_continue: torch.Tensor,
    max_steps: int,
    halting: str,
    exploration_prob: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Training-time halted flags after a segment (``steps`` already incremented)."""
    halted = steps >= max_steps
    if halting == "none" or max_steps <= 1:
        return halted
    signal = q_halt > q_continue if halting == "act_q" else q_halt > 0
    B = steps.shape[0]
    explore = torch.rand(B, generator=generator) < exploration_prob
    min_steps = explore * torch.randint(2, max_steps + 1, (B,), generator=generator)
    return halted | (signal & (steps >= min_steps.to(steps.device)))


@dataclass
class ACTStepResult:
    carry: ACTCarry
    loss: torch.Tensor  # scalar to backpropagate (already divided by ``norm``)
    metrics: dict[str, torch.Tensor]  # detached sums; "count" = halted rows, others summed over them


def act_train_step(
    model,
    carry: ACTCarry,
    *,
    halting: str,
    loss_kind: str = "stablemax",
    q_loss_weight: float = 0.5,
    cycles: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
    norm: float | None = None,
    hsw: tuple[str, float] | None = None,
    segment_fn=None,
) -> ACTStepResult:
    """One deep-supervision step on a carry whose halted rows were already reset.

    ``norm`` divides the summed per-row losses (default: the local batch size;
    under DDP pass the global batch size). ``hsw`` = (form, lambda) enables
    CGAR's hierarchical supervision weighting.
    """
    segment = segment_fn or model.segment
    cfg = model.cfg
    states, out = segment(carry.states, carry.inputs, carry.puzzle_ids, seg=0, cycles=cycles)
    steps = carry.steps + 1
    labels = carry.labels

    per_token = token_cross_entropy(out.logits, labels, loss_kind)
    lm_row = row_mean_loss(per_token, labels)
    stats = row_stats(out.logits.detach(), labels)
    correct = stats.exact
    row_loss = lm_row
    zero = torch.zeros((), device=lm_row.device)
    q_halt_loss = q_cont_loss = zero
    if halting != "none":
        q_halt_row = F.binary_cross_entropy_with_logits(out.q_halt, correct.to(out.q_halt.dtype), reduction="none")
        q_halt_loss = q_halt_row.sum()
        q_row = q_halt_row
        if halting == "act_q":
            with torch.no_grad():
                _, nxt = segment(states, carry.inputs, carry.puzzle_ids, seg=0, cycles=cycles)
                target = q_continue_target(nxt.q_halt, nxt.q_continue, steps >= cfg.halt_max_steps)
            q_cont_row = F.binary_cross_entropy_with_logits(out.q_continue, target, reduction="none")
            q_cont_loss = q_cont_row.sum()
            q_row = q_row + q_cont_row
        row_loss = row_loss + q_loss_weight * q_row.to(row_loss.dtype)
    if hsw is not None:
        form, lam = hsw
        if form == "paper":
            row_loss = row_loss * hsw_row_weights(steps, lam, cfg.halt_max_steps).to(row_loss.dtype)
        else:
            row_loss = row_loss * hsw_batch_scale(steps, lam).to(row_loss.dtype)
    n = float(norm if norm is not None else steps.shape[0])
    loss = row_loss.sum() / n

    with torch.no_grad():
        halted = halting_decision(
            steps, out.q_halt, out.q_continue, cfg.halt_max_steps, halting, cfg.halt_exploration_prob, generator
        )
        h = halted
        metrics = {
            "count": h.sum(),
            "accuracy": (stats.token_accuracy * h).sum(),
            "exact_accuracy": (correct & h).sum(),
            "q_halt_accuracy": (((out.q_halt >= 0) == correct) & h).sum(),
            "steps": (steps * h).sum(),
            "rows": torch.tensor(steps.shape[0], device=h.device),
            "lm_loss": lm_row.detach().sum(),
            "q_halt_loss": q_halt_loss.detach(),
            "q_continue_loss": q_cont_loss.detach(),
        }
    new_carry = ACTCarry(states=states, steps=steps, halted=halted, inputs=carry.inputs, labels=labels, puzzle_ids=carry.puzzle_ids)
    return ACTStepResult(carry=new_carry, loss=loss, metrics=metrics)
