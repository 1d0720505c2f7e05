"""Fixed-point probes that need a model (the trace-only analyses are in ``interp.analyses.fixed_points``).

* ``fixed_point_residual``: run the usual number of segments, then one more;
  the relative change of each state over that extra segment is the residual
  (0 at an exact fixed point of the segment map).
* ``multiple_fixed_points``: run the same puzzle from several perturbed
  starting states and cluster where the answer state settles; each cluster
  reports whether its answer is correct (several clusters = several attractors).
* ``one_unknown_cell_probe``: the "seed-002" probe. Take solved grids, blank
  exactly one cell, and check whether the model fills it (a model whose
  solution is a fixed point should never fail these).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from interp.tracing import metrics as M
from interp.tracing.schema import StepSchema, build_schema
from interp.tracing.tracer import as_token_tensor, initial_states, model_device, prepare_inputs
from interp.tracing.trace import TraceError


def _segment_ends(model: nn.Module, schema: StepSchema, x: torch.Tensor, pid: torch.Tensor | None,
                  init: dict[str, torch.Tensor], n: int) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """(states, output logits) after each of ``n`` segments (passes) from ``init``."""
    out = []
    with torch.no_grad():
        if schema.family == "hrm_lm":
            for o in model.forward_passes(x, n_passes=n, states=init):
                out.append((o.states, o.logits))
            return out
        for _, states, so in model.iter_segments(x, pid, n, {k: v.clone() for k, v in init.items()}):
            out.append((states, so.logits))
    return out


def _batches(n: int, size: int):
    for a in range(0, n, size):
        yield a, min(n, a + size)


def fixed_point_residual(
    model: nn.Module,
    inputs,
    labels=None,
    puzzle_ids=None,
    n_segments: int | None = None,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Per puzzle: ``residual.<state>`` = relative change of the state over one extra segment.

    Also ``answer_changed`` (the output after n+1 segments differs from the
    output after n) and, with labels, ``exact`` / ``exact_next``.
    """
    schema = build_schema(model, n_segments)
    n = schema.n_segments
    x, y, pid = prepare_inputs(model, inputs, labels, puzzle_ids)
    dev = model_device(model)
    cols: dict[str, list[np.ndarray]] = {}
    for a, b in _batches(x.shape[0], batch_size):
        xb = x[a:b].to(dev)
        pb = pid[a:b].to(dev) if pid is not None else None
        init = initial_states(model, schema, xb)
        ends = _segment_ends(model, schema, xb, pb, init, n + 1)
        (s_n, lg_n), (s_next, lg_next) = ends[-2], ends[-1]
        for s in schema.state_names:
            cols.setdefault(f"residual.{s}", []).append(M.relative_change(s_next[s], s_n[s]).cpu().numpy())
        cols.setdefault("answer_changed", []).append((lg_n.argmax(-1) != lg_next.argmax(-1)).any(1).cpu().numpy())
        if y is not None:
            yb = y[a:b].to(dev)
            mask = M.eval_mask(xb, yb, schema.kind == "lm")
            cols.setdefault("exact", []).append(M.decoded_metrics(lg_n, yb, mask)["exact"].cpu().numpy())
            cols.setdefault("exact_next", []).append(M.decoded_metrics(lg_next, yb, mask)["exact"].cpu().numpy())
    df = pd.DataFrame({"puzzle": np.arange(x.shape[0])})
    for k, v in cols.items():
        df[k] = np.concatenate(v)
    return df


# ----------------------------------------------------------------------------- several attractors
@dataclass
class FixedPointSearch:
    """Runs from perturbed starts and their clusters."""

    runs: pd.DataFrame  # puzzle, init, cluster, exact, residual, answer_id
    clusters: pd.DataFrame  # puzzle, cluster, size, exact, n_answers, mean_residual

    def per_puzzle(self) -> pd.DataFrame:
        """Per puzzle: number of clusters, of distinct answers, of correct clusters, fraction of runs correct."""
        g = self.clusters.groupby("puzzle")
        out = pd.DataFrame({
            "n_fixed_points": g.size(),
            "n_correct_fixed_points": g["exact"].sum() if "exact" in self.clusters else np.nan,
        })
        r = self.runs.groupby("puzzle")
        out["n_distinct_answers"] = r["answer_id"].nunique()
        if "exact" in self.runs:
            out["frac_runs_correct"] = r["exact"].mean()
        return out.reset_index()


def cluster_by_distance(points: np.ndarray, tol: float) -> np.ndarray:
    """Single-linkage clusters of rows of ``points`` [K, F]: joined when the relative distance is below ``tol``.

    Relative distance = ||a - b|| / mean(||a||, ||b||). Labels are 0.. in order of first appearance.
    """
    K = points.shape[0]
    parent = list(range(K))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    norms = np.linalg.norm(points, axis=1)
    for i in range(K):
        for j in range(i + 1, K):
            scale = max((norms[i] + norms[j]) / 2, 1e-12)
            if np.linalg.norm(points[i] - points[j]) / scale < tol:
                parent[find(i)] = find(j)
    roots = [find(i) for i in range(K)]
    relabel: dict[int, int] = {}
    return np.array([relabel.setdefault(r, len(relabel)) for r in roots], dtype=np.int64)


def _perturbed_init(base: dict[str, torch.Tensor], k: int, noise: float, how: str, gen: torch.Generator) -> dict[str, torch.Tensor]:
    if k == 0 or noise == 0:
        return {s: v.clone() for s, v in base.items()}
    out = {}
    for s, v in base.items():
        if how == "noise":
            out[s] = v + noise * torch.randn(v.shape, generator=gen).to(v.device, v.dtype)
        else:  # resample one vector per puzzle, broadcast over positions (another H_init/L_init)
            vec = noise * torch.randn((v.shape[0], 1, v.shape[-1]), generator=gen).to(v.device, v.dtype)
            out[s] = vec.expand_as(v).clone()
    return out


def multiple_fixed_points(
    model: nn.Module,
    inputs,
    labels=None,
    n_inits: int = 8,
    noise: float = 1.0,
    perturb: str = "noise",
    tol: float = 0.05,
    puzzle_ids=None,
    n_segments: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> FixedPointSearch:
    """Run every puzzle from ``n_inits`` starts and cluster the final answer states.

    Start 0 is the model's own initial state; the others add ``noise`` times
    standard normal noise to it (``perturb="noise"``) or draw a fresh random
    initial vector with std ``noise`` (``"resample"``). Final answer states
    closer than ``tol`` (relative distance) share a cluster. Each run also
    reports its residual over one extra segment, so a "cluster" that still
    moves can be told from a settled fixed point.
    """
    if n_inits < 1:
        raise TraceError(f"n_inits must be >= 1, got {n_inits}")
    if perturb not in ("noise", "resample"):
        raise TraceError(f"perturb must be 'noise' or 'resample', not {perturb!r}")
    schema = build_schema(model, n_segments)
    n = schema.n_segments
    x, y, pid = prepare_inputs(model, inputs, labels, puzzle_ids)
    dev = model_device(model)
    gen = torch.Generator().manual_seed(seed)
    ans = schema.answer_state
    N = x.shape[0]
    finals = [[None] * n_inits for _ in range(N)]
    rows = []
    for a, b in _batches(N, batch_size):
        xb = x[a:b].to(dev)
        pb = pid[a:b].to(dev) if pid is not None else None
        yb = y[a:b].to(dev) if y is not None else None
        base = initial_states(model, schema, xb)
        for k in range(n_inits):
            init = _perturbed_init(base, k, noise, perturb, gen)
            ends = _segment_ends(model, schema, xb, pb, init, n + 1)
            (s_n, lg_n), (s_next, _) = ends[-2], ends[-1]
            res = M.relative_change(s_next[ans], s_n[ans]).cpu().numpy()
            pred = lg_n.argmax(-1).cpu().numpy()
            ex = None
            if yb is not None:
                ex = M.decoded_metrics(lg_n, yb, M.eval_mask(xb, yb, schema.kind == "lm"))["exact"].cpu().numpy()
            flat = s_n[ans].float().flatten(1).cpu().numpy()
            for i in range(b - a):
                finals[a + i][k] = flat[i]
                row = {"puzzle": a + i, "init": k, "residual": float(res[i]), "answer": pred[i].tobytes()}
                if ex is not None:
                    row["exact"] = bool(ex[i])
                rows.append(row)
    runs = pd.DataFrame(rows).sort_values(["puzzle", "init"]).reset_index(drop=True)
    runs["answer_id"] = runs.groupby("puzzle")["answer"].transform(lambda s: pd.factorize(s)[0])
    labels_ = np.concatenate([cluster_by_distance(np.stack(finals[p]), tol) for p in range(N)])
    runs["cluster"] = labels_
    runs = runs.drop(columns="answer")
    agg = {"size": ("init", "size"), "n_answers": ("answer_id", "nunique"), "mean_residual": ("residual", "mean")}
    if "exact" in runs:
        agg["exact"] = ("exact", "all")
        agg["frac_exact"] = ("exact", "mean")
    clusters = runs.groupby(["puzzle", "cluster"]).agg(**agg).reset_index()
    return FixedPointSearch(runs, clusters)


# ----------------------------------------------------------------------------- one unknown cell
@dataclass
class OneCellProbe:
    """Results of blanking one cell of solved grids."""

    table: pd.DataFrame  # puzzle, cell, true_token, predicted_token, cell_correct, solved, givens_kept

    @property
    def solved_fraction(self) -> float:
        return float(self.table["solved"].mean()) if len(self.table) else float("nan")

    def summary(self) -> dict[str, float]:
        t = self.table
        return {"n_probes": len(t), "n_puzzles": int(t["puzzle"].nunique()) if len(t) else 0,
                "solved_fraction": self.solved_fraction,
                "cell_correct_fraction": float(t["cell_correct"].mean()) if len(t) else float("nan"),
                "givens_kept_fraction": float(t["givens_kept"].mean()) if len(t) else float("nan"),
                "puzzles_all_solved": float(t.groupby("puzzle")["solved"].all().mean()) if len(t) else float("nan")}


def _solutions_tokens(solutions, blank_token: int) -> torch.Tensor:
    if isinstance(solutions, (list, tuple)) and solutions and isinstance(solutions[0], str):
        try:
            from tasks.sudoku.grid import encode_grid, parse_puzzle, size_from_cells
        except ImportError as e:  # pragma: no cover - training package absent
            raise TraceError(f"pass solutions as token arrays (cannot parse text: {e})") from None
        grids = [parse_puzzle(s, size=size_from_cells(len(s.strip()))) for s in solutions]
        return torch.as_tensor(np.stack([encode_grid(g) for g in grids]).astype(np.int64))
    return as_token_tensor(solutions, "solutions")


def one_unknown_cell_probe(
    model: nn.Module,
    solutions,
    cells: str | int | Sequence[int] = 1,
    blank_token: int = 1,
    seed: int = 0,
    puzzle_ids=None,
    n_segments: int | None = None,
    batch_size: int = 64,
) -> OneCellProbe:
    """Blank exactly one cell of each solved grid and check that the model restores the solution.

    ``solutions``: complete grids as tokens [N, L] (or Sudoku strings). ``cells``:
    ``k`` (int) random cells per grid, ``"all"`` every cell, or a list of cell
    indices used for every grid. One probe per (grid, cell); ``solved`` means
    the whole output equals the solution.
    """
    sol = _solutions_tokens(solutions, blank_token)
    if (sol == blank_token).any() or (sol == 0).any():
        raise TraceError("solutions must be complete grids (no blank or pad tokens)")
    N, L = sol.shape
    rng = np.random.default_rng(seed)
    if cells == "all":
        picks = [np.arange(L)] * N
    elif isinstance(cells, int) and not isinstance(cells, bool):
        if not 1 <= cells <= L:
            raise TraceError(f"cells must be in [1, {L}], got {cells}")
        picks = [rng.choice(L, size=cells, replace=False) for _ in range(N)]
    else:
        idx = np.asarray(list(cells), dtype=np.int64)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= L:
            raise TraceError(f"cell indices must lie in [0, {L})")
        picks = [idx] * N
    owner = np.concatenate([np.full(len(p), i) for i, p in enumerate(picks)])
    cell = np.concatenate(picks)
    puzzles = sol[owner].clone()
    puzzles[torch.arange(len(cell)), torch.as_tensor(cell)] = blank_token
    labels = sol[owner]
    pid = None if puzzle_ids is None else np.asarray(puzzle_ids)[owner]
    schema = build_schema(model, n_segments)
    x, y, p = prepare_inputs(model, puzzles, labels, pid)
    dev = model_device(model)
    preds = []
    for a, b in _batches(x.shape[0], batch_size):
        xb = x[a:b].to(dev)
        init = initial_states(model, schema, xb)
        ends = _segment_ends(model, schema, xb, p[a:b].to(dev) if p is not None else None, init, schema.n_segments)
        preds.append(ends[-1][1].argmax(-1).cpu())
    pred = torch.cat(preds).numpy()
    lab = labels.numpy()
    given = np.ones_like(lab, dtype=bool)
    given[np.arange(len(cell)), cell] = False
    table = pd.DataFrame({
        "puzzle": owner, "cell": cell, "true_token": lab[np.arange(len(cell)), cell],
        "predicted_token": pred[np.arange(len(cell)), cell],
    })
    table["cell_correct"] = table["true_token"] == table["predicted_token"]
    table["solved"] = (pred == lab).all(1)
    table["givens_kept"] = ((pred == lab) | ~given).all(1)
    return OneCellProbe(table)


__all__ = ["fixed_point_residual", "multiple_fixed_points", "one_unknown_cell_probe", "cluster_by_distance",
           "FixedPointSearch", "OneCellProbe"]
