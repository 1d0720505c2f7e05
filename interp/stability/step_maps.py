"""The step map of each recurrent puzzle family, as a differentiable function of the carried states.

``model.segment`` detaches its carry (the 1-step gradient), which would cut a
Jacobian-vector product, so the maps here call the models' own modules in the
order ``segment`` does (HRM ``L_level``/``H_level``, TRM ``L_level`` as the one
net, UniTF ``stack``) with the embedded input held fixed. Hook points are not
run. ``tests/test_stability.py`` checks every map against ``model.segment``.

``unit="segment"``: one ACT segment (the map whose fixed point the residual
``||f(z) - z||`` and the halting head refer to). ``unit="cycle"``: one outer
cycle (HRM: ``L_cycles`` L-updates then one H-update; TRM: one latent
recursion, ``n`` z-updates then one y-update; UniTF: one pass of the stack);
a segment is ``H_cycles`` (UniTF: ``depth``) cycles.
"""

from __future__ import annotations

from collections.abc import Callable
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


def _cycle_fn(model: nn.Module, x: torch.Tensor) -> tuple[Callable[[States], States], int]:
    fam = getattr(model.cfg, "family", "")
    if fam == "hrm":
        rotary, L = model.rotary_tables(), model.cfg.L_cycles

        def hrm_cycle(s: States) -> States:
            z_H, z_L = s["z_H"], s["z_L"]
            for _ in range(L):
                z_L = model.L_level(z_L, z_H + x, rotary)
            return {"z_H": model.H_level(z_H, z_L, rotary), "z_L": z_L}

        return hrm_cycle, model.cfg.H_cycles
    if fam == "trm":
        rotary, n = model.rotary_tables(), model.cfg.L_cycles

        def trm_cycle(s: States) -> States:
            y, z = s["y"], s["z"]
            for _ in range(n):
                z = model.L_level(z, y + x, rotary)
            return {"y": model.L_level(y, z, rotary), "z": z}

        return trm_cycle, model.cfg.H_cycles
    if fam == "unitf":
        rotary = model.rotary_tables(x.shape[1])

        def unitf_cycle(s: States) -> States:
            return {"z": model.stack(s["z"], x, rotary)}

        return unitf_cycle, model.cfg.depth
    raise ValueError(f"no step map for model family {fam!r} (supported: hrm, trm, unitf)")


def model_step_map(model: nn.Module, inputs: torch.Tensor, puzzle_ids: torch.Tensor | None = None,
                   unit: str = "segment") -> ModelStepMap:
    """The step map of ``model`` on ``inputs`` [B, L] (token ids already on the model's device)."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    model.check_inputs(inputs, puzzle_ids)
    with torch.no_grad():
        x = model.embed(inputs, puzzle_ids).detach()
        init = model.init_states(inputs.shape[0], inputs.device)
    cycle, per_segment = _cycle_fn(model, x)
    if unit == "cycle":
        return ModelStepMap(cycle, init, model.answer_state, per_segment)

    def segment(s: States) -> States:
        for _ in range(per_segment):
            s = cycle(s)
        return s

    return ModelStepMap(segment, init, model.answer_state, per_segment)


__all__ = ["ModelStepMap", "model_step_map", "UNITS"]
