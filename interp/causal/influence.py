"""Influence between cells across the outer cycles of a recurrent puzzle model.

For the states ``s_t`` entering outer cycle ``t`` along the model's own run
(``s_{t+1} = cycle(s_t)``, ``model.cycle`` with every update in the graph, see
:func:`interp.stability.step_maps.model_step_map`), the influence of cell ``i``
on cell ``j`` over that cycle is

    I_t[j, i] = || d s_{t+1}[j] / d s_t[i] ||_F^2

with all carried states of a cell concatenated (HRM: z_H and z_L; TRM: y and z).
Row ``j`` of the Jacobian is pulled back by vector-Jacobian products, one batch
row per (target cell, probe vector), so a cycle costs one forward and one
backward of a batch of ``rows`` copies of the puzzle:

* ``samples=None`` (exact): the probes are the basis vectors of cell ``j``'s
  state; summing the pulled-back squared norms gives ``I_t[j, i]`` exactly
  (``n_cells * dim`` rows, in chunks);
* ``samples=K``: ``K`` Gaussian probes ``u`` per target cell; since
  ``E ||u^T J_ji||^2 = ||J_ji||_F^2`` for ``u ~ N(0, I)``, their mean is an
  unbiased estimate (relative standard deviation at most ``sqrt(2 / K)``).

Beside it, the influence of each cell's state after cycle ``t`` on the *final*
answer (the logit difference of the last segment at the cells the model must
fill) is the squared norm of the total gradient, taken from
:func:`interp.causal.attribution.unit_gradients` (through every later cycle
and segment).

Summaries: per cycle, the share of a cell's incoming influence (self excluded)
that comes from its Sudoku peers (uniform: 20/80 on 9x9), or, on mazes, from
cells of the shortest path (uniform: the fraction of path cells), with a 95%
interval over puzzles; and, for attention models, that share beside the
attention mass on peers at each step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from interp.causal.errors import CausalError

States = dict[str, torch.Tensor]
StepFn = Callable[[States], States]


# ----- one cycle ------------------------------------------------------------------
def probe_rows(n_targets: int, dim: int, samples: int | None,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of probes: ``(target [R], probe [R, dim], weight [R])``; ``samples=None``: basis vectors (exact),
    else ``samples`` Gaussian vectors per target weighted ``1/samples`` (unbiased estimate)."""
    if samples is None:
        targets = torch.arange(n_targets).repeat_interleave(dim)
        probes = torch.eye(dim).repeat(n_targets, 1)
        return targets, probes, torch.ones(len(targets))
    if samples < 1:
        raise CausalError(f"the influence estimate needs samples >= 1, got {samples}")
    targets = torch.arange(n_targets).repeat_interleave(samples)
    probes = torch.randn(n_targets * samples, dim, generator=generator)
    return targets, probes, torch.full((len(targets),), 1.0 / samples)


def cycle_influence(step: StepFn, states: States, cells: Sequence[int], samples: int | None = 8,
                    rows: int = 512, generator: torch.Generator | None = None) -> torch.Tensor:
    """``I[j, i] = ||d step(states)[cells[j]] / d states[cells[i]]||_F^2`` [C, C] for ONE puzzle.

    ``states``: each [1, P, D_k] (positions P include any puzzle prefix); ``step`` maps states of a batch of
    ``rows`` rows to states of the same shape (the last chunk is padded with zero probes)."""
    names = list(states)
    dims = [states[k].shape[-1] for k in names]
    cells_t = torch.as_tensor(list(cells), dtype=torch.long)
    targets, probes, weights = probe_rows(len(cells_t), sum(dims), samples, generator)
    device = states[names[0]].device
    out = torch.zeros(len(cells_t), len(cells_t), dtype=torch.float64)
    for a in range(0, len(targets), rows):
        tg, pr, w = targets[a:a + rows], probes[a:a + rows], weights[a:a + rows]
        n = len(tg)
        start = {k: states[k].detach().expand(rows, *states[k].shape[1:]).clone().requires_grad_(True) for k in names}
        with torch.enable_grad():
            new = step(start)
            objective = new[names[0]].new_zeros((), dtype=torch.float32)
            for k, u in zip(names, pr.split(dims, dim=-1)):
                v = torch.zeros(rows, *new[k].shape[1:], dtype=new[k].dtype, device=device)
                v[torch.arange(n), cells_t[tg]] = u.to(device=device, dtype=v.dtype)
                objective = objective + (v * new[k]).sum().float()
        grads = torch.autograd.grad(objective, [start[k] for k in names], allow_unused=True)
        parts = [g[:n, cells_t].double().pow(2).sum(-1) for g in grads if g is not None]  # each [n, C]
        if parts:  # else the output depends on no state
            out.index_add_(0, tg, torch.stack(parts).sum(0).cpu() * w[:, None].double())
    return out


# ----- a model's run ----------------------------------------------------------------
def even_chunk(total: int, rows: int) -> int:
    """The batch size of ``total`` probe rows split into as few equal chunks of at most ``rows`` as possible
    (padding the last chunk costs compute)."""
    n = -(-total // max(1, rows))
    return -(-total // n)


@dataclass
class InfluenceResult:
    """Per puzzle and cycle, the cell-to-cell influence and each cell's influence on the final answer."""

    matrices: np.ndarray  # [N, T, C, C] I_t[j, i] (target j, source i), grid cells only (prefix dropped)
    answer: np.ndarray  # [N, T, C] ||dM / d s_{t+1}[i]||^2: state of cell i after cycle t -> final metric
    cycles_per_segment: int
    n_segments: int
    samples: int | None
    settings: dict = field(default_factory=dict)

    @property
    def n_cycles(self) -> int:
        return self.matrices.shape[1]


def answer_targets(inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Bool [N, L]: the cells the model must fill (label differs from the input; every labelled cell if none)."""
    known = labels >= 0
    fill = known & (labels != inputs.long())
    return torch.where(fill.any(-1, keepdim=True), fill, known)


def answer_influence(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, n_segments: int,
                     puzzle_ids: torch.Tensor | None = None) -> np.ndarray:
    """[N, T, C]: squared norm (over every carried state) of the gradient of the last segment's logit difference
    at the cells to fill with respect to each cell's state after cycle ``t``, through every later cycle."""
    from interp.causal.attribution import cached_run, unit_gradients
    from interp.causal.metrics import answer_alphabet, metric_fn
    from interp.causal.runner import SegmentRunner
    from interp.causal.units import UnitHook

    runner = SegmentRunner(model, n_segments)
    schema, per = runner.schema, model.cycles_per_segment
    last: dict[tuple[int, str], tuple[int, str]] = {}  # (cycle, state) -> (step, hook) of its last write
    for hook, (k, st) in schema.hook_to_step.items():
        if st not in schema.state_names:
            continue
        info = schema.steps[k]
        key = (info.segment * per + info.outer, st)
        if key not in last or k > last[key][0]:
            last[key] = (k, hook)
    hooks = [UnitHook(h, st, k, schema.steps[k].segment) for (_, st), (k, h) in sorted(last.items())]
    batch = runner.prepare(inputs, puzzle_ids)
    metric = metric_fn("logit_diff_max", labels, answer_targets(inputs, labels), answer_alphabet(labels, model.cfg.vocab_size))
    _, carries, _ = cached_run(runner, batch, ())
    grads = unit_gradients(runner, batch, carries, metric, hooks)
    P = model.prefix_len
    out = np.zeros((inputs.shape[0], n_segments * per, inputs.shape[1]))
    for (cyc, _), (_, h) in last.items():
        out[:, cyc] += grads[h][:, P:].double().pow(2).sum(-1).cpu().numpy()
    return out


def influence(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor | None = None,
              n_segments: int | None = None, samples: int | None = 8, rows: int = 512, seed: int = 0,
              puzzle_ids: torch.Tensor | None = None,
              progress: Callable[[int, int], None] | None = None) -> InfluenceResult:
    """Cell-to-cell influence ``I_t`` for every outer cycle of ``n_segments`` segments (default the model's
    depth) on each puzzle of ``inputs`` [N, L]; with ``labels``, also each cell's influence on the answer."""
    from interp.stability.step_maps import model_step_map

    fam = getattr(getattr(model, "cfg", None), "family", type(model).__name__)
    if fam not in ("hrm", "trm", "unitf"):
        raise CausalError(f"influence needs a recurrent puzzle model (hrm, trm, unitf), not {fam!r}")
    n_segments = model.cfg.halt_max_steps if n_segments is None else int(n_segments)
    if n_segments < 1:
        raise CausalError(f"segments must be >= 1, got {n_segments}")
    if samples is not None and samples < 1:
        raise CausalError(f"the influence estimate needs samples >= 1, got {samples}")
    per = model.cycles_per_segment
    T, (N, L), P = n_segments * per, inputs.shape, model.prefix_len
    cells = list(range(P, P + L))
    gen = torch.Generator().manual_seed(seed)
    mats = np.zeros((N, T, L, L))
    was = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)  # gradients with respect to states only
    try:
        for n in range(N):
            x1 = inputs[n:n + 1]
            pid1 = None if puzzle_ids is None else puzzle_ids[n:n + 1]
            one = model_step_map(model, x1, pid1, unit="cycle")
            chunk = even_chunk(L * (sum(v.shape[-1] for v in one.init.values()) if samples is None else samples), rows)
            many = model_step_map(model, x1.expand(chunk, -1),
                                  None if pid1 is None else pid1.expand(chunk, *pid1.shape[1:]), unit="cycle")
            s = one.init
            for t in range(T):
                mats[n, t] = cycle_influence(many.step, s, cells, samples, chunk, gen).numpy()
                with torch.no_grad():
                    s = one.step(s)
            if progress is not None:
                progress(n + 1, N)
    finally:
        for p, w in zip(model.parameters(), was):
            p.requires_grad_(w)
    answer = (answer_influence(model, inputs, labels, n_segments, puzzle_ids) if labels is not None
              else np.full((N, T, L), np.nan))
    return InfluenceResult(mats, answer, per, n_segments, samples,
                           {"family": fam, "segments": n_segments, "cycles_per_segment": per, "samples": samples,
                            "seed": seed, "puzzles": N})


# ----- summaries --------------------------------------------------------------------
def relation_share(matrices: np.ndarray, related: np.ndarray, cycles_per_segment: int = 1) -> pd.DataFrame:
    """Per cycle: the share of a cell's incoming influence (self excluded) from its ``related`` cells, averaged
    over target cells, then mean and 95% interval over puzzles, beside the share uniform influence would give.

    ``matrices`` [N, T, C, C] (target, source); ``related`` bool [C, C] or per puzzle [N, C, C]
    (``related[j, i]``: source i counts for target j; the diagonal is ignored)."""
    from common.stats import bootstrap_mean_ci

    m = np.asarray(matrices, dtype=np.float64)
    N, T, C, _ = m.shape
    rel = np.broadcast_to(np.asarray(related, dtype=bool), (N, C, C)) & ~np.eye(C, dtype=bool)
    off = m * ~np.eye(C, dtype=bool)
    total = off.sum(-1)  # [N, T, C]
    on = (off * rel[:, None]).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a puzzle with no influence at all stays NaN
        share = np.where(total > 0, on / total, np.nan)  # [N, T, C]
        per_puzzle = np.nanmean(share, axis=-1)  # [N, T]
    base = (rel.sum(-1) / max(C - 1, 1)).mean(-1)  # [N]
    rows = []
    for t in range(T):
        ci = bootstrap_mean_ci(per_puzzle[:, t])
        rows.append({"cycle": t, "segment": t // cycles_per_segment, "share": ci.mean, "baseline": float(base.mean()),
                     "ci_low": ci.low, "ci_high": ci.high, "n": ci.n})
    return pd.DataFrame(rows)


def sudoku_peer_share(result: InfluenceResult) -> pd.DataFrame:
    """:func:`relation_share` with the Sudoku peers (same row, column or box) as the related cells."""
    from interp.analyses.attention import sudoku_relations

    peers = sudoku_relations(result.matrices.shape[-1])["peers"]
    return relation_share(result.matrices, peers, result.cycles_per_segment).rename(
        columns={"share": "peer_share"})


def maze_path_cells(labels: np.ndarray) -> np.ndarray:
    """Bool [N, C]: the cells of the shortest path (label 'o') with its start and goal."""
    from tasks.maze import GOAL, PATH, START

    return np.isin(np.asarray(labels), (PATH, START, GOAL))


def maze_path_share(result: InfluenceResult, labels: np.ndarray) -> pd.DataFrame:
    """:func:`relation_share` with the cells on the shortest path as the related cells (baseline: their fraction)."""
    path = maze_path_cells(labels)
    related = np.broadcast_to(path[:, None, :], (path.shape[0], path.shape[1], path.shape[1]))
    return relation_share(result.matrices, related, result.cycles_per_segment).rename(columns={"share": "path_share"})


def attention_vs_influence(model: nn.Module, inputs: torch.Tensor, share: pd.DataFrame,
                           n_segments: int, labels: torch.Tensor | None = None) -> pd.DataFrame:
    """Per step of an attention model: the attention mass on Sudoku peers (mean over layers and heads, self
    excluded) beside the influence peer share of the cycle the step belongs to (``share`` from
    :func:`sudoku_peer_share`)."""
    from interp.analyses.attention import sudoku_attention_mass
    from interp.tracing.tracer import trace

    tr = trace(model, inputs, labels, n_segments=n_segments, states="pattern", attention=True)
    mass = sudoku_attention_mass(tr)
    per_step = mass.groupby("step", as_index=False).agg(updated=("updated", "first"), attention_peer_mass=("peers", "mean"))
    steps = tr.steps[["step", "segment", "outer"]] if "step" in tr.steps else tr.steps.reset_index()[["step", "segment", "outer"]]
    per_step = per_step.merge(steps, on="step", how="left")
    per_step["cycle"] = per_step["segment"] * model.cycles_per_segment + per_step["outer"]
    cols = share[["cycle", "peer_share", "baseline", "ci_low", "ci_high", "n"]].rename(
        columns={"ci_low": "peer_share_low", "ci_high": "peer_share_high"})
    out = per_step.merge(cols, on="cycle", how="left")
    return out[["step", "segment", "cycle", "updated", "attention_peer_mass", "peer_share", "peer_share_low",
                "peer_share_high", "baseline", "n"]]


def mean_matrices(result: InfluenceResult) -> dict[str, np.ndarray]:
    """What ``influence.npz`` holds: the per-cycle matrices and answer influence averaged over puzzles."""
    return {"influence": result.matrices.mean(0), "answer_influence": np.nanmean(result.answer, axis=0)
            if np.isfinite(result.answer).any() else result.answer.mean(0),
            "cycles_per_segment": np.array(result.cycles_per_segment), "n_puzzles": np.array(len(result.matrices))}


__all__ = [
    "InfluenceResult",
    "answer_influence",
    "answer_targets",
    "attention_vs_influence",
    "cycle_influence",
    "even_chunk",
    "influence",
    "maze_path_cells",
    "maze_path_share",
    "mean_matrices",
    "probe_rows",
    "relation_share",
    "sudoku_peer_share",
]
