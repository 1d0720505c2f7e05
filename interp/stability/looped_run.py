"""Stability of any looped model's step map: FTLE, drift and fixed-point residual per input and step.

``looped_stability(model, tokens, loop=...)`` wraps and plans the model as ``interp.trace_looped`` does
(same ``loop``/``head``/``norm``/``call`` arguments, or an already planned ``LoopedTraced``), builds the
replayed step maps of ``interp.stability.looped_map`` and runs the Benettin estimate on them. Tables:

* ``per_puzzle`` (one row per input): ``calls`` (loop-module calls that ran), ``n_steps`` (steps measured:
  calls after the first full state, minus one), ``ftle``, ``ftle_1 ..``, ``residual``
  (``||f(z_T) - z_T|| / ||z_T||`` with the last step's map applied once more; NaN when the replayed model
  exits before that call), ``drift_final``.
* ``per_step``: puzzle, step (1..n_steps), ``call`` (the trace's step index of the state reached), ``state``
  (the loop state that call wrote), ``log_stretch``, ``drift``, ``rel_drift``, ``ce`` (mean next-token
  cross-entropy of the logit lens of the answer state, as ``interp.trace_looped`` reads it; NaN unless ``lm``).

A model whose loop count varies (early exit) runs one input per batch, so every row uses only the steps
that ran for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from interp.stability.looped_map import looped_step_map
from interp.stability.lyapunov import flat, ftle
from interp.stability.run import StabilityResult
from interp.tracing.inputs import ArrayLike, as_token_tensor
from interp.tracing.looped import wrap_looped
from models.device import model_device
from models.looped import LoopedTraced, LoopError


def _lens_ce(wrapped: LoopedTraced, x: torch.Tensor, answers: list[torch.Tensor]) -> torch.Tensor:
    """[T, B] mean next-token cross-entropy of the lens of each step's answer state (NaN for a non-causal model)."""
    if not wrapped.cfg.causal or x.shape[1] < 2:
        return torch.full((len(answers), x.shape[0]), float("nan"))
    rows = []
    with torch.no_grad():
        for h in answers:
            logits = wrapped.decode(h)[:, :-1].float()
            ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")
            rows.append(ce.mean(dim=1).cpu())
    return torch.stack(rows)


def looped_stability(model: nn.Module, inputs: ArrayLike, loop: str | Sequence[str] | dict[str, str] | None = None,
                     *, head: str | None = "auto", norm: str | None = "auto",
                     call: Callable[[nn.Module, torch.Tensor], Any] | None = None, lm: bool = True,
                     k: int = 4, burn_in: int = 0, batch_size: int = 1, seed: int = 0,
                     progress: bool = False) -> StabilityResult:
    """FTLE (``k`` tangents), drift and residual of a looped model's step map per input; see module doc."""
    x = as_token_tensor(inputs, "inputs").to(model_device(model))
    own = not isinstance(model, LoopedTraced)
    wrapped = wrap_looped(model, x, loop, head, norm, call=call, lm=lm, batch_size=batch_size) if own else model
    if wrapped.variable_steps:
        batch_size = 1  # each input's own number of calls
    from common.progress import Progress

    puzzle_rows, step_rows = [], []
    bar = Progress(x.shape[0], "stability", enabled=bool(progress))
    try:
        for a in range(0, x.shape[0], batch_size):
            b = min(x.shape[0], a + batch_size)
            sm = looped_step_map(wrapped, x[a:b])
            if sm.n_steps == 0 and wrapped.variable_steps:  # this input exited too early to have a step
                puzzle_rows.append({"puzzle": a, "calls": sm.calls_ran, "n_steps": 0})
                bar.update(b - a)
                continue
            if sm.n_steps == 0:
                raise LoopError(f"the loop ran {sm.calls_ran} calls; a step needs two calls after every loop state "
                                f"({', '.join(wrapped.cfg.loop)}) has been written")
            if burn_in >= sm.n_steps:
                raise LoopError(f"burn_in {burn_in} leaves no step to average ({sm.n_steps} steps for rows {a}..{b - 1})")
            res = ftle(sm.maps, sm.init, sm.n_steps, k=k, burn_in=burn_in, seed=seed + a, batched=False)
            last = res.states[-1]
            with torch.no_grad():
                try:
                    extra = sm.maps[-1](last)
                    resid = ((flat(extra) - flat(last)).double().norm(dim=1)
                             / flat(last).double().norm(dim=1).clamp_min(1e-300)).cpu()
                except LoopError:
                    resid = torch.full((b - a,), float("nan"), dtype=torch.float64)
            ce = _lens_ce(wrapped, x[a:b], [z[sm.answer_state] for z in res.states[1:]])
            expo = res.exponents.numpy()
            for i in range(b - a):
                row = {"puzzle": a + i, "calls": sm.calls_ran, "n_steps": sm.n_steps, "ftle": float(expo[i, 0])}
                row.update({f"ftle_{j}": float(expo[i, j]) for j in range(1, expo.shape[1])})
                row.update(residual=float(resid[i]), drift_final=float(res.drift[i, -1]))
                puzzle_rows.append(row)
                for t in range(sm.n_steps):
                    c = sm.first + t + 1
                    step_rows.append({"puzzle": a + i, "step": t + 1, "call": c, "state": sm.calls[c],
                                      "log_stretch": float(res.log_stretch[i, t, 0]), "drift": float(res.drift[i, t]),
                                      "rel_drift": float(res.rel_drift[i, t]), "ce": float(ce[t, i])})
            bar.update(b - a)
        bar.close()
    finally:
        bar.close(ok=False)
        if own:
            wrapped.release()
    settings = {"family": "looped", "loop": dict(wrapped.cfg.loop), "model_class": wrapped.cfg.model_class,
                "k": k, "burn_in": burn_in, "seed": seed, "n_puzzles": int(x.shape[0]), "step_map": "replay"}
    cols = ["puzzle", "calls", "n_steps", "ftle", *[f"ftle_{j}" for j in range(1, k)], "residual", "drift_final"]
    per_puzzle = pd.DataFrame(puzzle_rows).reindex(columns=cols)  # NaN where an input had no step
    return StabilityResult(per_puzzle, pd.DataFrame(step_rows), settings)


__all__ = ["looped_stability"]
