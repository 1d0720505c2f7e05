"""Running a model segment by segment from a stored carry: what patching and attribution share.

Puzzle models (HRM, TRM, UniTF, Transformer) run ``model.segment`` (the
``cycle`` step function ``H_cycles`` times); HRM-LM runs ``model.run_pass`` on
the token encoding computed once; HRM-Text runs one forward of the wrapped
transformers model (one segment, all its L-cycles in the graph under ``full_graph``). Both read and write the same step hook
points the tracer records, so a unit of analysis is a ``(hook, position)``
pair, located on the trace's step axis by the model's :class:`StepSchema`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from interp.causal.errors import CausalError
from interp.tracing.schema import StepSchema, build_schema, model_family

States = dict[str, torch.Tensor]


@dataclass
class Prepared:
    """One batch ready to run: tokens, puzzle ids and (HRM-LM) the token encoding."""

    x: torch.Tensor
    pid: torch.Tensor | None
    encoding: torch.Tensor | None = None


class SegmentRunner:
    """``model`` run ``n_segments`` segments (HRM-LM: passes) at a time or from any segment on."""

    def __init__(self, model: nn.Module, n_segments: int | None = None):
        self.model = model
        self.family = model_family(model)
        if not (hasattr(model, "segment") or hasattr(model, "run_pass")):
            raise CausalError(f"{type(model).__name__} has no recurrent segments to patch")
        self.schema: StepSchema = build_schema(model, n_segments)
        self.n_segments = self.schema.n_segments
        self.lm = self.family == "hrm_lm"
        if self.lm:
            model.ensure_pass_hooks(self.n_segments)
        else:
            model.ensure_segment_hooks(self.n_segments)

    # ----- inputs and states ----------------------------------------------------
    def prepare(self, x: torch.Tensor, pid: torch.Tensor | None = None) -> Prepared:
        """Check the inputs (one-line errors) and compute what every segment shares."""
        m = self.model
        if self.lm:
            m.check_inputs(x)
            with torch.no_grad():
                return Prepared(x, None, m.encode(x))
        m.check_inputs(x, pid)
        return Prepared(x, pid)

    def start_states(self, batch: Prepared) -> States:
        """The model's own starting states for the batch (``fresh_states``: every family has one)."""
        return self.model.fresh_states(batch.x)

    def input_hook(self) -> str:
        """Hook names (glob) of the embedded input the recurrence reads (integrated gradients move it)."""
        if self.family == "hrm_text":
            raise CausalError("integrated gradients need the embedded input as a hook point, which HRM-Text's "
                              "wrapper does not have: use atp or patch")
        return "hook_encoded" if self.lm else "seg*.hook_x"

    def embed(self, batch: Prepared) -> torch.Tensor:
        """The value of the input hook for this batch (no hooks run)."""
        if self.lm:
            return batch.encoding  # computed once in ``prepare``
        with torch.no_grad():
            return self.model.embed(batch.x, batch.pid)

    # ----- running ---------------------------------------------------------------
    def segment(self, batch: Prepared, states: States, s: int) -> tuple[States, torch.Tensor]:
        """Segment (pass) ``s`` from ``states``: the carry it hands on and its answer logits."""
        if self.lm:
            out = self.model.run_pass(states, batch.encoding, s)
            return out.states, out.logits
        new, out = self.model.segment(states, batch.x, batch.pid, seg=s)
        return new, out.logits

    def run(self, batch: Prepared, states: States, start: int = 0, end: int | None = None,
            keep_carries: bool = False) -> tuple[torch.Tensor, list[States]]:
        """Segments ``start``..``end``-1 (default all): the last logits and, if asked, the carry entering each."""
        end = self.n_segments if end is None else end
        carries, logits = [], None
        for s in range(start, end):
            if keep_carries:
                carries.append({k: v.detach().clone() for k, v in states.items()})
            states, logits = self.segment(batch, states, s)
        return logits, carries


__all__ = ["Prepared", "SegmentRunner", "States"]
