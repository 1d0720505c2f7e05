"""The steering experiment: can a direction added at chosen steps (or clamping decided cells) turn failures
into solves, against random directions of the same norm at equal budget?

Protocol (:func:`steering_experiment`):

1. one unsteered run of every puzzle (the evaluation depth, no halting) records, per puzzle, whether it is
   solved, the state at each start step and the carry entering each start segment;
2. the puzzles are split in order: the first ``fit_fraction`` *fit* the directions, the rest are
   *evaluated* (by default only the ones the model fails): the two sets are disjoint;
3. directions, fitted at each start step on the fit puzzles' target cells (Sudoku: blank cells):
   ``mean_diff`` (mean state of solved minus failed puzzles), ``probe`` (logistic-regression weight of "this
   cell's final answer is right"), ``sae`` (a feature of a sparse autoencoder trained on those states, or of a
   given dictionary: the one whose activation best separates solved from failed puzzles, signed towards
   solved), ``user`` (a given vector); each is rescaled to the mean norm of a target cell's state, so
   ``scale`` 1 adds a vector as long as a typical cell state;
4. each direction is added with each ``scale`` at every update of the state from the start step on
   (``window`` updates, 0 = to the end), at the target cells; ``clamp`` holds the state of the cells decoded
   with confidence >= ``threshold`` at the start step for every later step;
5. every setting has its matched control at equal budget (same puzzles, same segments, same cells): a
   Gaussian random direction of the same norm (``random(<name>)``), or for ``clamp`` as many random target
   cells per puzzle; controls are rows with ``control = 1``.

One row per (direction, start step, scale): ``n`` puzzles, ``solved_before``, ``solved_after`` with the Wilson
95% interval of the solve rate after (``after_lo``, ``after_hi``), ``flipped`` (failed -> solved), ``broken``
(solved -> failed), the mean metric (``logit_diff_max``) before and after, the fraction of answer cells
changed, the mean critical step of the puzzles solved before / after, and its mean shift over the puzzles
solved both before and after (``on="all"``). ``mode`` ``ablate`` or ``clamp`` removes a direction or sets its
coefficient (to ``scale``) instead of adding it; the clamp of decided cells is mode ``hold``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from common.stats import wilson_interval
from interp.causal.runner import SegmentRunner
from interp.steering.directions import (
    Direction,
    DirectionError,
    check_width,
    mean_difference,
    probe_direction,
    random_like,
    sae_feature,
)
from interp.steering.intervene import MODES, clamp_cells_hooks, direction_hooks, position_mask
from interp.steering.run import resolve_state, state_hooks, steered_run, target_mask

KINDS = ("mean_diff", "sae", "probe", "clamp", "user")
DEFAULT_KINDS = ("mean_diff", "sae", "probe", "clamp")
COLUMNS = ["direction", "control", "kind", "state", "segment", "step", "window", "scale", "norm", "n",
           "solved_before", "solved_after", "rate_after", "after_lo", "after_hi", "flipped", "broken",
           "metric_before", "metric_after", "cells_changed", "critical_before", "critical_after", "critical_shift",
           "cells_steered", "mode"]


@dataclass
class SteerSettings:
    """What the experiment steers, where, how strongly, and on which puzzles (see module docstring)."""

    directions: Sequence[str] = DEFAULT_KINDS
    state: str = "answer"
    steps: Sequence[int] | None = None
    window: int = 0
    scales: Sequence[float] = (0.25, 1.0)
    controls: int = 1  # random controls per setting (each one run over the same puzzles)
    mode: str = "add"  # what is done with the directions: add (scale * v), ablate (scale unused), clamp (to scale)
    cells: str = "auto"  # "targets", "all", or "auto" (targets for puzzles, all positions for language models)
    fit_fraction: float = 0.5
    on: str = "failed"  # evaluate the "failed" puzzles of the evaluation set, or "all" of them
    threshold: float = 0.9
    seed: int = 0
    sae_features: int = 64
    sae_steps: int = 800
    feature: int | None = None
    batch_size: int = 32
    user: Direction | None = None
    sae: object | None = None  # a loaded probes.sae.SparseAutoencoder (else one is trained on the fit set)


@dataclass
class SteerResult:
    """The table (one row per direction x setting), per-puzzle outcomes, and what was fitted."""

    table: pd.DataFrame
    puzzles: pd.DataFrame
    info: dict


def default_steps(runner: SegmentRunner, state: str) -> list[int]:
    """The first update of ``state`` in the segments at a quarter and a half of the depth (one segment: the
    updates at a quarter and a half of its updates)."""
    steps = sorted(runner.schema.hook_to_step[h][0] for h in state_hooks(runner, state))
    S = runner.n_segments
    if S == 1:
        return sorted({steps[len(steps) // 4], steps[len(steps) // 2]})
    segs = sorted({max(1, round(S / 4)), max(1, round(S / 2))})
    first = {}
    for k in steps:
        first.setdefault(runner.schema.steps[k].segment, k)
    return [first[s] for s in segs if s in first]


def _check(settings: SteerSettings, steps_of_state: list[int], steps: list[int]) -> None:
    bad = [d for d in settings.directions if d not in KINDS]
    if bad or not settings.directions:
        raise DirectionError(f"unknown direction kind {bad[0] if bad else ''!r} (one of {', '.join(KINDS)})")
    if "user" in settings.directions and settings.user is None:
        raise DirectionError("direction kind 'user' needs a vector (--vector FILE)")
    for a in settings.scales:
        if not np.isfinite(float(a)):
            raise DirectionError(f"scales must be finite, got {a}")
    wrong = [k for k in steps if k not in steps_of_state]
    if wrong:
        raise DirectionError(f"step {wrong[0]} does not update the steered state (its updates are steps "
                             f"{steps_of_state[0]}..{steps_of_state[-1]}, e.g. {', '.join(map(str, steps_of_state[:6]))})")
    if not 0 < settings.fit_fraction < 1:
        raise DirectionError(f"fit_fraction must be in (0, 1), got {settings.fit_fraction}")
    if settings.on not in ("failed", "all"):
        raise DirectionError(f"on must be 'failed' or 'all', got {settings.on!r}")
    if settings.mode not in MODES:
        raise DirectionError(f"unknown mode {settings.mode!r} (one of {', '.join(MODES)})")
    if settings.controls < 1:
        raise DirectionError(f"controls must be >= 1, got {settings.controls}")
    if settings.window < 0:
        raise DirectionError(f"window must be >= 0, got {settings.window}")


def _bar(total: int, progress: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not progress, file=sys.stderr, desc=desc, leave=False)


def _batches(n: int, size: int) -> list[np.ndarray]:
    return [np.arange(a, min(n, a + size)) for a in range(0, n, size)]


def steering_experiment(model: nn.Module, inputs: np.ndarray, labels: np.ndarray,
                        settings: SteerSettings | None = None, n_segments: int | None = None,
                        lm: bool | None = None, progress: bool = False) -> SteerResult:
    """Run the steering experiment on puzzles ``inputs``/``labels`` [N, L] (see module docstring)."""
    s = settings or SteerSettings()
    model.eval()
    runner = SegmentRunner(model, n_segments)
    state = resolve_state(runner, s.state)
    hooks_all = state_hooks(runner, state)
    step_of = {h: runner.schema.hook_to_step[h][0] for h in hooks_all}
    steps_of_state = sorted(step_of.values())
    steps = list(s.steps) if s.steps is not None else default_steps(runner, state)
    _check(s, steps_of_state, steps)
    lm = (runner.lm or runner.family == "hrm_text") if lm is None else lm
    x_all = np.asarray(inputs, dtype=np.int64)
    y_all = np.asarray(labels, dtype=np.int64)
    N = len(x_all)
    tgt_all = target_mask(x_all, y_all)
    cells = ("all" if lm else "targets") if s.cells == "auto" else s.cells
    if cells not in ("targets", "all"):
        raise DirectionError(f"cells must be 'targets', 'all' or 'auto', got {s.cells!r}")
    n_fit = int(np.floor(N * s.fit_fraction))
    needs_fit = any(d in ("mean_diff", "probe") for d in s.directions) or ("sae" in s.directions and s.sae is None)
    if needs_fit and (n_fit < 2 or N - n_fit < 1):
        raise DirectionError(f"{N} puzzle(s) are too few to fit directions on {s.fit_fraction:.0%} of them and "
                             "evaluate on the rest")
    from models.device import model_device

    dev = model_device(model)
    prefix = int(getattr(model, "prefix_len", 0))
    start_hook = {k: h for h, k in step_of.items()}
    start_segs = sorted({runner.schema.steps[k].segment for k in steps})

    # 1. the unsteered run of every puzzle
    base_solved, base_metric, base_crit, base_final = [], [], [], []
    carries: dict[int, list] = {g: [] for g in start_segs}
    captured: dict[int, list] = {k: [] for k in steps}
    bar = _bar(N, progress, "unsteered run")
    for rows in _batches(N, s.batch_size):
        batch, lab, tg = _batch(runner, x_all, y_all, tgt_all, rows, dev)
        got: dict[str, torch.Tensor] = {}

        def save(t, hook, _got=got):
            _got[hook.name] = t.detach().float().cpu()

        names = {start_hook[k] for k in steps}
        out = steered_run(runner, batch, lab, tg, [(lambda n, _n=names: n in _n, save)], keep_carries=start_segs)
        base_solved.append(out.solved)
        base_metric.append(out.metric)
        base_crit.append(out.critical_step)
        base_final.append(out.final)
        for g in start_segs:
            carries[g].append(out.carries[g])
        for k in steps:
            captured[k].append(got[start_hook[k]])
        bar.update(len(rows))
    bar.close()
    solved = np.concatenate(base_solved)
    metric0 = np.concatenate(base_metric)
    crit0 = np.concatenate(base_crit)
    final0 = np.concatenate(base_final)
    carry_at = {g: {key: torch.cat([c[key] for c in carries[g]]) for key in carries[g][0]} for g in start_segs}
    states_at = {k: torch.cat(captured[k]) for k in steps}
    width = int(states_at[steps[0]].shape[-1])
    if s.user is not None:
        check_width(s.user, width)
    if s.sae is not None and int(s.sae.W_dec.shape[1]) != width:
        raise DirectionError(f"dictionary width {int(s.sae.W_dec.shape[1])} does not match the {state} states' width {width}")

    # 2. the split
    fit = np.arange(n_fit)
    evaluated = np.arange(n_fit, N)
    if s.on == "failed":
        evaluated = evaluated[~solved[evaluated]]
    info = {"n_puzzles": N, "n_fit": n_fit, "fit_solved": int(solved[fit].sum()), "n_evaluated": int(len(evaluated)),
            "evaluated_solved_before": int(solved[evaluated].sum()), "state": state, "steps": steps,
            "n_segments": runner.n_segments, "cells": cells, "unsteered_solved": int(solved.sum()),
            "fits": {}}
    if needs_fit and (solved[fit].all() or not solved[fit].any()):
        raise DirectionError(f"the {n_fit} fit puzzles are all {'solved' if solved[fit].all() else 'failed'}: "
                             "a solved-minus-failed direction needs both (use more puzzles)")
    rows_out, per_puzzle = [], []
    if not len(evaluated):
        return SteerResult(pd.DataFrame(columns=COLUMNS), pd.DataFrame(), {**info, "note": "no puzzle to evaluate"})

    # 3-5. directions x settings, each beside its control
    plan = []
    for k in steps:
        g = runner.schema.steps[k].segment
        later = [h for h in hooks_all if step_of[h] >= k]
        if s.window:
            later = later[:s.window]
        X = states_at[k][:, prefix:]  # [N, L, D]
        ref_rows = fit if len(fit) else evaluated  # the norm every direction is rescaled to
        ref = float(X[ref_rows][torch.as_tensor(tgt_all[ref_rows])].norm(dim=-1).mean())
        fitted = _fit_directions(s, X, fit, solved, final0, y_all, tgt_all, state, ref, k, info)
        for d in fitted:
            for a in (s.scales if s.mode != "ablate" else [float("nan")]):
                plan.append((d, k, g, later, s.mode, float(a)))
                for c in range(s.controls):
                    r = random_like(d, s.seed * 100_003 + len(plan))
                    if s.controls > 1:
                        r = replace(r, name=f"{r.name}#{c}")
                    plan.append((r, k, g, later, s.mode, float(a)))
        if "clamp" in s.directions:
            plan.append(("clamp", k, g, later, "hold", None))
            plan += [("clamp_control", k, g, later, "hold", None)] * s.controls
    bar = _bar(len(plan) * len(evaluated), progress, "steered runs")
    for i, (d, k, g, later, mode, a) in enumerate(plan):
        after_solved, after_metric, after_crit, after_final, n_cells = [], [], [], [], []
        for rows_local in _batches(len(evaluated), s.batch_size):
            rows = evaluated[rows_local]
            batch, lab, tg = _batch(runner, x_all, y_all, tgt_all, rows, dev)
            allowed = torch.as_tensor(tgt_all[rows]) if cells == "targets" else torch.ones(len(rows), x_all.shape[1],
                                                                                             dtype=torch.bool)
            record: dict = {}
            if mode == "hold":
                hooks = clamp_cells_hooks(start_hook[k], later, model.decode, allowed.to(dev), prefix, s.threshold,
                                          control_seed=None if d == "clamp" else s.seed * 7919 + i + int(rows[0]),
                                          record=record)
            else:
                hooks = direction_hooks(d, later, mode, 0.0 if np.isnan(a) else a, position_mask(allowed, prefix).to(dev))
                record["cells"] = allowed
            carry = {key: v[rows].to(dev) for key, v in carry_at[g].items()}
            out = steered_run(runner, batch, lab, tg, hooks, start_segment=g, carry=carry)
            after_solved.append(out.solved)
            after_metric.append(out.metric)
            after_crit.append(out.critical_step)
            after_final.append(out.final)
            n_cells.append(record["cells"].sum(-1).numpy() if "cells" in record else np.zeros(len(rows)))
            bar.update(len(rows))
        sa = np.concatenate(after_solved)
        ma = np.concatenate(after_metric)
        ca = np.concatenate(after_crit)
        fa = np.concatenate(after_final)
        nc = np.concatenate(n_cells)
        sb = solved[evaluated]
        changed = ((fa != final0[evaluated]) & tgt_all[evaluated]).sum(1) / np.maximum(tgt_all[evaluated].sum(1), 1)
        lo, hi = wilson_interval(int(sa.sum()), len(sa))
        is_dir = isinstance(d, Direction)
        name = d.name if is_dir else ("clamp_decided" if d == "clamp" else "random_cells(clamp_decided)")
        control = bool(d.control) if is_dir else d != "clamp"
        kind = (d.kind if is_dir else "clamp")
        rows_out.append({
            "direction": name, "control": int(control), "kind": kind, "state": state, "segment": g, "step": k,
            "window": s.window, "scale": np.nan if a is None else a, "mode": "hold" if a is None else mode,
            "norm": d.norm if is_dir else np.nan,
            "n": len(sa), "solved_before": int(sb.sum()), "solved_after": int(sa.sum()),
            "rate_after": float(sa.mean()), "after_lo": lo, "after_hi": hi,
            "flipped": int((~sb & sa).sum()), "broken": int((sb & ~sa).sum()),
            "metric_before": float(metric0[evaluated].mean()), "metric_after": float(ma.mean()),
            "cells_changed": float(changed.mean()),
            "critical_before": _mean_where(crit0[evaluated], crit0[evaluated] >= 0),
            "critical_after": _mean_where(ca, ca >= 0),
            "critical_shift": _mean_where(ca - crit0[evaluated], (ca >= 0) & (crit0[evaluated] >= 0)),
            "cells_steered": float(nc.mean()),
        })
        per_puzzle.append(pd.DataFrame({"direction": name, "control": int(control), "step": k,
                                        "scale": np.nan if a is None else a, "puzzle": evaluated,
                                        "solved_before": sb.astype(int), "solved_after": sa.astype(int),
                                        "metric_before": metric0[evaluated], "metric_after": ma,
                                        "critical_before": crit0[evaluated], "critical_after": ca}))
    bar.close()
    return SteerResult(pd.DataFrame(rows_out, columns=COLUMNS), pd.concat(per_puzzle, ignore_index=True), info)


def _mean_where(values: np.ndarray, where: np.ndarray) -> float:
    return float(values[where].mean()) if where.any() else float("nan")


def _batch(runner: SegmentRunner, x: np.ndarray, y: np.ndarray, t: np.ndarray, rows: np.ndarray, dev):
    xb = torch.as_tensor(x[rows], device=dev)
    return (runner.prepare(xb, None), torch.as_tensor(y[rows], device=dev), torch.as_tensor(t[rows], device=dev))


def _fit_directions(s: SteerSettings, X: torch.Tensor, fit: np.ndarray, solved: np.ndarray, final0: np.ndarray,
                    labels: np.ndarray, targets: np.ndarray, state: str, ref: float, k: int, info: dict) -> list[Direction]:
    """The directions of ``s.directions`` fitted at step ``k`` on the fit puzzles, each rescaled to norm ``ref``."""
    out: list[Direction] = []
    tg = targets[fit]
    Xf = X[fit].numpy()  # [n_fit, L, D]
    cells = Xf[tg]  # [cells, D]
    puzzle_solved = np.broadcast_to(solved[fit][:, None], tg.shape)[tg]
    fits = info["fits"].setdefault(int(k), {"ref_norm": ref})
    if "mean_diff" in s.directions:
        out.append(mean_difference(cells[puzzle_solved], cells[~puzzle_solved], state,
                                   "mean_diff(solved-failed)"))
    if "probe" in s.directions:
        right = (final0[fit] == labels[fit])[tg]
        rng = np.random.default_rng(s.seed)
        idx = rng.choice(len(cells), min(len(cells), 20_000), replace=False)
        out.append(probe_direction(cells[idx], right[idx], state, "probe(cell ends right)", seed=s.seed))
        fits["probe_positive_rate"] = float(right.mean())
    if "sae" in s.directions:
        out.append(_sae_direction(s, cells, puzzle_solved, state, fits))
    if "user" in s.directions:
        out.append(s.user)
    return [d.scaled_to(ref) for d in out]


def _sae_direction(s: SteerSettings, cells: np.ndarray, puzzle_solved: np.ndarray, state: str, fits: dict) -> Direction:
    from probes.sae import encode_array, train_sae
    from probes.sae_features import selectivity

    if s.sae is None:
        tr = train_sae(cells, s.sae_features, steps=s.sae_steps, seed=s.seed)
        sae = tr.sae
        fits["sae"] = {k: round(float(v), 4) for k, v in tr.stats.items()}
    else:
        sae = s.sae
    if s.feature is not None:
        d = sae_feature(sae, s.feature, state)
        fits["sae_feature"] = int(s.feature)
        return d
    acts = encode_array(sae, cells)
    sel = selectivity(acts, puzzle_solved)
    alive = (sel["rate_on"] > 0) | (sel["rate_off"] > 0)
    sel = sel[alive & sel["auc"].notna()]
    if not len(sel):
        raise DirectionError("no SAE feature is active on the fit puzzles' cells")
    best = sel.iloc[int(np.argmax(np.abs(sel["auc"].to_numpy() - 0.5)))]
    i, auc = int(best["feature"]), float(best["auc"])
    fits["sae_feature"], fits["sae_feature_auc_solved"] = i, round(auc, 4)
    d = sae_feature(sae, i, state, f"sae[{i}]" + ("" if auc >= 0.5 else "(negated)"))
    if auc < 0.5:  # the feature marks failures: steer against it
        d = Direction(d.name, -d.vector, state, "sae")
    return d


__all__ = ["KINDS", "DEFAULT_KINDS", "COLUMNS", "SteerSettings", "SteerResult", "default_steps",
           "steering_experiment"]
