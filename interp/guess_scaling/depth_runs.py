"""Depth x breadth candidates: every candidate run segment by segment to the deepest depth, every segment kept.

One *candidate* is one run of a checkpoint on one puzzle for ``max_depth``
segments (evaluation semantics, no early stop). After every segment it keeps the
answer grid (mapped back to the original frame), the halting logit ``q_halt``
and the fixed-point residual ``||s_t - s_in|| / ||s_in||`` of the carried states
(``s_in`` = the carry that entered the segment), so that every depth 1..D and
every halting mode (off, Q-head, fixed point) is read off the same run.
At the depths in ``check_depths`` the *stability* check re-noises the carry
(relative Gaussian noise ``stab_noise``, ``recursion.relative_noise``), runs
one more segment on the copy and records whether the answer survived.

Breadth strategies (candidate 0 is always the plain model: identity input,
the model's own start, no noise, checkpoint 0):

* ``aug`` - candidate c runs on input perturbation c (``perturbations.make_perturbations``);
* ``ptrm`` - latent noise of relative scale ``noise`` added to the carry before every segment;
* ``eqr`` - random initial states (``recursion.random_states``);
* ``bootstrap`` - candidate c is checkpoint c on the identity input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from interp.guess_scaling.errors import GuessScalingError
from interp.guess_scaling.recursion import is_recurrent, random_states, relative_noise
from models.device import model_device

BREADTH = ("aug", "ptrm", "eqr", "bootstrap")


@dataclass
class DepthRecord:
    """Per-segment results of K candidates on n puzzles.

    ``grids`` int8 [n, K, D, L]; ``q_halt``, ``residual`` float32 [n, K, D];
    ``stable`` bool [n, K, len(check_depths)] (answer unchanged after re-noising at that depth).
    """

    grids: np.ndarray
    q_halt: np.ndarray
    residual: np.ndarray
    stable: np.ndarray

    @staticmethod
    def concat(parts: Sequence["DepthRecord"]) -> "DepthRecord":
        return DepthRecord(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("grids", "q_halt", "residual", "stable")))


@dataclass(frozen=True)
class BreadthSpec:
    """How candidates differ: ``strategy`` (one of :data:`BREADTH`), PTRM ``noise``, ``seed``, aug ``preset``/``task``."""

    strategy: str
    noise: float = 0.05
    seed: int = 0
    preset: str = "random"
    task: str = "sudoku"

    def __post_init__(self) -> None:
        if self.strategy not in BREADTH:
            raise GuessScalingError(f"unknown breadth strategy {self.strategy!r}; choose from {', '.join(BREADTH)}")


def _residual(new: dict[str, torch.Tensor], old: dict[str, torch.Tensor]) -> torch.Tensor:
    num = sum((new[k].float() - old[k].float()).flatten(1).pow(2).sum(1) for k in new)
    den = sum(old[k].float().flatten(1).pow(2).sum(1) for k in new)
    return num.sqrt() / den.sqrt().clamp_min(1e-12)


@torch.no_grad()
def run_candidate(model: torch.nn.Module, tokens: np.ndarray, max_depth: int, init: str = "model", noise: float = 0.0,
                  seed: int = 0, check_depths: Sequence[int] = (), stab_noise: float = 0.1,
                  puzzle_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One candidate for every puzzle of ``tokens`` [n, L]: (grids [n, D, L] (model frame), q_halt [n, D],
    residual [n, D], stable [n, len(check_depths)])."""
    if not is_recurrent(model):
        raise GuessScalingError(f"{type(model).__name__} has no segment/init_states: the scale harness needs HRM/TRM-style models")
    dev = model_device(model)
    x = torch.as_tensor(np.asarray(tokens)).long().to(dev)
    ids = None if puzzle_ids is None else torch.as_tensor(np.asarray(puzzle_ids)).long().to(dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(seed))
    n = x.shape[0]
    states = model.init_states(n, dev) if init == "model" else random_states(model, n, dev, gen)
    grids, qh, res, stable = [], [], [], []
    checks = set(int(d) for d in check_depths)
    was_training = model.training
    model.eval()
    try:
        for s in range(int(max_depth)):
            if noise > 0 and s > 0:
                states = {k: v + relative_noise(v, noise, gen) for k, v in states.items()}
            entered = states
            states, out = model.segment(states, x, ids, seg=s)
            answer = out.logits.argmax(-1)
            grids.append(answer.cpu().numpy().astype(np.int8))
            qh.append(out.q_halt.float().cpu().numpy())
            res.append(_residual(states, entered).cpu().numpy())
            if s + 1 in checks:
                shaken = {k: v + relative_noise(v, stab_noise, gen) for k, v in states.items()}
                _, again = model.segment(shaken, x, ids, seg=s + 1)
                stable.append((again.logits.argmax(-1) == answer).all(-1).cpu().numpy())
    finally:
        model.train(was_training)
    st = np.stack(stable, axis=1) if stable else np.zeros((n, 0), dtype=bool)
    return np.stack(grids, 1), np.stack(qh, 1).astype(np.float32), np.stack(res, 1).astype(np.float32), st


def collect_depth(models: Sequence[torch.nn.Module], tokens: np.ndarray, spec: BreadthSpec, k: int, max_depth: int,
                  check_depths: Sequence[int] = (), stab_noise: float = 0.1, puzzle_ids: np.ndarray | None = None,
                  on_pass: Any = None) -> DepthRecord:
    """``k`` candidates of ``spec`` for the puzzles ``tokens`` [n, L], each ``max_depth`` segments deep.

    ``on_pass()`` is called after each candidate (a progress bar). Seeds: candidate c draws from ``seed + c``.
    """
    from interp.guess_scaling.perturbations import make_perturbations

    x = np.asarray(tokens).astype(np.int64)
    if spec.strategy == "bootstrap" and k > len(models):
        raise GuessScalingError(f"bootstrap with k={k} needs {k} checkpoints, got {len(models)}")
    pert = make_perturbations(spec.task, spec.preset, k, spec.seed, x.shape[1]) if spec.strategy == "aug" else None
    if pert is not None and len(pert) < k:
        raise GuessScalingError(f"the {spec.preset!r} perturbations give {len(pert)} candidates, asked for k={k}")
    parts = []
    for c in range(k):
        model = models[c] if spec.strategy == "bootstrap" else models[0]
        xin = pert[c].forward_tokens(x) if pert is not None else x
        g, q, r, st = run_candidate(
            model, xin, max_depth, init="random" if (spec.strategy == "eqr" and c > 0) else "model",
            noise=spec.noise if (spec.strategy == "ptrm" and c > 0) else 0.0, seed=spec.seed + c,
            check_depths=check_depths, stab_noise=stab_noise, puzzle_ids=puzzle_ids)
        if pert is not None:
            n, D, L = g.shape
            g = pert[c].inverse_tokens(g.reshape(n * D, L).astype(np.int64)).reshape(n, D, L).astype(np.int8)
        parts.append((g, q, r, st))
        if on_pass is not None:
            on_pass()
    return DepthRecord(*(np.stack([p[i] for p in parts], axis=1) for i in range(4)))


__all__ = ["BREADTH", "DepthRecord", "BreadthSpec", "run_candidate", "collect_depth"]
