"""Guess scaling: many passes per puzzle (input perturbations x checkpoints), then a vote.

Augmented HRM (Ren & Liu, arXiv 2601.10679) found that a recursive reasoner can
fall into a wrong fixed point ("guess") and that re-asking it the same puzzle
in another disguise often gets it right. This module measures that effect::

    perturbations (validity-preserving)        checkpoints ("model bootstrapping")
           \\                                          /
            run every (model, perturbation) pass, map each answer back
                                |
                       Candidates [N puzzles, C passes]
                                |
         voting rules (interp.guess_scaling.voting) for k = 1, 2, 4, ... passes
                                |
          tidy table: strategy, rule, k, accuracy, ci_low, ci_high, n

A *perturbation* maps input tokens to a disguised puzzle whose answer maps back
exactly: Sudoku symmetries (:class:`SudokuPerturbation`, built on
``tasks.sudoku.augment.SudokuTransform``: digit relabelling, band/row
and stack/column permutations, transpose; the paper's 9 cyclic digit shifts are
the ``"cyclic"`` preset) and maze symmetries (:class:`MazePerturbation`: the 8
dihedral maps, optionally swapping start and goal).

Each pass gives a candidate: the argmax grid, ``confidence = sigmoid(q_halt)``
of the last segment, and (optionally) the per-cell softmax, all mapped back
into the original puzzle's frame. Perturbation 0 of every preset is the
identity, so ``k = 1`` is the plain model.

Strategies (which passes the first k are):

* ``perturb``   - checkpoint 0, perturbations 0..k-1;
* ``bootstrap`` - checkpoints 0..k-1, identity input each;
* ``combined``  - every checkpoint x perturbations 0..k-1 (k * M passes).

Rules ``oracle_any`` and ``augmented_hrm`` look at the label: they are upper
bounds (``uses_label`` is True in the table), not test-time methods.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import numpy as np
import pandas as pd
import torch


from common.io import atomic_write
from common.labels import IGNORE_LABEL
from common.stats import bootstrap_ci, wilson_interval
from interp.guess_scaling.voting import ALL_RULES, VotingError, rule_uses_label, solved_by_rule

STRATEGIES = ("perturb", "bootstrap", "combined")
SUDOKU_PRESETS = ("random", "cyclic", "digits", "geometric")
MAZE_PRESETS = ("dihedral", "dihedral+swap", "swap")


class GuessScalingError(ValueError):
    """Bad arguments to the guess-scaling tools; the message names the problem."""


# =========================================================================== perturbations


class Perturbation(Protocol):
    """An input disguise with an exact inverse for answers (tokens and per-cell probabilities)."""

    name: str

    def forward_tokens(self, tokens: np.ndarray) -> np.ndarray:  # [B, L] -> [B, L]
        ...

    def inverse_tokens(self, tokens: np.ndarray) -> np.ndarray:  # [B, L] -> [B, L]
        ...

    def inverse_probs(self, probs: np.ndarray) -> np.ndarray:  # [B, L, V] -> [B, L, V]
        ...


@dataclass(frozen=True)
class IdentityPerturbation:
    """No disguise (the plain pass); works for any task."""

    name: str = "identity"

    def forward_tokens(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(tokens).copy()

    def inverse_tokens(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(tokens).copy()

    def inverse_probs(self, probs: np.ndarray) -> np.ndarray:
        return np.asarray(probs).copy()


def _vocab_table(base: np.ndarray, V: int) -> np.ndarray:
    """Extend a token permutation of the first ``len(base)`` ids by the identity up to ``V``."""
    if V < len(base):
        raise GuessScalingError(f"probabilities have {V} vocabulary entries, the task needs at least {len(base)}")
    return np.concatenate([base, np.arange(len(base), V)])


class SudokuPerturbation:
    """A Sudoku symmetry acting on token grids ``[B, S*S]`` (0 pad, 1 blank, 2.. digits).

    Positions: transformed cell ``p`` holds original cell ``source[p]``; tokens:
    original token ``v`` becomes ``token_map[v]``. Both are derived from the
    transform's public permutations; the tests check them against
    ``SudokuTransform.apply_tokens``.
    """

    def __init__(self, transform: Any, name: str | None = None):
        self.transform = transform
        S = transform.size
        self.size = S
        idx = np.arange(S * S).reshape(S, S)
        if transform.transpose:
            idx = idx.T
        self.source = idx[transform.row_perm][:, transform.col_perm].reshape(-1)  # new pos -> old cell
        self.target = np.argsort(self.source)  # old cell -> new pos
        self.token_map = np.concatenate([[0, 1], transform.digit_map[1:] + 1])  # old token -> new token
        self.name = name or _sudoku_name(transform)

    def _check(self, tokens: np.ndarray) -> np.ndarray:
        arr = np.asarray(tokens)
        if arr.ndim != 2 or arr.shape[1] != self.size * self.size:
            raise GuessScalingError(f"sudoku tokens must be [batch, {self.size * self.size}], got shape {arr.shape}")
        return arr

    def forward_tokens(self, tokens: np.ndarray) -> np.ndarray:
        return self.transform.apply_tokens(self._check(tokens))

    def inverse_tokens(self, tokens: np.ndarray) -> np.ndarray:
        arr = self._check(tokens)
        # predictions may use any vocabulary id: map digits back, leave others as they are
        table = _vocab_table(np.argsort(self.token_map), max(int(arr.max(initial=0)) + 1, len(self.token_map)))
        return table[arr[:, self.target]].astype(arr.dtype)

    def inverse_probs(self, probs: np.ndarray) -> np.ndarray:
        p = np.asarray(probs)
        if p.ndim != 3 or p.shape[1] != self.size * self.size:
            raise GuessScalingError(f"probs must be [batch, {self.size * self.size}, V], got shape {p.shape}")
        table = _vocab_table(self.token_map, p.shape[2])
        return p[:, self.target][:, :, table]


def _sudoku_name(t: Any) -> str:
    ident = np.arange(t.size)
    parts = []
    if t.transpose:
        parts.append("T")
    if not np.array_equal(t.row_perm, ident) or not np.array_equal(t.col_perm, ident):
        parts.append("perm")
    if tuple(t.digit_perm) != tuple(range(1, t.size + 1)):
        parts.append("digits=" + "".join(str(d) for d in t.digit_perm))
    return "+".join(parts) or "identity"


class MazePerturbation:
    """Dihedral symmetry ``tid`` (0..7, ``tasks.dihedral``) of a square maze, optionally swapping S and G."""

    START, GOAL = 3, 4

    def __init__(self, tid: int, swap: bool = False, side: int | None = None):
        from tasks.dihedral import DIHEDRAL_NAMES, inverse_id

        self.tid = int(tid)
        self.inv_tid = inverse_id(self.tid)
        self.swap = bool(swap)
        self.side = side
        self.name = DIHEDRAL_NAMES[self.tid] + ("+swap" if self.swap else "")
        swap_table = np.arange(6)
        if self.swap:
            swap_table[[self.START, self.GOAL]] = [self.GOAL, self.START]
        self._swap = swap_table  # an involution

    def _grid(self, arr: np.ndarray) -> tuple[np.ndarray, int]:
        if arr.ndim < 2:
            raise GuessScalingError(f"maze tokens must be [batch, side*side], got shape {arr.shape}")
        side = math.isqrt(arr.shape[1])
        if side * side != arr.shape[1] or (self.side is not None and side != self.side):
            raise GuessScalingError(f"maze tokens must be [batch, side*side] for a square maze, got {arr.shape[1]} cells")
        return arr.reshape(arr.shape[0], side, side, *arr.shape[2:]), side

    def _move(self, arr: np.ndarray, tid: int) -> np.ndarray:
        from tasks.dihedral import dihedral_transform

        grid, side = self._grid(arr)
        moved = np.moveaxis(dihedral_transform(np.moveaxis(grid, 0, 2), tid), 2, 0)  # batch axis out of the way
        return np.ascontiguousarray(moved).reshape(arr.shape)

    def _swap_tokens(self, arr: np.ndarray) -> np.ndarray:
        table = _vocab_table(self._swap, max(int(arr.max(initial=0)) + 1, 6))
        return table[arr].astype(arr.dtype)

    def forward_tokens(self, tokens: np.ndarray) -> np.ndarray:
        return self._swap_tokens(self._move(np.asarray(tokens), self.tid))

    def inverse_tokens(self, tokens: np.ndarray) -> np.ndarray:
        return self._move(self._swap_tokens(np.asarray(tokens)), self.inv_tid)

    def inverse_probs(self, probs: np.ndarray) -> np.ndarray:
        p = np.asarray(probs)
        if p.ndim != 3:
            raise GuessScalingError(f"probs must be [batch, L, V], got shape {p.shape}")
        return self._move(p[:, :, _vocab_table(self._swap, p.shape[2])], self.inv_tid)


def sudoku_perturbations(k: int | None = None, preset: str = "random", seed: int = 0, size: int = 9) -> list[SudokuPerturbation]:
    """Perturbation list for Sudoku, identity first.

    ``"cyclic"``: the S cyclic digit shifts of Augmented HRM (``k`` <= S, default all);
    ``"random"``: uniformly random group elements (transpose, bands/rows, stacks/columns, digits);
    ``"digits"``: random digit relabellings only; ``"geometric"``: random cell moves only.
    """
    from tasks.sudoku.augment import SudokuTransform, cyclic_relabellings

    if preset not in SUDOKU_PRESETS:
        raise GuessScalingError(f"unknown sudoku preset {preset!r}; choose from {', '.join(SUDOKU_PRESETS)}")
    if preset == "cyclic":
        shifts = cyclic_relabellings(size)
        k = len(shifts) if k is None else k
        if not 1 <= k <= len(shifts):
            raise GuessScalingError(f"the cyclic preset has {len(shifts)} shifts, asked for k={k}")
        return [SudokuPerturbation(t, f"shift{i}") for i, t in enumerate(shifts[:k])]
    if k is None or k < 1:
        raise GuessScalingError(f"preset {preset!r} needs k >= 1 perturbations, got {k}")
    rng = np.random.default_rng(seed)
    ident = SudokuTransform.identity(size)
    out = [SudokuPerturbation(ident, "identity")]
    while len(out) < k:
        t = SudokuTransform.random(rng, size)
        if preset == "digits":
            t = SudokuTransform(t.digit_perm, ident.band_perm, ident.row_perms, ident.stack_perm, ident.col_perms, False)
        elif preset == "geometric":
            t = SudokuTransform(ident.digit_perm, t.band_perm, t.row_perms, t.stack_perm, t.col_perms, t.transpose)
        out.append(SudokuPerturbation(t, f"{preset}{len(out)}"))
    return out


def maze_perturbations(preset: str = "dihedral+swap", k: int | None = None) -> list[MazePerturbation]:
    """Maze perturbations, identity first: the 8 dihedral maps, each with and without S/G swapped."""
    if preset not in MAZE_PRESETS:
        raise GuessScalingError(f"unknown maze preset {preset!r}; choose from {', '.join(MAZE_PRESETS)}")
    if preset == "dihedral":
        out = [MazePerturbation(t) for t in range(8)]
    elif preset == "swap":
        out = [MazePerturbation(0), MazePerturbation(0, swap=True)]
    else:
        out = [MazePerturbation(t, swap=s) for t in range(8) for s in (False, True)]
    if k is not None:
        if not 1 <= k <= len(out):
            raise GuessScalingError(f"maze preset {preset!r} has {len(out)} perturbations, asked for k={k}")
        out = out[:k]
    return out


def make_perturbations(task: str, preset: str | Sequence[Perturbation], k: int, seed: int = 0, seq_len: int = 81) -> list:
    """Resolve a preset name (or pass a list through) for ``task`` in {"sudoku", "maze", "other"}."""
    if not isinstance(preset, str):
        pert = list(preset)
        if not pert:
            raise GuessScalingError("perturbation list is empty")
        return pert
    if task == "sudoku":
        size = math.isqrt(seq_len)
        if size * size != seq_len:
            raise GuessScalingError(f"sudoku inputs need a square number of cells, got {seq_len}")
        if preset == "cyclic":
            return sudoku_perturbations(None, "cyclic", seed, size)
        return sudoku_perturbations(k, preset, seed, size)
    if task == "maze":
        return maze_perturbations(preset)
    if task == "other":
        if preset != "identity":
            raise GuessScalingError(f"task 'other' has only the 'identity' preset, got {preset!r}")
        return [IdentityPerturbation()]
    raise GuessScalingError(f"unknown task {task!r}; choose sudoku, maze or other")


# =========================================================================== running models


def _device(model: torch.nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def model_outputs(
    model: torch.nn.Module,
    tokens: np.ndarray,
    n_segments: int | None = None,
    puzzle_ids: np.ndarray | None = None,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Final-segment ``(logits [B, L, V], q_halt [B], q_continue [B])`` as float32 numpy.

    A ``PuzzleModel`` runs its segments from fresh states (evaluation semantics,
    no early halting). Any other module is called as ``model(x, n_segments=...)``
    and may return logits or a tuple ``(logits, q_halt[, q_continue])``; without
    a halting head ``q_halt`` is 0 (confidence 0.5).
    """
    x_all = torch.as_tensor(np.asarray(tokens)).long()
    ids_all = None if puzzle_ids is None else torch.as_tensor(np.asarray(puzzle_ids)).long()
    dev = _device(model)
    was_training = model.training
    model.eval()
    logits_out, qh_out, qc_out = [], [], []
    try:
        for a in range(0, x_all.shape[0], batch_size):
            x = x_all[a : a + batch_size].to(dev)
            ids = None if ids_all is None else ids_all[a : a + batch_size].to(dev)
            if hasattr(model, "segment") and hasattr(model, "init_states"):
                model.check_inputs(x, ids)
                n = model.cfg.halt_max_steps if n_segments is None else int(n_segments)
                if n < 1:
                    raise GuessScalingError(f"n_segments must be >= 1, got {n}")
                states = model.init_states(x.shape[0], x.device)
                for s in range(n):
                    states, out = model.segment(states, x, ids, seg=s)
                logits, qh, qc = out.logits, out.q_halt, out.q_continue
            else:
                res = model(x, n_segments=n_segments) if n_segments is not None else model(x)
                if isinstance(res, (tuple, list)):
                    logits = res[0]
                    qh = res[1] if len(res) > 1 else torch.zeros(x.shape[0])
                    qc = res[2] if len(res) > 2 else torch.zeros(x.shape[0])
                else:
                    logits, qh, qc = res, torch.zeros(x.shape[0]), torch.zeros(x.shape[0])
            if logits.dim() != 3 or logits.shape[:2] != x.shape:
                raise GuessScalingError(f"model returned logits of shape {list(logits.shape)}, expected [{x.shape[0]}, {x.shape[1]}, V]")
            logits_out.append(logits.float().cpu().numpy())
            qh_out.append(torch.as_tensor(qh).float().reshape(-1).cpu().numpy())
            qc_out.append(torch.as_tensor(qc).float().reshape(-1).cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(logits_out), np.concatenate(qh_out), np.concatenate(qc_out)


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
    (confidence = sigmoid(q_halt)), ``probs`` [N, C, L, V] float32 or None
    (memory N*C*L*V*4 bytes).
    """

    grids: np.ndarray
    q_halt: np.ndarray
    q_continue: np.ndarray
    model_index: np.ndarray
    perturb_index: np.ndarray
    perturb_names: list[str] = field(default_factory=list)
    probs: np.ndarray | None = None

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
        )

    def solved(self, rule: str, labels: np.ndarray, ignore_label: int = IGNORE_LABEL, halted: np.ndarray | None = None) -> np.ndarray:
        """[N] exact-correct flags of voting ``rule`` (see ``interp.guess_scaling.voting``)."""
        return solved_by_rule(rule, self.grids, labels, self.confidence, self.probs, self.model_index, halted, ignore_label)


def _as_models(models: Any) -> list[torch.nn.Module]:
    if isinstance(models, torch.nn.Module):
        return [models]
    out = list(models)
    if not out or not all(isinstance(m, torch.nn.Module) for m in out):
        raise GuessScalingError("models must be a torch nn.Module or a non-empty list of them")
    return out


def _as_inputs(inputs: Any) -> np.ndarray:
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
    models = _as_models(models)
    x = _as_inputs(inputs)
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
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="guess scaling passes")
    grids, qh, qc, probs = [], [], [], []
    for m, p in todo:
        xt = pert[p].forward_tokens(x)
        logits, q_halt, q_cont = model_outputs(models[m], xt, n_segments, ids, batch_size)
        grids.append(pert[p].inverse_tokens(logits.argmax(-1)))
        if keep_probs:
            probs.append(pert[p].inverse_probs(_softmax(logits)))
        qh.append(q_halt)
        qc.append(q_cont)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return Candidates(
        grids=np.stack(grids, axis=1),
        q_halt=np.stack(qh, axis=1),
        q_continue=np.stack(qc, axis=1),
        model_index=np.array([m for m, _ in todo], dtype=np.int64),
        perturb_index=np.array([p for _, p in todo], dtype=np.int64),
        perturb_names=[getattr(pp, "name", str(i)) for i, pp in enumerate(pert)],
        probs=np.stack(probs, axis=1) if keep_probs else None,
    )


# =========================================================================== experiment


def strategy_pairs(strategy: str, k: int, n_models: int, n_perturb: int) -> list[tuple[int, int]] | None:
    """The (model, perturbation) passes that make up ``k`` for ``strategy``; None when k is out of range."""
    if strategy == "perturb":
        return [(0, p) for p in range(k)] if k <= n_perturb else None
    if strategy == "bootstrap":
        return [(m, 0) for m in range(k)] if k <= n_models else None
    if strategy == "combined":
        return [(m, p) for m in range(n_models) for p in range(k)] if k <= n_perturb else None
    raise GuessScalingError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")


def needed_pairs(strategies: Sequence[str], ks: Sequence[int], n_models: int, n_perturb: int) -> set[tuple[int, int]]:
    """Every (model, perturbation) pass some (strategy, k) needs; k values that do not fit are left out."""
    pairs: set[tuple[int, int]] = set()
    for s in strategies:
        for k in ks:
            pairs.update(strategy_pairs(s, k, n_models, n_perturb) or [])
    return pairs


def scaling_table(
    candidates: Candidates,
    labels: Any,
    strategies: Sequence[str] = STRATEGIES,
    ks: Sequence[int] = (1, 2, 4, 8),
    rules: Sequence[str] = ALL_RULES,
    n_boot: int = 1000,
    ci: str = "bootstrap",
    alpha: float = 0.05,
    seed: int = 0,
    ignore_label: int = IGNORE_LABEL,
    halted_rule: str | None = None,
) -> pd.DataFrame:
    """Tidy accuracy table from collected candidates (see :func:`guess_scaling_curve`)."""
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.dtype.kind in "iu":
        y = y.astype(np.int64)
    if y.shape != (candidates.n_puzzles, candidates.grids.shape[2]):
        raise GuessScalingError(f"labels must have shape [{candidates.n_puzzles}, {candidates.grids.shape[2]}], got {list(y.shape)}")
    if ci not in ("bootstrap", "wilson"):
        raise GuessScalingError(f"ci must be 'bootstrap' or 'wilson', got {ci!r}")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise GuessScalingError(f"ks must be positive integers, got {ks}")
    for r in rules:
        try:
            rule_uses_label(r)
        except VotingError as exc:
            raise GuessScalingError(str(exc)) from None
    if "prob_average" in rules and candidates.probs is None:
        raise GuessScalingError("rule 'prob_average' needs candidates collected with keep_probs=True")
    n_models = int(candidates.model_index.max()) + 1
    n_pert = int(candidates.perturb_index.max()) + 1
    rows = []
    for si, strategy in enumerate(strategies):
        skipped = []
        for k in ks:
            pairs = strategy_pairs(strategy, k, n_models, n_pert)
            if pairs is None:
                skipped.append(k)
                continue
            sub = candidates.select(candidates.columns(pairs))
            halted = sub.halted(halted_rule) if halted_rule else None
            for ri, rule in enumerate(rules):
                flags = sub.solved(rule, y, ignore_label, halted if rule == "augmented_hrm" else None)
                n = int(flags.size)
                acc = float(flags.mean())
                if ci == "wilson":
                    lo, hi = wilson_interval(int(flags.sum()), n, alpha)
                else:
                    lo, hi = bootstrap_ci(flags, n_boot, alpha, seed + 1000 * si + 10 * k + ri)
                rows.append({
                    "strategy": strategy, "rule": rule, "k": k, "accuracy": acc, "ci_low": lo, "ci_high": hi,
                    "n": n, "n_passes": sub.n_candidates, "uses_label": rule_uses_label(rule),
                })
        if skipped:
            warnings.warn(
                f"strategy {strategy!r}: k={skipped} skipped ({n_models} checkpoint(s), {n_pert} perturbation(s) in the candidates)",
                stacklevel=2,
            )
    cols = ["strategy", "rule", "k", "accuracy", "ci_low", "ci_high", "n", "n_passes", "uses_label"]
    return pd.DataFrame(rows, columns=cols)


def guess_scaling_curve(
    models: Any,
    inputs: Any,
    labels: Any,
    strategies: Sequence[str] = STRATEGIES,
    ks: Sequence[int] = (1, 2, 4, 8),
    rules: Sequence[str] = ALL_RULES,
    perturbations: str | Sequence[Perturbation] = "random",
    task: str = "sudoku",
    n_boot: int = 1000,
    ci: str = "bootstrap",
    alpha: float = 0.05,
    seed: int = 0,
    n_segments: int | None = None,
    puzzle_ids: Any = None,
    batch_size: int = 256,
    halted_rule: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Accuracy vs number of passes k, per strategy and voting rule, with (1 - alpha) intervals.

    ``models``: one model or a list of checkpoints (``bootstrap``/``combined``
    use them all). ``perturbations``: a preset (Sudoku ``random`` | ``cyclic`` |
    ``digits`` | ``geometric``; maze ``dihedral`` | ``dihedral+swap`` |
    ``swap``) or a list of perturbation objects with the identity first.
    ``ci``: ``bootstrap`` (percentile, ``n_boot`` puzzle resamples) or ``wilson``.
    ``halted_rule`` (``q_halt>0`` / ``q_halt>q_continue``) restricts the
    Augmented-HRM majority to passes that halted; default all passes count.
    Returns columns strategy, rule, k, accuracy, ci_low, ci_high, n (puzzles),
    n_passes (passes voted over), uses_label (True for the oracle rules).
    Only passes some (strategy, k) needs are run.
    """
    models = _as_models(models)
    x = _as_inputs(inputs)
    for s in strategies:
        if s not in STRATEGIES:
            raise GuessScalingError(f"unknown strategy {s!r}; choose from {', '.join(STRATEGIES)}")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise GuessScalingError(f"ks must be positive integers, got {ks}")
    needs_pert = any(s in ("perturb", "combined") for s in strategies)
    pert = make_perturbations(task, perturbations, max(ks) if needs_pert else 1, seed, x.shape[1])
    pairs = needed_pairs(strategies, ks, len(models), len(pert))
    if not pairs:
        raise GuessScalingError(f"no k in {ks} fits the {len(models)} model(s) and {len(pert)} perturbation(s)")
    cands = collect_candidates(models, x, pert, n_segments, puzzle_ids, batch_size,
                               keep_probs="prob_average" in rules, pairs=pairs, progress=progress)
    return scaling_table(cands, labels, strategies, ks, rules, n_boot, ci, alpha, seed, halted_rule=halted_rule)


# =========================================================================== figures


def _check_table(df: pd.DataFrame) -> None:
    need = {"strategy", "rule", "k", "accuracy", "ci_low", "ci_high"}
    missing = need - set(df.columns)
    if missing:
        raise GuessScalingError(f"table lacks columns {sorted(missing)} (use guess_scaling_curve's output)")
    if df.empty:
        raise GuessScalingError("table is empty: nothing to plot")


def plot_guess_scaling(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Matplotlib figure (PNG/SVG/PDF by suffix): one panel per strategy, accuracy vs k with CI bands.

    Oracle rules are drawn dashed. The file is written atomically.
    """
    from matplotlib.figure import Figure

    _check_table(df)
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise GuessScalingError(f"figure path must end in .png, .svg or .pdf, got {path.name!r}")
    strategies = list(dict.fromkeys(df["strategy"]))
    fig = Figure(figsize=(4.2 * len(strategies), 3.6), constrained_layout=True)
    axes = fig.subplots(1, len(strategies), squeeze=False, sharey=True)[0]
    for ax, strategy in zip(axes, strategies):
        part = df[df["strategy"] == strategy]
        for rule, g in part.groupby("rule", sort=False):
            g = g.sort_values("k")
            oracle = bool(g["uses_label"].iloc[0]) if "uses_label" in g else rule in ("oracle_any", "augmented_hrm")
            label = f"{rule} (oracle)" if oracle else rule
            line = ax.plot(g["k"], g["accuracy"], marker="o", ls="--" if oracle else "-", label=label)[0]
            ax.fill_between(g["k"], g["ci_low"], g["ci_high"], color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ks = sorted(part["k"].unique())
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("k (passes)" if strategy != "combined" else "k (perturbations per checkpoint)")
        ax.set_title(strategy)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("exact accuracy")
    axes[-1].legend(fontsize=7, loc="lower right")
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=150))


def guess_scaling_figure(df: pd.DataFrame):
    """Interactive Plotly figure (``go.Figure``): a panel per strategy, error bars, oracle rules dashed."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    _check_table(df)
    strategies = list(dict.fromkeys(df["strategy"]))
    rules = list(dict.fromkeys(df["rule"]))
    colours = {r: qualitative.Plotly[i % len(qualitative.Plotly)] for i, r in enumerate(rules)}
    fig = make_subplots(rows=1, cols=len(strategies), subplot_titles=strategies, shared_yaxes=True)
    for col, strategy in enumerate(strategies, start=1):
        part = df[df["strategy"] == strategy]
        for rule in rules:
            g = part[part["rule"] == rule].sort_values("k")
            if g.empty:
                continue
            oracle = bool(g["uses_label"].iloc[0]) if "uses_label" in g else rule in ("oracle_any", "augmented_hrm")
            fig.add_trace(go.Scatter(
                x=g["k"], y=g["accuracy"], mode="lines+markers", name=f"{rule} (oracle)" if oracle else rule,
                legendgroup=rule, showlegend=col == 1, line={"color": colours[rule], "dash": "dash" if oracle else "solid"},
                error_y={"type": "data", "symmetric": False, "array": g["ci_high"] - g["accuracy"],
                         "arrayminus": g["accuracy"] - g["ci_low"]},
                hovertemplate="k=%{x}<br>accuracy=%{y:.3f}<extra>" + rule + "</extra>",
            ), row=1, col=col)
        fig.update_xaxes(type="log", title_text="k", row=1, col=col)
    fig.update_yaxes(title_text="exact accuracy", range=[-0.02, 1.02], row=1, col=1)
    fig.update_layout(title="Guess scaling", template="plotly_white")
    return fig


__all__ = [
    "STRATEGIES", "GuessScalingError", "Perturbation", "IdentityPerturbation", "SudokuPerturbation",
    "MazePerturbation", "sudoku_perturbations", "maze_perturbations", "make_perturbations", "model_outputs",
    "Candidates", "collect_candidates", "strategy_pairs",
    "scaling_table", "guess_scaling_curve", "plot_guess_scaling", "guess_scaling_figure",
]
