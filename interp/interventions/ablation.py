"""Interventions on a running model: ablate a state, patch a state from one input into another.

Both work through the models' step hook points (a hook that returns a tensor
replaces the activation, ``HookedModel.hooks``) and run the ordinary tracer
with those hooks attached, so every result comes with full per-step traces of
the clean and the intervened run::

    res = ablate(model, inputs, labels, target="slow", mode="freeze_init")
    res.summary()          # mean delta loss / accuracy, fraction of changed answers
    res.table()            # one row per puzzle
    res.per_step()         # per-step mean metrics, clean vs ablated

    p = patch(model, source_inputs, target_inputs, "seg7.h1.hook_z_H")
    p.table()              # per pair: did the target's answer move to the source's?
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from common.labels import IGNORE_LABEL
from interp.tracing.schema import StepSchema, build_schema
from interp.tracing.tracer import BatchContext, as_token_tensor, trace
from interp.tracing.trace import Trace, TraceError

MODES = ("freeze_init", "zero", "mean", "skip")


# ----------------------------------------------------------------------------- final outputs
def final_outputs(tr: Trace) -> dict[str, np.ndarray]:
    """The model's actual output per puzzle: predictions [N, L] and, with labels, ce / token_acc / exact.

    Puzzle models answer with the decoded answer state after the last step;
    HRM-LM with the fused logits of the last pass (``seg/pred``, ``seg/ce``).
    """
    if "seg/pred" in tr.arrays:
        out = {"pred": tr.arrays["seg/pred"][:, -1]}
        for m in ("ce", "token_acc"):
            if f"seg/{m}" in tr.arrays:
                out[m] = tr.arrays[f"seg/{m}"][:, -1]
        if tr.labelled:
            lab = tr.labels
            valid = lab != IGNORE_LABEL
            out["exact"] = ((out["pred"] == lab) | ~valid).all(1) & valid.any(1)
        return out
    out = {"pred": tr.predictions[:, -1]}
    if tr.labelled:
        for m in ("ce", "token_acc", "exact"):
            out[m] = tr.metric(m)[:, -1]
    return out


def _compare(a: Trace, b: Trace, names: tuple[str, str]) -> pd.DataFrame:
    fa, fb = final_outputs(a), final_outputs(b)
    na, nb = names
    df = pd.DataFrame({"puzzle": np.arange(a.n_puzzles)})
    for m in ("ce", "token_acc", "exact"):
        if m in fa and m in fb:
            df[f"{m}_{na}"] = fa[m]
            df[f"{m}_{nb}"] = fb[m]
            df[f"delta_{m}"] = fb[m].astype(np.float64) - fa[m].astype(np.float64)
    df["answer_changed"] = (fa["pred"] != fb["pred"]).any(1)
    df["cells_changed"] = (fa["pred"] != fb["pred"]).sum(1)
    return df


# ----------------------------------------------------------------------------- ablation
@dataclass
class AblationResult:
    """Clean and ablated traces of the same inputs, with comparison tables."""

    target: str
    mode: str
    hooks: list[str]
    clean: Trace
    ablated: Trace

    def table(self) -> pd.DataFrame:
        """One row per puzzle: final ce / token_acc / exact clean vs ablated, and whether the answer changed."""
        return _compare(self.clean, self.ablated, ("clean", "ablated"))

    def summary(self) -> dict[str, Any]:
        t = self.table()
        out: dict[str, Any] = {"target": self.target, "mode": self.mode, "n_hooks": len(self.hooks),
                               "n_puzzles": len(t), "answer_changed": float(t["answer_changed"].mean())}
        for m in ("ce", "token_acc", "exact"):
            if f"{m}_clean" in t:
                out[f"{m}_clean"] = float(t[f"{m}_clean"].astype(float).mean())
                out[f"{m}_ablated"] = float(t[f"{m}_ablated"].astype(float).mean())
                out[f"delta_{m}"] = float(t[f"delta_{m}"].mean())
        return out

    def per_step(self) -> pd.DataFrame:
        """Per-step means of the answer metrics in both runs (step table columns included)."""
        a, b = self.clean.summary("step"), self.ablated.summary("step")
        cols = [c for c in ("ce", "token_acc", "exact", f"norm.{self.clean.slow_state}") if c in a.columns]
        out = a[["step", "segment", "updated", "is_slow"]].copy()
        for c in cols:
            out[f"{c}_clean"], out[f"{c}_ablated"] = a[c], b[c]
        return out


def _target_hooks(schema: StepSchema, target: str, steps: Sequence[int] | None) -> tuple[str | None, list[str]]:
    """(state name or None, hook names) for a state/alias/gate name or a hook-name glob."""
    alias = {"slow": schema.slow_state, "fast": schema.fast_state, "answer": schema.answer_state}
    names = [*schema.state_names, *schema.gate_states]
    state = target if target in names else alias.get(target)
    if state is not None:
        hooks = schema.hooks_of(state, steps)
        if not hooks:
            raise TraceError(f"no step writes {state!r}" + (f" among steps {list(steps)[:8]}" if steps is not None else ""))
        return state, hooks
    if target in alias:
        raise TraceError(f"a {schema.family} model has no {target} state (states: {', '.join(names)})")
    hooks = [h for h in schema.hook_to_step if fnmatch.fnmatchcase(h, target)]
    if steps is not None:
        keep = set(int(s) for s in steps)
        hooks = [h for h in hooks if schema.hook_to_step[h][0] in keep]
    if not hooks:
        raise TraceError(f"{target!r} is neither a state ({', '.join(names)}) nor a glob matching a step hook")
    return None, hooks


def _hook_means(model: nn.Module, inputs, puzzle_ids, n_segments, hooks: list[str], batch_size: int) -> dict[str, torch.Tensor]:
    """Mean over puzzles of each hook's value in a clean run: {hook: [P, D]}."""
    sums: dict[str, torch.Tensor] = {}
    count = [0]

    def acc(t: torch.Tensor, hook) -> None:
        s = t.detach().float().sum(0)
        sums[hook.name] = sums[hook.name] + s if hook.name in sums else s

    def factory(ctx: BatchContext):
        count[0] += ctx.rows.stop - ctx.rows.start
        return [(hooks, acc)]

    trace(model, inputs, None, puzzle_ids, n_segments, states="summary", batch_size=batch_size,
          decode_latents=False, fwd_hooks=factory)
    return {k: v / count[0] for k, v in sums.items()}


def ablate(
    model: nn.Module,
    inputs,
    labels=None,
    target: str = "slow",
    mode: str = "freeze_init",
    steps: Sequence[int] | None = None,
    puzzle_ids=None,
    n_segments: int | None = None,
    batch_size: int = 64,
    clean: Trace | None = None,
    progress: bool = False,
) -> AblationResult:
    """Knock out a state (or hook) and compare with the clean run.

    ``target``: a state (``z_H``, ``y``, ``slow``, ``fast``, ``gate_slow``...) or
    a glob over step hook names. ``mode``: ``freeze_init`` (replace every
    update by the initial state: the module never moves), ``zero``, ``mean``
    (the clean run's mean over the given puzzles at that hook), ``skip`` (the
    update at the chosen steps is dropped: the state keeps its previous value).
    ``steps``: global step numbers (rows of the step table) to ablate; default
    every step that writes the target. ``clean``: the clean run's trace when
    already computed (same inputs and settings); ``progress``: progress bars on stderr.
    """
    if mode not in MODES:
        raise TraceError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    schema = build_schema(model, n_segments)
    state, hooks = _target_hooks(schema, target, steps)
    if mode in ("freeze_init", "skip") and (state is None or state not in schema.state_names):
        raise TraceError(f"mode {mode!r} needs a carried state as target (one of {', '.join(schema.state_names)})")
    hook_set = set(hooks)
    means = _hook_means(model, inputs, puzzle_ids, n_segments, hooks, batch_size) if mode == "mean" else {}

    def factory(ctx: BatchContext):
        if mode == "freeze_init":
            init = ctx.init[state]
            return [(hooks, lambda t, hook: init.to(t.dtype).expand_as(t).clone())]
        if mode == "zero":
            return [(hooks, lambda t, hook: torch.zeros_like(t))]
        if mode == "mean":
            return [(hooks, lambda t, hook: means[hook.name].to(t.dtype).expand_as(t).clone())]
        prev = {"v": ctx.init[state]}

        def skip(t: torch.Tensor, hook):
            if hook.name in hook_set:
                return prev["v"].to(t.dtype).clone()
            prev["v"] = t
            return None

        return [(schema.hooks_of(state), skip)]

    if clean is None:
        clean = trace(model, inputs, labels, puzzle_ids, n_segments, states="summary", batch_size=batch_size,
                      progress=progress)
    abl = trace(model, inputs, labels, puzzle_ids, n_segments, states="summary", batch_size=batch_size,
                fwd_hooks=factory, progress=progress, extra_meta={"intervention": {"kind": "ablate", "target": target, "mode": mode,
                                                                "hooks": hooks}})
    return AblationResult(target, mode, hooks, clean, abl)


def slow_ablation_table(
    model: nn.Module,
    inputs,
    labels=None,
    modes: Sequence[str] = ("freeze_init", "zero", "mean"),
    target: str = "slow",
    puzzle_ids=None,
    n_segments: int | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> pd.DataFrame:
    """The Slow/H-module ablation table: one row per mode with clean vs ablated loss and accuracy.

    (The seed-003 experiment freezes the Slow state at its initial value and
    reports the increase in loss.) The clean run is traced once and shared by every mode.
    """
    rows, clean = [], None
    for m in modes:
        res = ablate(model, inputs, labels, target, m, None, puzzle_ids, n_segments, batch_size, clean=clean,
                     progress=progress)
        clean = res.clean
        rows.append(res.summary())
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- patching
@dataclass
class PatchResult:
    """Traces of the source, the clean target and the patched target runs."""

    hooks: list[str]
    source: Trace
    target: Trace
    patched: Trace
    positions: list[int] | None = field(default=None)

    def table(self) -> pd.DataFrame:
        """One row per (source, target) pair: effect of the patch on the target's final answer and loss."""
        df = _compare(self.target, self.patched, ("target", "patched"))
        fs, fp = final_outputs(self.source), final_outputs(self.patched)
        df["agree_with_source"] = (fp["pred"] == fs["pred"]).mean(1)
        df["equals_source"] = (fp["pred"] == fs["pred"]).all(1)
        return df

    def summary(self) -> dict[str, Any]:
        t = self.table()
        out = {"hooks": self.hooks, "n_pairs": len(t), "answer_changed": float(t["answer_changed"].mean()),
               "equals_source": float(t["equals_source"].mean())}
        for m in ("ce", "token_acc", "exact"):
            if f"delta_{m}" in t:
                out[f"delta_{m}"] = float(t[f"delta_{m}"].mean())
        return out


def patch(
    model: nn.Module,
    source_inputs,
    target_inputs,
    hook_name: str | Sequence[str],
    target_labels=None,
    source_labels=None,
    positions: Sequence[int] | None = None,
    source_puzzle_ids=None,
    target_puzzle_ids=None,
    n_segments: int | None = None,
    batch_size: int = 64,
) -> PatchResult:
    """Copy the activation at ``hook_name`` (a hook name, glob or list) from each source into its target.

    Sources and targets are paired row by row (a single source is broadcast).
    ``positions`` restricts the copy to some sequence positions (state rows,
    prefix included). ``target_labels`` score the effect on the target's loss.
    """
    src = as_token_tensor(source_inputs, "source_inputs")
    tgt = as_token_tensor(target_inputs, "target_inputs")
    if src.shape[0] == 1 and tgt.shape[0] > 1:
        src = src.expand(tgt.shape[0], -1).clone()
        if source_labels is not None:
            source_labels = as_token_tensor(source_labels, "source_labels").expand(tgt.shape[0], -1).clone()
    if src.shape != tgt.shape:
        raise TraceError(f"source and target inputs must pair up: {list(src.shape)} vs {list(tgt.shape)}")
    schema = build_schema(model, n_segments)
    patterns = [hook_name] if isinstance(hook_name, str) else list(hook_name)
    hooks = [h for h in model.hook_names(patterns)]
    if not hooks:
        raise TraceError(f"no hook point matches {hook_name!r} (e.g. {', '.join(list(schema.hook_to_step)[:3])})")
    cached: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}

    def save(t: torch.Tensor, hook) -> None:
        cached[hook.name].append(t.detach().clone())

    source = trace(model, src, source_labels, source_puzzle_ids, n_segments, states="summary",
                   batch_size=batch_size, fwd_hooks=[(hooks, save)])
    missing = [h for h, v in cached.items() if not v]
    if missing:
        raise TraceError(f"hook(s) {missing[:3]} did not fire in a {n_segments or 'default'}-segment run")
    values = {h: torch.cat(v) for h, v in cached.items()}
    pos = None if positions is None else torch.as_tensor(list(positions), dtype=torch.long)

    def factory(ctx: BatchContext):
        def put(t: torch.Tensor, hook):
            v = values[hook.name][ctx.rows].to(t.device, t.dtype)
            if pos is None:
                return v.clone()
            out = t.clone()
            out[:, pos] = v[:, pos]
            return out

        return [(hooks, put)]

    target = trace(model, tgt, target_labels, target_puzzle_ids, n_segments, states="summary", batch_size=batch_size)
    patched = trace(model, tgt, target_labels, target_puzzle_ids, n_segments, states="summary",
                    batch_size=batch_size, fwd_hooks=factory,
                    extra_meta={"intervention": {"kind": "patch", "hooks": hooks, "positions": positions}})
    return PatchResult(hooks, source, target, patched, None if positions is None else list(positions))


__all__ = ["ablate", "patch", "slow_ablation_table", "AblationResult", "PatchResult", "final_outputs", "MODES"]
