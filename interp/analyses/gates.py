"""HRM-LM gate statistics (the seed-003 table).

Per step: mean and spread of the Fast and Slow gates (sigmoid values, 1 =
take the candidate, 0 = keep the old state), state norms, cos(fast, slow);
the same split by whether the step directly follows a Slow firing; and the
fusion weights per source (fast / slow / encoded) for each pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.tracing.trace import Trace, TraceError


@dataclass
class GateStats:
    per_step: pd.DataFrame  # one row per global step
    by_step_in_pass: pd.DataFrame  # averaged over passes: one row per step index m
    by_phase: pd.DataFrame  # after a Slow firing vs other steps
    fusion: pd.DataFrame  # pass x source mean fusion weight

    def table(self) -> pd.DataFrame:
        """The seed-003 table: per step within a pass, gates, norms and fast/slow cosine."""
        return self.by_step_in_pass


def _mean(trace: Trace, key: str) -> np.ndarray | None:
    if key not in trace.metric_names:
        return None
    with np.errstate(all="ignore"):
        v = trace.metric(key).astype(np.float64)
        n = np.isfinite(v).sum(0)
        return np.where(n > 0, np.nansum(v, 0) / np.maximum(n, 1), np.nan)


def gate_statistics(trace: Trace) -> GateStats:
    """Gate/fusion/norm statistics of an HRM-LM trace (raises for traces without gates)."""
    gates = trace.meta.get("gate_states", [])
    if not gates:
        raise TraceError(f"a {trace.family} trace has no gates (gate statistics are for HRM-LM traces)")
    df = trace.steps[["step", "segment", "step_in_segment", "outer", "inner", "is_slow", "after_slow"]].copy()
    for g in gates:
        for stat in ("mean", "std"):
            v = _mean(trace, f"{stat}.{g}")
            if v is not None:
                df[f"{g}_{stat}"] = v
    for s in trace.state_names:
        v = _mean(trace, f"norm.{s}")
        if v is not None:
            df[f"norm_{s}"] = v
    names = trace.state_names
    if len(names) >= 2:
        for k in (f"cos.{names[0]}.{names[1]}", f"cos.{names[1]}.{names[0]}"):
            if k in trace.metric_names:
                df[f"cos_{names[0]}_{names[1]}"] = _mean(trace, k)
    for m in ("ce", "token_acc"):
        if m in trace.metric_names:
            df[f"{m}_{trace.answer_state}"] = _mean(trace, m)
    value_cols = [c for c in df.columns if c not in ("step", "segment", "step_in_segment", "outer", "inner",
                                                     "is_slow", "after_slow")]
    by_m = df.groupby("step_in_segment")[value_cols + ["is_slow", "after_slow"]].mean().reset_index()
    by_phase = df.groupby("after_slow")[value_cols].mean().reset_index().rename(
        columns={"after_slow": "after_slow_firing"})
    fusion = pd.DataFrame()
    if "seg/fusion" in trace.arrays:
        w = trace.arrays["seg/fusion"].astype(np.float64)  # [N, passes, K]
        sources = trace.meta.get("fusion_sources") or [f"source{i}" for i in range(w.shape[-1])]
        fusion = pd.DataFrame(w.mean(0), columns=sources)
        fusion.insert(0, "pass", np.arange(w.shape[1]))
    return GateStats(df, by_m, by_phase, fusion)


__all__ = ["gate_statistics", "GateStats"]
