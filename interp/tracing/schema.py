"""The step schema: one flat step axis shared by every model family.

A recursive model updates its states many times per forward pass. The trace
flattens all of them onto one axis of *steps*; a step is one call of a
recurrent module and ends with one snapshot of every state. The step table
says, for each step::

    step             global step number 0..T-1
    segment          ACT segment (puzzle models) or supervision pass (HRM-LM)
    step_in_segment  0.. within the segment
    outer, inner     loop indices: HRM (h, l), TRM (t, n), HRM-LM (m // N, m % N);
                     -1 where there is no inner loop (an H / y update, a UniTF iteration)
    updated          the state(s) this step writes, e.g. "z_L", "z_H", "fast+slow"
    is_slow          this step writes the slow state (HRM z_H, TRM y, HRM-LM slow)
    after_slow       the step *before* this one wrote the slow state
    segment_end      last step of its segment (the segment's logits/halting read this snapshot)
    hooks            the hook points that fire during the step ("|"-joined)

The schema is built from the model's own hook-name grid, so the tracer and the
hooks can never disagree about what a step is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from torch import nn

from models.hook_names import act_name, layer_state, parse_act_name, parse_layer_state

STEP_COLUMNS = (
    "step", "segment", "step_in_segment", "outer", "inner",
    "updated", "is_slow", "after_slow", "segment_end", "hooks",
)
GATE_STATES = ("gate_fast", "gate_slow")

@dataclass
class StepInfo:
    """One row of the step table (see module docstring)."""

    step: int
    segment: int
    step_in_segment: int
    outer: int
    inner: int
    updated: tuple[str, ...]
    hooks: tuple[str, ...]
    is_slow: bool = False
    after_slow: bool = False
    segment_end: bool = False


@dataclass
class StepSchema:
    """Everything the tracer needs to know about a model's step grid."""

    family: str
    kind: str  # "puzzle" | "lm"
    state_names: tuple[str, ...]  # primary carried states, e.g. ("z_H", "z_L")
    answer_state: str  # the state whose decode is the model's answer at each step
    slow_state: str | None
    fast_state: str | None
    gate_states: tuple[str, ...]  # per-step auxiliaries without a carried value (HRM-LM gates, a looped module's input)
    n_segments: int
    steps: list[StepInfo]
    hook_to_step: dict[str, tuple[int, str]] = field(default_factory=dict)  # hook -> (step, state)
    segment_hooks: dict[str, tuple[int, str]] = field(default_factory=dict)  # hook -> (segment, kind)
    # attention patterns per layer ("pattern.layer0", ...) when the model records attention (opt-in); like
    # gates they are per-step values without a carry, NaN at steps whose module has no such layer
    pattern_states: tuple[str, ...] = ()
    # a looped model may stop before the last step of the grid (early exit): the steps that ran are a prefix
    variable_steps: bool = False

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    def table(self) -> pd.DataFrame:
        return steps_to_frame(self.steps)

    def hooks_of(self, state: str, steps: list[int] | None = None) -> list[str]:
        """Hook names that write ``state`` (optionally only at the given global steps)."""
        wanted = None if steps is None else set(int(s) for s in steps)
        return [h for h, (k, s) in self.hook_to_step.items() if s == state and (wanted is None or k in wanted)]


def steps_to_frame(steps: list[StepInfo]) -> pd.DataFrame:
    rows = [
        {
            "step": s.step, "segment": s.segment, "step_in_segment": s.step_in_segment,
            "outer": s.outer, "inner": s.inner, "updated": "+".join(s.updated),
            "is_slow": s.is_slow, "after_slow": s.after_slow, "segment_end": s.segment_end,
            "hooks": "|".join(s.hooks),
        }
        for s in steps
    ]
    return pd.DataFrame(rows, columns=list(STEP_COLUMNS))


def model_family(model: nn.Module) -> str:
    cfg = getattr(model, "cfg", None)
    return getattr(cfg, "family", "") or type(model).__name__.lower()


def is_lm_model(model: nn.Module) -> bool:
    """HRM-LM, or a baseline configured as a causal language model."""
    return model_family(model) == "hrm_lm" or bool(getattr(getattr(model, "cfg", None), "causal", False))


def finish_steps(steps: list[StepInfo], slow_state: str | None) -> None:
    prev_slow = False
    for i, s in enumerate(steps):
        s.step = i
        s.is_slow = slow_state is not None and slow_state in s.updated
        s.after_slow = prev_slow
        prev_slow = s.is_slow
        s.segment_end = i == len(steps) - 1 or steps[i + 1].segment != s.segment


def _puzzle_schema(model: nn.Module, n_segments: int) -> StepSchema:
    names = tuple(model.state_names)
    answer = model.answer_state
    slow = answer if len(names) > 1 else None
    fast = next((n for n in names if n != slow), None) if slow else None
    model.ensure_segment_hooks(n_segments)
    steps: list[StepInfo] = []
    hook_to_step: dict[str, tuple[int, str]] = {}
    segment_hooks: dict[str, tuple[int, str]] = {}
    patterns: list[tuple[str, tuple, str]] = []  # (hook, where of its step, state)
    for seg in range(n_segments):
        k = 0
        for name in model.step_hook_names(seg):
            a = parse_act_name(name)
            if a is not None and a.state == "pattern" and a.keys[-1:] == ("layer",):
                patterns.append((name, a.where[:-1], layer_state("pattern", a.indices[-1])))
                continue
            if a is None or a.keys[:1] != ("seg",) or a.state not in names:
                continue
            idx = a.indices[1:]
            outer = idx[0] if idx else k
            inner = idx[1] if len(idx) > 1 else -1
            state = a.state
            steps.append(StepInfo(0, seg, k, outer, inner, (state,), (name,)))
            hook_to_step[name] = (len(steps) - 1, state)
            k += 1
        if k == 0:
            raise ValueError(f"{model_family(model)} model emits no per-step state hooks in segment {seg}")
        segment_hooks[act_name("logits", seg=seg)] = (seg, "answer_logits")  # read, not recorded (tracer's lens)
        segment_hooks[act_name("q", seg=seg)] = (seg, "q")
    finish_steps(steps, slow)
    step_of = {parse_act_name(h).where: k for h, (k, _) in hook_to_step.items()}
    pattern_states: list[str] = []
    for name, where, state in patterns:
        hook_to_step[name] = (step_of[where], state)
        if state not in pattern_states:
            pattern_states.append(state)
    kind = "lm" if is_lm_model(model) else "puzzle"
    return StepSchema(model_family(model), kind, names, answer, slow, fast, (), n_segments, steps,
                      hook_to_step, segment_hooks, tuple(sorted(pattern_states, key=lambda s: parse_layer_state(s)[1])))


def _lm_schema(model: nn.Module, n_passes: int) -> StepSchema:
    names = tuple(model.state_names)  # ("fast", "slow")
    model.ensure_pass_hooks(n_passes)
    N = model.cfg.slow_period
    steps: list[StepInfo] = []
    hook_to_step: dict[str, tuple[int, str]] = {}
    segment_hooks: dict[str, tuple[int, str]] = {}
    gates: list[str] = []
    for p in range(n_passes):
        by_step: dict[int, list[tuple[str, str]]] = {}
        for name in model.pass_hook_names(p):
            a = parse_act_name(name)
            if a is not None and a.keys == ("pass", "step"):
                by_step.setdefault(a.indices[1], []).append((name, a.state))
            elif a is not None and a.state in ("fusion", "logits"):
                segment_hooks[name] = (p, a.state)
        for mstep in sorted(by_step):
            hooks = by_step[mstep]
            updated = tuple(s for _, s in hooks if s in names)
            for h, s in hooks:
                if s not in names and s not in gates:
                    gates.append(s)
            steps.append(StepInfo(0, p, mstep, mstep // N, mstep % N, updated, tuple(h for h, _ in hooks)))
            for h, s in hooks:
                hook_to_step[h] = (len(steps) - 1, s)
    finish_steps(steps, "slow")
    return StepSchema(model_family(model), "lm", names, "fast", "slow", "fast", tuple(gates), n_passes, steps,
                      hook_to_step, segment_hooks)


def _looped_schema(model: nn.Module, n_segments: int) -> StepSchema:
    """A looped model (``models.looped``): step k is the k-th call of a loop module; ``outer`` counts that
    module's calls, ``inner`` is -1; the module's input ``<state>_in`` is a per-step value of the step."""
    if n_segments != 1:
        raise ValueError("a looped model runs one forward per input: n_segments must be 1")
    names = tuple(model.state_names)
    answer = model.answer_state
    slow = answer if len(names) > 1 else None
    fast = next((n for n in names if n != slow), None) if slow else None
    model.ensure_segment_hooks(1)
    by_step: dict[int, list[tuple[str, str]]] = {}
    for name in model.step_hook_names(0):
        a = parse_act_name(name)
        by_step.setdefault(a.indices[1], []).append((name, a.state))
    steps: list[StepInfo] = []
    hook_to_step: dict[str, tuple[int, str]] = {}
    inputs: list[str] = []
    calls: dict[str, int] = {}
    for k in sorted(by_step):
        hooks = by_step[k]
        state = next(s for _, s in hooks if s in names)
        steps.append(StepInfo(0, 0, k, calls.get(state, 0), -1, (state,), tuple(h for h, _ in hooks)))
        calls[state] = calls.get(state, 0) + 1
        for h, s in hooks:
            hook_to_step[h] = (len(steps) - 1, s)
            if s not in names and s not in inputs:
                inputs.append(s)
    finish_steps(steps, slow)
    kind = "lm" if is_lm_model(model) else "puzzle"
    return StepSchema(model_family(model), kind, names, answer, slow, fast, tuple(inputs), 1, steps, hook_to_step,
                      {act_name("logits", seg=0): (0, "answer_logits")}, (), bool(model.variable_steps))


def build_schema(model: nn.Module, n_segments: int | None = None) -> StepSchema:
    """The step schema of ``model`` run for ``n_segments`` segments (passes for HRM-LM).

    ``n_segments`` defaults to the model's evaluation depth (``halt_max_steps``,
    or ``passes`` for HRM-LM).
    """
    cfg = model.cfg
    if model_family(model) == "hrm_lm":
        n = cfg.passes if n_segments is None else n_segments
        _check_n(n)
        return _lm_schema(model, n)
    if model_family(model) == "looped":
        n = 1 if n_segments is None else n_segments
        _check_n(n)
        return _looped_schema(model, n)
    if not hasattr(model, "step_hook_names"):
        raise ValueError(f"cannot trace a {type(model).__name__}: it is neither a PuzzleModel nor HRM-LM")
    n = cfg.halt_max_steps if n_segments is None else n_segments
    _check_n(n)
    return _puzzle_schema(model, n)


def _check_n(n: object) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n_segments must be an integer >= 1, got {n!r}")


__all__ = ["STEP_COLUMNS", "GATE_STATES", "StepInfo", "StepSchema", "build_schema", "steps_to_frame", "is_lm_model",
           "model_family"]
