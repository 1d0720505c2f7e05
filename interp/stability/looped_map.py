"""The step map of any looped model (``models.looped.LoopedTraced``), as a differentiable function of its states.

A looped model's forward is arbitrary code around repeated calls of its loop module(s). The state after
call ``k`` is the latest output of every loop module (``{state name: [B, positions, hidden]}``); step ``k``
of the map takes it to the state after call ``k + 1``. The map is computed by **replaying** the model's own
forward: a forward hook replaces the output of each state's latest call up to ``k`` with the given tensor,
everything the forward computes after that (attention masks, position tables, Huginn's injected input,
Ouro's exit gate, the timestep embedding of a Universal Transformer) is recomputed from it as the forward
does, and the output of call ``k + 1`` is taken and the forward stopped there. So the map needs nothing
from the model but its loop modules, and the states it produces from the recorded ones are the recorded
next states, bit for bit (``tests/test_looped_stability.py``). A state not written by call ``k + 1``
is carried on unchanged.

The map is non-autonomous (step ``k``'s other arguments differ), so there is one map per step; the
trajectory starts after the first call by which every loop module has run (HRM-Text: its first
``H_module`` call). A model that exits early has as many steps as calls that ran. Cost: step ``k`` reruns
the forward up to call ``k + 1`` (quadratic in the number of calls). The random state of the CPU generator
is restored before every replay, so a model that draws random numbers (Huginn's random start) replays the
recorded run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.stability.lyapunov import States, StepMap
from models.looped import LoopedTraced, LoopError, split_output


class _Stop(Exception):
    """Raised by the replay hook at the call whose output is the map's value."""

    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.value = value


@dataclass
class LoopedStepMap:
    """A looped model's step maps on one batch, the recorded states and which call wrote what."""

    maps: list[StepMap]  # maps[t]: states after call first + t -> states after call first + t + 1 (for jvp)
    exact: list[StepMap]  # the same maps run as the recorded forward ran (same kernels, grad mode untouched)
    states: list[States]  # recorded states after calls first .. last (detached)
    calls: list[str]  # the state each call of this run wrote
    first: int  # the first call after which every loop state exists
    answer_state: str

    @property
    def init(self) -> States:
        return self.states[0]

    @property
    def calls_ran(self) -> int:
        return len(self.calls)

    @property
    def n_steps(self) -> int:
        return len(self.maps)


def _run(wrapped: LoopedTraced, tokens: torch.Tensor, hook_for, rng: torch.Tensor) -> None:
    handles = [wrapped.inner.get_submodule(p).register_forward_hook(hook_for(s)) for s, p in wrapped.cfg.loop.items()]
    grad = torch.is_grad_enabled()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(rng)
            wrapped.call_model(tokens)
    finally:
        torch.set_grad_enabled(grad)  # a replay hook turns it on at the first replaced state
        for h in handles:
            h.remove()


def looped_step_map(wrapped: LoopedTraced, tokens: torch.Tensor) -> LoopedStepMap:
    """The step maps of a planned ``LoopedTraced`` on token ids ``tokens`` [B, L] (on the model's device).

    A run with fewer than two calls after its first full state has no step (``n_steps == 0``, no maps)."""
    if not wrapped.planned:
        raise LoopError("plan the loop first (interp.tracing.looped.wrap_looped)")
    rng = torch.get_rng_state()
    names = list(wrapped.cfg.loop)
    calls: list[str] = []
    outs: list[torch.Tensor] = []

    def record(s: str):
        def fn(module, args, output):
            calls.append(s)
            outs.append(split_output(output)[0].detach().clone())
        return fn

    with torch.no_grad():
        _run(wrapped, tokens, record, rng)
    seen: set[str] = set()
    first = None
    for j, s in enumerate(calls):
        seen.add(s)
        if len(seen) == len(names):
            first = j
            break
    if first is None:
        return LoopedStepMap([], [], [], calls, len(calls), wrapped.answer_state)
    latest: dict[str, int] = {}
    states: list[States] = []
    last_at: list[dict[str, int]] = []
    for j, s in enumerate(calls):
        latest[s] = j
        if j >= first:
            states.append({n: outs[latest[n]] for n in names})
            last_at.append(dict(latest))
    steps = range(len(calls) - first - 1)
    maps = [_replay(wrapped, tokens, calls, last_at[t], first + t + 1, rng, True) for t in steps]
    exact = [_replay(wrapped, tokens, calls, last_at[t], first + t + 1, rng, False) for t in steps]
    return LoopedStepMap(maps, exact, states, calls, first, wrapped.answer_state)


def _replay(wrapped: LoopedTraced, tokens: torch.Tensor, calls: list[str], last: dict[str, int], target: int,
            rng: torch.Tensor, for_jvp: bool) -> StepMap:
    """The map: replace the output of call ``last[s]`` by ``z[s]`` for every state, return after call ``target``.

    ``for_jvp``: grad mode on from the first replaced state (fused inference kernels such as
    ``nn.MultiheadAttention``'s fast path have no forward-mode derivative), so its values may differ from the
    recorded run's in the last bits; without it the map repeats the recorded run's arithmetic."""
    put = {j: s for s, j in last.items()}

    def step(z: States) -> States:
        count = [0]

        def hook_for(s: str):
            def fn(module, args, output):
                j = count[0]
                count[0] += 1
                if j >= len(calls) or calls[j] != s:
                    raise LoopError(f"the replay called {s} at call {j}, the recorded run "
                                    f"{calls[j] if j < len(calls) else 'had ended'}")
                if j == target:
                    raise _Stop(split_output(output)[0])
                if j in put:
                    if for_jvp:  # the prefix before stays cheap
                        torch.set_grad_enabled(True)
                    return split_output(output)[1](z[s])
                return None
            return fn

        try:
            _run(wrapped, tokens, hook_for, rng)
        except _Stop as stop:
            return {n: stop.value if n == calls[target] else z[n] for n in z}
        raise LoopError(f"the forward ended before call {target} (an exit decided on the replaced state)")

    return step


__all__ = ["LoopedStepMap", "looped_step_map"]
