"""A run under interventions and its downstream effect: the answer at every later step, exact solve, the
critical step and the attribution metric.

:func:`steered_run` runs a model segment by segment through the causal
:class:`~interp.causal.runner.SegmentRunner` (optionally from a stored carry, as patching does, so only
segments ``start..S-1`` are recomputed) with the intervention hook pairs attached, and decodes the answer
state after each of its updates (the logit lens the tracer records). :class:`SteerOutcome` holds per puzzle:

* ``answers`` [B, T', L]: the decoded answer after each update of the answer state (``answer_steps`` [T']:
  their global step indices on the trace's step axis);
* ``exact_by_segment`` [B, S']: whether the segment's answer is exactly right (every labelled position);
* ``solved`` [B]: exactly right after the last segment (the evaluation depth; no halting); ``final`` [B, L]:
  that segment's answer (the model's own logits: for HRM-LM the fused output, not the lens of one state);
* ``critical_step`` [B]: the first answer step from which the answer is exactly right to the end, -1 if never
  (``interp.analyses.jumps``' definition), as a global step;
* ``metric`` [B]: ``logit_diff_max`` of the last segment over the target positions (``interp.causal.metrics``).

For the language models "solved" is the same exact rule on their labelled positions: with one label, the
last position's greedy next token equals the true next token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from interp.causal.metrics import answer_alphabet, logit_diff
from interp.causal.runner import Prepared, SegmentRunner, States
from interp.tracing.trace import stays_true_from


@dataclass
class SteerOutcome:
    """What a (steered) run did, per puzzle (see module docstring)."""

    answers: np.ndarray
    answer_steps: np.ndarray
    exact_by_segment: np.ndarray
    solved: np.ndarray
    critical_step: np.ndarray
    metric: np.ndarray
    start_segment: int = 0
    carries: dict[int, States] | None = None  # the carry entering each segment named in ``keep_carries``
    final: np.ndarray | None = None  # [B, L] the model's answer after the last segment (its own logits)


def target_mask(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """bool [N, L]: labelled positions whose label differs from the input (Sudoku: the blank cells); a row with
    none keeps every labelled position (a language model's next token may repeat the input's)."""
    lab = labels >= 0
    t = lab & (inputs != labels)
    empty = ~t.any(1)
    t[empty] = lab[empty]
    return t


def answer_hooks(runner: SegmentRunner, start_segment: int = 0) -> list[str]:
    """Hook names writing the answer state, in step order, from ``start_segment`` on."""
    sch = runner.schema
    hooks = [(k, h) for h, (k, st) in sch.hook_to_step.items()
             if st == sch.answer_state and sch.steps[k].segment >= start_segment]
    return [h for _, h in sorted(hooks)]


def state_hooks(runner: SegmentRunner, state: str, steps: Sequence[int] | None = None) -> list[str]:
    """Hook names writing ``state`` (``answer``/``slow``/``fast`` aliases allowed), optionally at given global steps."""
    sch = runner.schema
    alias = {"answer": sch.answer_state, "slow": sch.slow_state, "fast": sch.fast_state}
    name = alias.get(state) or state
    wanted = None if steps is None else {int(s) for s in steps}
    hooks = [(k, h) for h, (k, st) in sch.hook_to_step.items() if st == name and (wanted is None or k in wanted)]
    return [h for _, h in sorted(hooks)]


def resolve_state(runner: SegmentRunner, state: str) -> str:
    """``answer``/``slow``/``fast`` -> the model's state name; other names checked against the schema."""
    sch = runner.schema
    alias = {"answer": sch.answer_state, "slow": sch.slow_state, "fast": sch.fast_state}
    name = alias.get(state) or state
    if name not in sch.state_names:
        raise ValueError(f"unknown state {state!r} for a {sch.family} model (states: {', '.join(sch.state_names)})")
    return name


def steered_run(runner: SegmentRunner, batch: Prepared, labels: torch.Tensor, targets: torch.Tensor,
                hook_pairs: Sequence = (), start_segment: int = 0, carry: States | None = None,
                alphabet: torch.Tensor | None = None, keep_carries: Sequence[int] = ()) -> SteerOutcome:
    """Run segments ``start_segment``..S-1 from ``carry`` (default: the model's start states, then
    ``start_segment`` must be 0) with ``hook_pairs`` attached; see :class:`SteerOutcome`.

    ``keep_carries``: segments whose entering carry the outcome keeps (to restart steered runs there).
    ``labels`` [B, L] (-100: not scored) decide exactness; ``targets`` [B or 1, L] bool are the positions the
    metric averages over (Sudoku: the blank cells)."""
    model = runner.model
    if carry is None and start_segment != 0:
        raise ValueError("a run from a later segment needs the carry entering it")
    states = runner.start_states(batch) if carry is None else {k: v.clone() for k, v in carry.items()}
    names = answer_hooks(runner, start_segment)
    order = {h: i for i, h in enumerate(names)}
    prefix = int(getattr(model, "prefix_len", 0))
    answers: list[torch.Tensor | None] = [None] * len(names)

    def lens(t: torch.Tensor, hook) -> None:
        logits = model.decode(t)
        if logits.shape[1] != labels.shape[1] and prefix:
            logits = logits[:, prefix:]
        answers[order[hook.name]] = logits.argmax(-1).cpu()

    labels = labels.to(batch.x.device)
    if alphabet is None:
        alphabet = answer_alphabet(labels, int(model.cfg.vocab_size))
    exact_seg = []
    logits = None
    kept: dict[int, States] = {}
    with torch.no_grad(), model.hooks([*hook_pairs, (lambda n: n in order, lens)]):
        for s in range(start_segment, runner.n_segments):
            if s in keep_carries:
                kept[s] = {k: v.detach().cpu().clone() for k, v in states.items()}
            states, logits = runner.segment(batch, states, s)
            exact_seg.append(((logits.argmax(-1) == labels) | (labels < 0)).all(-1).cpu().numpy())
    metric = logit_diff(logits, labels, targets.to(logits.device), alphabet).double().cpu().numpy()
    got = torch.stack([a for a in answers if a is not None], 1).numpy()  # [B, T', L]
    lab = labels.cpu().numpy()[:, None, :]
    exact_steps = ((got == lab) | (lab < 0)).all(-1)
    first = stays_true_from(exact_steps)
    sch = runner.schema
    steps = np.array([sch.hook_to_step[h][0] for h in names], dtype=np.int64)
    critical = np.where(first >= 0, steps[np.clip(first, 0, len(steps) - 1)], -1)
    exact_by_segment = np.stack(exact_seg, 1)
    return SteerOutcome(got.astype(np.int16), steps, exact_by_segment, exact_by_segment[:, -1].copy(), critical,
                        metric, start_segment, kept, logits.argmax(-1).cpu().numpy())


__all__ = ["SteerOutcome", "target_mask", "answer_hooks", "state_hooks", "resolve_state", "steered_run"]
