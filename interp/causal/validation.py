"""Attribution checked against exhaustive patching on a checkpoint: the numbers behind the validation table.

``validate_checkpoint`` builds clean/corrupted pairs (Sudoku: a changed given;
mazes: a swapped maze; text: a substituted byte), scores every unit with the
estimates and with exact patching, and returns one row per (pair, method):
Spearman's rho over all units and over the units that matter (top 10% by
|patch effect|), top-k overlap, the number of units and the wall time of each
method. ``benchmarks/causal_validation.py`` runs it on every zoo model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from interp.causal.attribute import attribute
from interp.causal.pairs import PairSet, make_pairs
from interp.causal.summary import compare_methods

def zoo_pairs(model, task: str, n: int, seed: int = 0, corruption: str | None = None) -> PairSet:
    """``n`` pairs for a zoo model of ``task`` (sudoku, maze or text), generated (nothing to download)."""
    if task == "sudoku":
        from interp.examples import sudoku_puzzles

        x, y = sudoku_puzzles(n, cells=model.cfg.seq_len, seed=seed)
        return make_pairs(np.asarray(x), np.asarray(y), corruption or "change_given", "sudoku", seed=seed)
    if task == "maze":
        from tasks.maze import generate_mazes

        x, y = generate_mazes(max(n, 2), size=int(round(model.cfg.seq_len ** 0.5)), seed=seed)
        return _first(make_pairs(x, y, corruption or "swap", "maze", seed=seed), n)
    from interp.examples import text_windows

    x, y = text_windows(n, 48, seed=seed)
    labels = np.full_like(y, -100)
    labels[:, -1] = y[:, -1]  # the metric reads the next byte after the window
    return make_pairs(x, labels, corruption or "substitute", "text", vocab_size=model.cfg.vocab_size, seed=seed)


def _first(pairs: PairSet, n: int) -> PairSet:
    return PairSet(pairs.clean[:n], pairs.corrupt[:n], pairs.labels[:n], pairs.targets[:n], pairs.kind, pairs.notes[:n])


def validate_checkpoint(model, pairs: PairSet, n_segments: int | None = None, states: Sequence[str] | None = None,
                        methods: Sequence[str] = ("atp", "ig", "verify"), ig_steps: int = 5, patch_rows: int = 128,
                        top: float = 0.10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per pair and method: rho all/top, top-k overlap, units, seconds; the score table)."""
    tables, seconds = [], {}
    for method in [*methods, "patch"]:
        t0 = time.perf_counter()
        res = attribute(model, pairs, [method], n_segments=n_segments, states=states, ig_steps=ig_steps,
                        patch_rows=patch_rows)
        seconds[method] = (time.perf_counter() - t0) / len(pairs)
        tables.append(res.scores)
    scores = pd.concat(tables, ignore_index=True)
    cmp = compare_methods(scores, top=top)
    cmp["seconds"] = cmp["method"].map(seconds)
    cmp["patch_seconds"] = seconds["patch"]
    return cmp, scores


__all__ = ["zoo_pairs", "validate_checkpoint"]
