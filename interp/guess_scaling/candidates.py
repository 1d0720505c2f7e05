"""Candidates: every pass's answer for every puzzle, mapped back to the original frame.

:func:`collect_candidates` runs (checkpoint, input perturbation) passes (the
augmentation and model-bootstrapping strategies); :func:`collect_noisy`
runs one checkpoint many times with latent noise (PTRM) and
:func:`collect_random_starts` from many random initial states, optionally
deeper than the model's own depth (EqR). Each returns :class:`Candidates`:
the argmax grid, ``q_halt``/``q_continue`` of the last segment, the
fixed-point residual of the last segment and (optionally) per-cell softmax.
Guess 0 of every collector is the plain pass (identity input, no noise, the
model's own start) so that one guess is the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from common.labels import IGNORE_LABEL
from interp.guess_scaling.errors import GuessScalingError
from interp.guess_scaling.perturbations import Perturbation
from interp.guess_scaling.recursion import NoiseSpec, run_pass
from interp.guess_scaling.voting import solved_by_rule


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))).astype(np.float32)


@dataclass
class Candidates:
    """All passes for N puzzles, mapped back to the original frame; pass ``c`` came from
    checkpoint ``model_index[c]`` on perturbation ``perturb_index[c]``.

    ``grids`` [N, C, L] tokens, ``q_halt``/``q_continue``/``confidence`` [N, C]
    (confidence = sigmoid(q_halt)), ``residual`` [N, C] (fixed-point residual of
    the last segment, NaN where unknown) or None, ``probs`` [N, C, L, V] float32
    or None (memory N*C*L*V*4 bytes). For noisy and random-start runs
    ``perturb_index`` numbers the draws (0 = the plain pass).
    """

    grids: np.ndarray
    q_halt: np.ndarray
    q_continue: np.ndarray
    model_index: np.ndarray
    perturb_index: np.ndarray
    perturb_names: list[str] = field(default_factory=list)
    probs: np.ndarray | None = None
    residual: np.ndarray | None = None

    @property
    def confidence(self) -> np.ndarray:
        return _sigmoid(self.q_halt)

    @property
    def n_puzzles(self) -> int:
        return int(self.grids.shape[0])

    @property
    def n_candidates(self) -> int:
        return int(self.grids.shape[1])

    def halted(self, rule: str = "q_halt>0") -> np.ndarray:
        """[N, C] whether each pass would have halted at its last segment (``q_halt>0`` or ``q_halt>q_continue``)."""
        if rule == "q_halt>0":
            return self.q_halt > 0
        if rule == "q_halt>q_continue":
            return self.q_halt > self.q_continue
        raise GuessScalingError(f"unknown halting rule {rule!r}; use 'q_halt>0' or 'q_halt>q_continue'")

    def columns(self, pairs: Iterable[tuple[int, int]]) -> np.ndarray:
        """Candidate indices of the given (model, perturbation) pairs, in that order."""
        where = {(int(m), int(p)): c for c, (m, p) in enumerate(zip(self.model_index, self.perturb_index))}
        pairs = list(pairs)
        missing = [pr for pr in pairs if pr not in where]
        if missing:
            raise GuessScalingError(f"no candidates collected for (model, perturbation) pairs {missing[:4]}")
        return np.array([where[pr] for pr in pairs], dtype=np.int64)

    def select(self, cols: np.ndarray | Sequence[int]) -> "Candidates":
        cols = np.asarray(cols, dtype=np.int64)
        return Candidates(
            self.grids[:, cols], self.q_halt[:, cols], self.q_continue[:, cols], self.model_index[cols],
            self.perturb_index[cols], self.perturb_names, None if self.probs is None else self.probs[:, cols],
            None if self.residual is None else self.residual[:, cols],
        )

    def solved(self, rule: str, labels: np.ndarray, ignore_label: int = IGNORE_LABEL, halted: np.ndarray | None = None) -> np.ndarray:
        """[N] exact-correct flags of voting ``rule`` (see ``interp.guess_scaling.voting``)."""
        return solved_by_rule(rule, self.grids, labels, self.confidence, self.probs, self.model_index, halted, ignore_label,
                              q_halt=self.q_halt, residual=self.residual)


def as_models(models: Any) -> list[torch.nn.Module]:
    if isinstance(models, torch.nn.Module):
        return [models]
    out = list(models)
    if not out or not all(isinstance(m, torch.nn.Module) for m in out):
        raise GuessScalingError("models must be a torch nn.Module or a non-empty list of them")
    return out


def as_inputs(inputs: Any) -> np.ndarray:
    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    if x.ndim != 2 or x.shape[0] == 0:
        raise GuessScalingError(f"inputs must be token ids [N >= 1, L], got shape {x.shape}")
    if x.dtype.kind not in "iu":
        raise GuessScalingError(f"inputs must be integer token ids, got dtype {x.dtype}")
    return x.astype(np.int64)


def collect_candidates(
    models: Any,
    inputs: Any,
    perturbations: Sequence[Perturbation],
    n_segments: int | None = None,
    puzzle_ids: Any = None,
    batch_size: int = 256,
    keep_probs: bool = True,
    pairs: Iterable[tuple[int, int]] | None = None,
    progress: bool = False,
) -> Candidates:
    """Run every (model, perturbation) pass (or only ``pairs``) and map each answer back.

    Candidate order is model-major: (0, 0), (0, 1), ..., (1, 0), ...
    """
    models = as_models(models)
    x = as_inputs(inputs)
    pert = list(perturbations)
    if not pert:
        raise GuessScalingError("give at least one perturbation")
    ids = None if puzzle_ids is None else np.asarray(puzzle_ids)
    if ids is not None and ids.shape != (x.shape[0],):
        raise GuessScalingError(f"puzzle_ids must have shape [{x.shape[0]}], got {list(ids.shape)}")
    todo = sorted(set(pairs)) if pairs is not None else [(m, p) for m in range(len(models)) for p in range(len(pert))]
    for m, p in todo:
        if not (0 <= m < len(models) and 0 <= p < len(pert)):
            raise GuessScalingError(f"pair (model {m}, perturbation {p}) out of range ({len(models)} models, {len(pert)} perturbations)")
    from common.progress import Progress

    bar = Progress(len(todo), "guess scaling passes", unit="pass", enabled=bool(progress))
    grids, qh, qc, res, probs = [], [], [], [], []
    for m, p in todo:
        xt = pert[p].forward_tokens(x)
        out = run_pass(models[m], xt, n_segments, ids, batch_size)
        grids.append(pert[p].inverse_tokens(out.logits.argmax(-1)))
        if keep_probs:
            probs.append(pert[p].inverse_probs(_softmax(out.logits)))
        qh.append(out.q_halt)
        qc.append(out.q_continue)
        res.append(out.residual)
        bar.update(1)
    bar.close()
    return Candidates(
        grids=np.stack(grids, axis=1),
        q_halt=np.stack(qh, axis=1),
        q_continue=np.stack(qc, axis=1),
        model_index=np.array([m for m, _ in todo], dtype=np.int64),
        perturb_index=np.array([p for _, p in todo], dtype=np.int64),
        perturb_names=[getattr(pp, "name", str(i)) for i, pp in enumerate(pert)],
        probs=np.stack(probs, axis=1) if keep_probs else None,
        residual=np.stack(res, axis=1),
    )



def _collect_runs(model: torch.nn.Module, x: np.ndarray, specs: list[dict[str, Any]], names: list[str],
                  puzzle_ids: Any, batch_size: int, keep_probs: bool, progress: bool, desc: str) -> Candidates:
    """One candidate per ``run_pass`` keyword set in ``specs`` (identity input, checkpoint 0)."""
    ids = None if puzzle_ids is None else np.asarray(puzzle_ids)
    from common.progress import Progress

    with Progress(len(specs), desc, unit="pass", enabled=bool(progress)) as bar:
        outs = []
        for spec in specs:
            outs.append(run_pass(model, x, puzzle_ids=ids, batch_size=batch_size, **spec))
            bar.update(1)
    C = len(outs)
    return Candidates(
        grids=np.stack([o.logits.argmax(-1) for o in outs], axis=1),
        q_halt=np.stack([o.q_halt for o in outs], axis=1),
        q_continue=np.stack([o.q_continue for o in outs], axis=1),
        model_index=np.zeros(C, dtype=np.int64),
        perturb_index=np.arange(C, dtype=np.int64),
        perturb_names=names,
        probs=np.stack([_softmax(o.logits) for o in outs], axis=1) if keep_probs else None,
        residual=np.stack([o.residual for o in outs], axis=1),
    )


def _check_guesses(n_guesses: int) -> int:
    if int(n_guesses) < 1:
        raise GuessScalingError(f"need at least one guess, got {n_guesses}")
    return int(n_guesses)


def collect_noisy(
    model: torch.nn.Module,
    inputs: Any,
    n_guesses: int,
    scale: float = 0.05,
    where: str = "step",
    n_segments: int | None = None,
    seed: int = 0,
    include_plain: bool = True,
    puzzle_ids: Any = None,
    batch_size: int = 256,
    keep_probs: bool = False,
    progress: bool = False,
) -> Candidates:
    """PTRM candidates: ``n_guesses`` runs with latent noise (``where`` = step | segment) of relative ``scale``.

    Guess 0 is the noiseless run when ``include_plain`` (so one guess is the
    plain model); guess g draws noise from seed ``seed + g``.
    """
    x = as_inputs(inputs)
    n = _check_guesses(n_guesses)
    specs = [{"n_segments": n_segments, "noise": NoiseSpec(0.0 if (include_plain and g == 0) else scale, where, seed + g)}
             for g in range(n)]
    names = ["plain" if s["noise"].scale == 0 else f"noise{g}" for g, s in enumerate(specs)]
    return _collect_runs(model, x, specs, names, puzzle_ids, batch_size, keep_probs, progress, "PTRM passes")


def collect_random_starts(
    model: torch.nn.Module,
    inputs: Any,
    n_guesses: int,
    n_segments: int | None = None,
    seed: int = 0,
    include_own: bool = True,
    puzzle_ids: Any = None,
    batch_size: int = 256,
    keep_probs: bool = False,
    progress: bool = False,
) -> Candidates:
    """EqR candidates: ``n_guesses`` runs of ``n_segments`` segments from random initial states.

    Guess 0 starts from the model's own initial states when ``include_own``;
    guess g draws its start from seed ``seed + g``. Pass ``n_segments`` larger
    than ``halt_max_steps`` for extra depth.
    """
    x = as_inputs(inputs)
    n = _check_guesses(n_guesses)
    specs = [{"n_segments": n_segments, "init": "model" if (include_own and g == 0) else "random", "seed": seed + g}
             for g in range(n)]
    names = ["own-init" if s["init"] == "model" else f"start{g}" for g, s in enumerate(specs)]
    return _collect_runs(model, x, specs, names, puzzle_ids, batch_size, keep_probs, progress, "EqR passes")


__all__ = ["Candidates", "collect_candidates", "collect_noisy", "collect_random_starts", "as_models", "as_inputs"]
