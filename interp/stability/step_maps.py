"""The step map of each recurrent puzzle family, as a differentiable function of the carried states.

``model.segment`` detaches its carry (the 1-step gradient), which would cut a
Jacobian-vector product, so the maps here call the model's own step function
``model.cycle`` (HRM ``h_cycle``, TRM ``latent_recursion``, UniTF one pass of
the stack) with every update in the graph, the embedded input held fixed and
no hook points. ``tests/test_stability.py`` checks every map against
``model.segment`` bit for bit.

``unit="segment"``: one ACT segment (the map whose fixed point the residual
``||f(z) - z||`` and the halting head refer to). ``unit="cycle"``: one outer
cycle (HRM: ``L_cycles`` L-updates then one H-update; TRM: one latent
recursion, ``n`` z-updates then one y-update; UniTF: one pass of the stack);
a segment is ``H_cycles`` (UniTF: ``depth``) cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from interp.stability.lyapunov import States, StepMap

UNITS = ("segment", "cycle")


@dataclass
class ModelStepMap:
    """A model's step map on one batch of inputs, its start states and read-out."""

    step: StepMap
    init: States
    answer_state: str
    cycles_per_segment: int

    def steps_for(self, n_segments: int, unit: str) -> int:
        return n_segments if unit == "segment" else n_segments * self.cycles_per_segment


def model_step_map(model: nn.Module, inputs: torch.Tensor, puzzle_ids: torch.Tensor | None = None,
                   unit: str = "segment") -> ModelStepMap:
    """The step map of ``model`` on ``inputs`` [B, L] (token ids already on the model's device)."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    fam = getattr(model.cfg, "family", "")
    if fam not in ("hrm", "trm", "unitf"):
        raise ValueError(f"no step map for model family {fam!r} (supported: hrm, trm, unitf)")
    model.check_inputs(inputs, puzzle_ids)
    with torch.no_grad():
        x = model.embed(inputs, puzzle_ids).detach()
        init = model.init_states(inputs.shape[0], inputs.device)
    rotary, per_segment = model.rotary_tables(x.shape[1]), model.cycles_per_segment

    def cycle(s: States) -> States:
        return model.cycle(s, x, rotary)
    if unit == "cycle":
        return ModelStepMap(cycle, init, model.answer_state, per_segment)

    def segment(s: States) -> States:
        for _ in range(per_segment):
            s = cycle(s)
        return s

    return ModelStepMap(segment, init, model.answer_state, per_segment)


__all__ = ["ModelStepMap", "model_step_map", "UNITS"]
