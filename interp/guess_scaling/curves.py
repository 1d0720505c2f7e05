"""Guess scaling at a fixed pass budget: test-time strategies x vote rules x k, with intervals.

Augmented HRM (Ren & Liu, arXiv 2601.10679) found that a recursive reasoner
can fall into a wrong fixed point ("guess") and that re-asking it the same
puzzle in another disguise often gets it right; PTRM injects noise into the
latent recursion and keeps the answer its Q head trusts most; EqR starts from
many random states, runs deeper, and keeps the answer nearest a fixed point.
This module compares them on the same puzzles at the same budget::

    strategy  -> guesses (candidates.py)   each guess costs passes_per_guess passes
    budget k  -> the first k // passes_per_guess guesses
    rule      -> one answer per puzzle (voting.py) -> exact accuracy, Wilson interval

Strategies (guess 0 of each is the plain model, so at k = 1 they agree):

* ``perturb`` (alias ``aug``) - checkpoint 0 on input perturbations 0, 1, ...; 1 pass per guess;
* ``bootstrap`` - checkpoints 0, 1, ... on the identity input; 1 pass per guess;
* ``combined`` - guess g = perturbation g on every one of M checkpoints; M passes per guess;
* ``ptrm`` - checkpoint 0 with latent noise (``interp.guess_scaling.recursion``); 1 pass per guess;
* ``eqr`` - checkpoint 0 from random initial states, ``depth`` times the segments; ``depth`` passes per guess.

A *pass* is one run of ``halt_max_steps`` segments (or ``n_segments``).
Rules ``oracle_any`` and ``augmented_hrm`` look at the label: upper bounds
(``uses_label`` True), not test-time methods.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from common.labels import IGNORE_LABEL
from common.stats import bootstrap_ci, wilson_interval
from interp.guess_scaling.candidates import (
    Candidates, as_inputs, as_models, collect_candidates, collect_noisy, collect_random_starts,
)
from interp.guess_scaling.errors import GuessScalingError
from interp.guess_scaling.perturbations import Perturbation, make_perturbations
from interp.guess_scaling.recursion import base_segments
from interp.guess_scaling.voting import ALL_RULES, VotingError, rule_uses_label

STRATEGIES = ("perturb", "bootstrap", "combined", "ptrm", "eqr")
ALIASES = {"aug": "perturb"}
COLUMNS = ["strategy", "rule", "k", "accuracy", "ci_low", "ci_high", "n", "n_passes", "uses_label",
           "guesses", "passes_per_guess"]


def strategy_name(name: str) -> str:
    """Canonical strategy name (``aug`` -> ``perturb``); raises for unknown names."""
    canon = ALIASES.get(name, name)
    if canon not in STRATEGIES:
        raise GuessScalingError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES + tuple(ALIASES))}")
    return canon


@dataclass
class StrategyRun:
    """One strategy's candidates: guess g is candidate columns ``guess_columns[g]``, each guess costs ``passes_per_guess``."""

    name: str
    candidates: Candidates
    guess_columns: list[np.ndarray]
    passes_per_guess: int = 1

    def guesses_for(self, k: int) -> int | None:
        """Guesses that fit a budget of ``k`` passes; None when none fit or more are needed than were collected."""
        g = int(k) // self.passes_per_guess
        return g if 1 <= g <= len(self.guess_columns) else None

    def select(self, n_guesses: int) -> Candidates:
        return self.candidates.select(np.concatenate(self.guess_columns[:n_guesses]))


def single_columns(n: int) -> list[np.ndarray]:
    """Guess g = candidate column g."""
    return [np.array([g], dtype=np.int64) for g in range(n)]


def runs_from_pool(candidates: Candidates, strategies: Sequence[str]) -> list[StrategyRun]:
    """``perturb``/``bootstrap``/``combined`` runs from a (checkpoint, perturbation) candidate pool."""
    have = {(int(m), int(p)) for m, p in zip(candidates.model_index, candidates.perturb_index)}
    n_models = int(candidates.model_index.max()) + 1
    n_pert = int(candidates.perturb_index.max()) + 1

    def prefix(pairs_of) -> list[np.ndarray]:
        out = []
        for g in range(max(n_models, n_pert)):
            pairs = pairs_of(g)
            if not pairs or not all(pr in have for pr in pairs):
                break
            out.append(candidates.columns(pairs))
        return out

    runs = []
    for s in map(strategy_name, strategies):
        if s == "perturb":
            runs.append(StrategyRun(s, candidates, prefix(lambda g: [(0, g)])))
        elif s == "bootstrap":
            runs.append(StrategyRun(s, candidates, prefix(lambda g: [(g, 0)])))
        elif s == "combined":
            runs.append(StrategyRun(s, candidates, prefix(lambda g: [(m, g) for m in range(n_models)]), n_models))
        else:
            raise GuessScalingError(f"strategy {s!r} is not built from a perturbation pool (use collect_strategy_runs)")
    return runs


def _labels(labels: Any, cands: Candidates) -> np.ndarray:
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.dtype.kind in "iu":
        y = y.astype(np.int64)
    if y.shape != (cands.n_puzzles, cands.grids.shape[2]):
        raise GuessScalingError(f"labels must have shape [{cands.n_puzzles}, {cands.grids.shape[2]}], got {list(y.shape)}")
    return y


def _check_ks(ks: Sequence[int]) -> list[int]:
    out = sorted({int(k) for k in ks})
    if not out or out[0] < 1:
        raise GuessScalingError(f"ks must be positive integers, got {out}")
    return out


def _check_rules(rules: Sequence[str], runs: Sequence[StrategyRun]) -> None:
    for r in rules:
        try:
            rule_uses_label(r)
        except VotingError as exc:
            raise GuessScalingError(str(exc)) from None
    if "prob_average" in rules and any(run.candidates.probs is None for run in runs):
        raise GuessScalingError("rule 'prob_average' needs candidates collected with keep_probs=True")


def budget_table(
    runs: Sequence[StrategyRun],
    labels: Any,
    ks: Sequence[int] = (1, 2, 4, 8),
    rules: Sequence[str] = ALL_RULES,
    ci: str = "wilson",
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    ignore_label: int = IGNORE_LABEL,
    halted_rule: str | None = None,
) -> pd.DataFrame:
    """Tidy accuracy table: one row per (strategy, rule, pass budget k) that fits.

    Columns: strategy, rule, k (pass budget), accuracy, ci_low, ci_high (Wilson
    or percentile bootstrap, level 1 - alpha), n (puzzles), n_passes (passes
    actually spent: guesses x passes_per_guess <= k), uses_label, guesses,
    passes_per_guess. Budgets a strategy cannot fill are skipped with a warning.
    """
    if not runs:
        raise GuessScalingError("no strategy runs to tabulate")
    if ci not in ("bootstrap", "wilson"):
        raise GuessScalingError(f"ci must be 'bootstrap' or 'wilson', got {ci!r}")
    ks = _check_ks(ks)
    _check_rules(rules, runs)
    y = _labels(labels, runs[0].candidates)
    rows = []
    for si, run in enumerate(runs):
        skipped = []
        for k in ks:
            g = run.guesses_for(k)
            if g is None:
                skipped.append(k)
                continue
            sub = run.select(g)
            halted = sub.halted(halted_rule) if halted_rule else None
            for ri, rule in enumerate(rules):
                flags = sub.solved(rule, y, ignore_label, halted if rule == "augmented_hrm" else None)
                n, hits = int(flags.size), int(flags.sum())
                if ci == "wilson":
                    lo, hi = wilson_interval(hits, n, alpha)
                else:
                    lo, hi = bootstrap_ci(flags, n_boot, alpha, seed + 1000 * si + 10 * k + ri)
                rows.append({
                    "strategy": run.name, "rule": rule, "k": k, "accuracy": hits / n, "ci_low": lo, "ci_high": hi,
                    "n": n, "n_passes": g * run.passes_per_guess, "uses_label": rule_uses_label(rule),
                    "guesses": g, "passes_per_guess": run.passes_per_guess,
                })
        if skipped:
            warnings.warn(f"strategy {run.name!r}: k={skipped} skipped ({len(run.guess_columns)} guess(es) of "
                          f"{run.passes_per_guess} pass(es) collected)", stacklevel=2)
    return pd.DataFrame(rows, columns=COLUMNS)


def scaling_table(
    candidates: Candidates,
    labels: Any,
    strategies: Sequence[str] = ("perturb", "bootstrap", "combined"),
    ks: Sequence[int] = (1, 2, 4, 8),
    rules: Sequence[str] = ALL_RULES,
    n_boot: int = 1000,
    ci: str = "wilson",
    alpha: float = 0.05,
    seed: int = 0,
    ignore_label: int = IGNORE_LABEL,
    halted_rule: str | None = None,
) -> pd.DataFrame:
    """:func:`budget_table` of the pool strategies (perturb, bootstrap, combined) of one candidate pool."""
    _check_rules(rules, [StrategyRun("pool", candidates, [])])
    _labels(labels, candidates)
    return budget_table(runs_from_pool(candidates, strategies), labels, ks, rules, ci, alpha, n_boot, seed,
                        ignore_label, halted_rule)


def wide_table(df: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """One row per (strategy, rule), one column per pass budget k: ``accuracy% [low, high]``, ``-`` where k does not fit.

    The ``passes/guess`` column makes the budget explicit (guesses at k = k // passes/guess).
    """
    ks = sorted(df["k"].unique())
    rows = []
    for (strategy, rule), g in df.groupby(["strategy", "rule"], sort=False):
        by_k = g.set_index("k")
        row = {"strategy": strategy, "rule": rule + (" (oracle)" if bool(g["uses_label"].iloc[0]) else ""),
               "passes/guess": int(g["passes_per_guess"].iloc[0])}
        for k in ks:
            if k in by_k.index:
                r = by_k.loc[k]
                row[f"k={k}"] = (f"{100 * r['accuracy']:.{digits}f} [{100 * r['ci_low']:.{digits}f}, "
                                 f"{100 * r['ci_high']:.{digits}f}]")
            else:
                row[f"k={k}"] = "-"
        rows.append(row)
    return pd.DataFrame(rows)


def guesses_needed(strategy: str, k_max: int, n_models: int = 1, eqr_depth: int = 2) -> int:
    """How many guesses ``strategy`` must collect for budgets up to ``k_max`` passes."""
    s = strategy_name(strategy)
    per = {"combined": n_models, "eqr": eqr_depth}.get(s, 1)
    return int(k_max) // per


def collect_strategy_runs(
    models: Any,
    inputs: Any,
    strategies: Sequence[str],
    k_max: int,
    perturbations: str | Sequence[Perturbation] = "random",
    task: str = "sudoku",
    seed: int = 0,
    n_segments: int | None = None,
    noise: float = 0.05,
    noise_where: str = "step",
    eqr_depth: int = 2,
    puzzle_ids: Any = None,
    batch_size: int = 256,
    keep_probs: bool = False,
    progress: bool = False,
) -> list[StrategyRun]:
    """Run every pass the strategies need for budgets up to ``k_max`` and return one :class:`StrategyRun` each.

    ``models``: one model or a list (``bootstrap``/``combined`` vote over all;
    the others use the first). ``noise``/``noise_where``: PTRM's relative scale
    and where it is injected. ``eqr_depth``: EqR runs ``eqr_depth`` x the
    segments of a pass, so each of its guesses costs ``eqr_depth`` passes.
    """
    models = as_models(models)
    x = as_inputs(inputs)
    names = list(dict.fromkeys(strategy_name(s) for s in strategies))
    if not names:
        raise GuessScalingError("give at least one strategy")
    if int(eqr_depth) < 1:
        raise GuessScalingError(f"eqr_depth must be >= 1, got {eqr_depth}")
    M = len(models)
    need = {s: guesses_needed(s, k_max, M, eqr_depth) for s in names}
    runs: dict[str, StrategyRun] = {}
    pool_names = [s for s in names if s in ("perturb", "bootstrap", "combined")]
    if pool_names:
        n_pert = max([need[s] for s in pool_names if s != "bootstrap"] or [1])
        pert = make_perturbations(task, perturbations, max(n_pert, 1), seed, x.shape[1])
        pairs = {(0, 0)}
        for s in pool_names:
            if s == "perturb":
                pairs |= {(0, p) for p in range(min(need[s], len(pert)))}
            elif s == "bootstrap":
                pairs |= {(m, 0) for m in range(min(need[s], M))}
            else:
                pairs |= {(m, p) for m in range(M) for p in range(min(need[s], len(pert)))}
        pool = collect_candidates(models, x, pert, n_segments, puzzle_ids, batch_size, keep_probs, pairs, progress)
        runs.update({r.name: r for r in runs_from_pool(pool, pool_names)})
    if "ptrm" in names:
        c = collect_noisy(models[0], x, max(need["ptrm"], 1), noise, noise_where, n_segments, seed,
                          puzzle_ids=puzzle_ids, batch_size=batch_size, keep_probs=keep_probs, progress=progress)
        runs["ptrm"] = StrategyRun("ptrm", c, single_columns(c.n_candidates))
    if "eqr" in names:
        depth_segments = int(eqr_depth) * base_segments(models[0], n_segments)
        c = collect_random_starts(models[0], x, max(need["eqr"], 1), depth_segments, seed,
                                  puzzle_ids=puzzle_ids, batch_size=batch_size, keep_probs=keep_probs,
                                  progress=progress)
        runs["eqr"] = StrategyRun("eqr", c, single_columns(c.n_candidates), int(eqr_depth))
    return [runs[s] for s in names]


def guess_scaling_curve(
    models: Any,
    inputs: Any,
    labels: Any,
    strategies: Sequence[str] = ("perturb", "bootstrap", "combined"),
    ks: Sequence[int] = (1, 2, 4, 8),
    rules: Sequence[str] = ALL_RULES,
    perturbations: str | Sequence[Perturbation] = "random",
    task: str = "sudoku",
    n_boot: int = 1000,
    ci: str = "wilson",
    alpha: float = 0.05,
    seed: int = 0,
    n_segments: int | None = None,
    puzzle_ids: Any = None,
    batch_size: int = 256,
    halted_rule: str | None = None,
    progress: bool = False,
    noise: float = 0.05,
    noise_where: str = "step",
    eqr_depth: int = 2,
) -> pd.DataFrame:
    """Accuracy vs pass budget k, per strategy and voting rule, with (1 - alpha) intervals (see :func:`budget_table`).

    ``perturbations``: a preset (Sudoku ``random`` | ``cyclic`` | ``digits`` |
    ``geometric``; maze ``dihedral`` | ``dihedral+swap`` | ``swap``) or a list
    of perturbation objects with the identity first. ``ci``: ``wilson`` or
    ``bootstrap`` (percentile, ``n_boot`` puzzle resamples). ``halted_rule``
    (``q_halt>0`` / ``q_halt>q_continue``) restricts the Augmented-HRM majority
    to passes that halted. Only the passes some (strategy, k) needs are run.
    """
    models = as_models(models)
    x = as_inputs(inputs)
    ks = _check_ks(ks)
    names = [strategy_name(s) for s in strategies]
    runs = collect_strategy_runs(models, x, names, max(ks), perturbations, task, seed, n_segments, noise, noise_where,
                                 eqr_depth, puzzle_ids, batch_size, "prob_average" in rules, progress)
    return budget_table(runs, labels, ks, rules, ci, alpha, n_boot, seed, halted_rule=halted_rule)


__all__ = [
    "STRATEGIES", "ALIASES", "COLUMNS", "StrategyRun", "strategy_name", "single_columns", "runs_from_pool",
    "budget_table", "scaling_table", "wide_table", "guesses_needed", "collect_strategy_runs", "guess_scaling_curve",
]
