"""Stability of a model's step map on puzzles: FTLE, drift and fixed-point residual per puzzle and step.

``stability(model, inputs, labels)`` returns two tables:

* ``per_puzzle``: ``ftle`` (leading finite-time exponent, natural log per step),
  ``ftle_1 .. ftle_{k-1}`` (the rest of the estimated spectrum, not sorted),
  ``residual`` (``||f(z_T) - z_T|| / ||z_T||``, one extra step after the last),
  ``drift_final`` (``||z_T - z_{T-1}||``), ``q_halt`` (halting logit of the
  final state), and with labels ``solved`` (every cell right after the last
  step, the evaluation semantics) and ``n_wrong``.
* ``per_step``: puzzle, step (1..T), ``log_stretch`` (leading direction),
  ``drift``, ``rel_drift``, ``q_halt``, and with labels ``exact`` after the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from interp.stability.lyapunov import flat, ftle
from interp.stability.step_maps import UNITS, model_step_map
from interp.tracing import metrics as M
from interp.tracing.tracer import model_device, prepare_inputs


@dataclass
class StabilityResult:
    per_puzzle: pd.DataFrame
    per_step: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)


def _readout(model: nn.Module, answer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model.decode(answer), model.halt_logits(answer)[0]


def stability(
    model: nn.Module,
    inputs,
    labels=None,
    puzzle_ids=None,
    n_segments: int | None = None,
    unit: str = "segment",
    k: int = 4,
    burn_in: int = 0,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
) -> StabilityResult:
    """FTLE (Benettin, ``k`` tangents), drift and residual of ``model``'s step map per puzzle; see module doc.

    ``n_segments`` (default ``halt_max_steps``) segments are run; with
    ``unit="cycle"`` each is split into its outer cycles (more, shorter steps).
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    fam = getattr(getattr(model, "cfg", None), "family", "")
    n_seg = int(n_segments or model.cfg.halt_max_steps)
    x, y, pid = prepare_inputs(model, inputs, labels, puzzle_ids)
    dev = model_device(model)
    was_training = model.training
    model.eval()
    puzzle_rows, step_rows = [], []
    from common.progress import Progress

    bar = Progress(x.shape[0], "stability", enabled=bool(progress))
    try:
        for a in range(0, x.shape[0], batch_size):
            b = min(x.shape[0], a + batch_size)
            xb = x[a:b].to(dev)
            pb = pid[a:b].to(dev) if pid is not None else None
            sm = model_step_map(model, xb, pb, unit)
            T = sm.steps_for(n_seg, unit)
            res = ftle(sm.step, sm.init, T, k=k, burn_in=burn_in, seed=seed + a)
            with torch.no_grad():
                last = res.states[-1]
                extra = sm.step(last)
                resid = (flat(extra) - flat(last)).double().norm(dim=1) / flat(last).double().norm(dim=1).clamp_min(1e-300)
            yb = y[a:b].to(dev) if y is not None else None
            mask = M.eval_mask(xb, yb, False) if yb is not None else None
            q_steps, exact_steps = [], []
            for s in res.states[1:]:
                logits, q = _readout(model, s[sm.answer_state])
                q_steps.append(q.float().cpu().numpy())
                if yb is not None:
                    m = M.decoded_metrics(logits, yb, mask)
                    exact_steps.append((m["exact"].cpu().numpy().astype(bool), m["n_wrong"].cpu().numpy()))
            expo = res.exponents.numpy()
            for i in range(b - a):
                row = {"puzzle": a + i, "ftle": float(expo[i, 0])}
                row.update({f"ftle_{j}": float(expo[i, j]) for j in range(1, expo.shape[1])})
                row.update(residual=float(resid[i]), drift_final=float(res.drift[i, -1]), q_halt=float(q_steps[-1][i]))
                if exact_steps:
                    row.update(solved=bool(exact_steps[-1][0][i]), n_wrong=int(exact_steps[-1][1][i]))
                puzzle_rows.append(row)
                for t in range(T):
                    srow = {"puzzle": a + i, "step": t + 1, "log_stretch": float(res.log_stretch[i, t, 0]),
                            "drift": float(res.drift[i, t]), "rel_drift": float(res.rel_drift[i, t]),
                            "q_halt": float(q_steps[t][i])}
                    if exact_steps:
                        srow["exact"] = bool(exact_steps[t][0][i])
                    step_rows.append(srow)
            bar.update(b - a)
        bar.close()
    finally:
        bar.close(ok=False)  # after an error: the bar goes, no closing line
        model.train(was_training)
    settings = {"family": fam, "unit": unit, "n_segments": n_seg, "k": k, "burn_in": burn_in, "seed": seed,
                "n_puzzles": int(x.shape[0])}
    return StabilityResult(pd.DataFrame(puzzle_rows), pd.DataFrame(step_rows), settings)


__all__ = ["StabilityResult", "stability"]
