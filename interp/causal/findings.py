"""Where attribution lies on puzzles a model solves and on puzzles it wanders on: per-puzzle statistics.

For one pair (a given digit changed; metric = logit difference over the blank
cells after the last segment) the AtP table of one puzzle is reduced to:

* ``state_share.<s>``: the share of |score| written by state ``s``;
* ``early_share``: the share in the first quarter of the steps;
* ``crit_density``: for a solved puzzle, the mean |score| per step in the
  ``window`` steps up to its critical step (where the answer becomes and stays
  right) over the mean per step of the whole run (1 = no concentration);
* ``self_share``: the share on the changed cell itself;
* ``peer_share``: among all other cells, the share on the Sudoku peers (row,
  column, box) of the changed cell; ``peer_share_control``: the same for a
  random other cell of the puzzle (the matched control; uniform = 20/80).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from interp.analyses.attention import sudoku_relations


def _peer_share(mass: np.ndarray, focus: int, peers: np.ndarray) -> float:
    others = np.ones(len(mass), dtype=bool)
    others[focus] = False
    total = mass[others].sum()
    return float(mass[peers[focus] & others].sum() / total) if total > 0 else float("nan")


def puzzle_statistics(scores: pd.DataFrame, changed: int, critical_step: int, n_steps: int, n_cells: int,
                      rng: np.random.Generator, window: int = 4) -> dict[str, float]:
    """The statistics of the module docstring for one puzzle's score table (one method)."""
    s = scores[(scores["position"] >= 0) & (scores["position"] < n_cells)]
    a = s["score"].abs()
    total = float(a.sum())
    out: dict[str, float] = {}
    for state, v in a.groupby(s["state"]).sum().items():
        out[f"state_share.{state}"] = float(v) / total
    by_step = a.groupby(s["step"]).sum().reindex(range(n_steps), fill_value=0.0).to_numpy()
    out["early_share"] = float(by_step[: max(1, n_steps // 4)].sum() / total)
    if critical_step >= 0:
        lo = max(0, critical_step - window + 1)
        out["crit_density"] = float(by_step[lo:critical_step + 1].mean() / by_step.mean())
    mass = a.groupby(s["position"]).sum().reindex(range(n_cells), fill_value=0.0).to_numpy()
    peers = sudoku_relations(n_cells)["peers"]
    out["self_share"] = float(mass[changed] / total)
    out["peer_share"] = _peer_share(mass, changed, peers)
    other = int(rng.choice(np.setdiff1d(np.arange(n_cells), [changed])))
    out["peer_share_control"] = _peer_share(mass, other, peers)
    return out


__all__ = ["puzzle_statistics"]
