"""Stability of the step map: finite-time Lyapunov exponents, drift and fixed-point residual (needs the model).

* ``lyapunov``: Benettin FTLE of any step map on dicts of states, with ``torch.func.jvp``/``vmap``
* ``step_maps``: the differentiable segment/cycle map of HRM, TRM and UniTF
* ``run``: ``stability(model, inputs, labels)`` -> per-puzzle and per-step tables
* ``looped_map``/``looped_run``: the same for any looped model (``looped_stability(model, tokens, loop=...)``)
* ``summary``: outcome-split statistics and failure AUCs (pure pandas)
* ``figures``/``report``: the matplotlib figure and a report directory

Names are imported lazily so ``import interp.stability`` stays light.
"""

from __future__ import annotations

from common.lazy import lazy_exports

_EXPORTS = {
    "ftle": "interp.stability.lyapunov",
    "FTLEResult": "interp.stability.lyapunov",
    "jvp_step": "interp.stability.lyapunov",
    "model_step_map": "interp.stability.step_maps",
    "stability": "interp.stability.run",
    "looped_step_map": "interp.stability.looped_map",
    "looped_stability": "interp.stability.looped_run",
    "StabilityResult": "interp.stability.run",
    "outcome_split": "interp.stability.summary",
    "failure_auc": "interp.stability.summary",
    "stability_markdown": "interp.stability.summary",
    "stability_figure": "interp.stability.figures",
    "write_stability_report": "interp.stability.report",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("interp.stability", _EXPORTS, globals())
