"""Validity-preserving input disguises with exact inverses (the "augmentation" strategy).

A *perturbation* maps input tokens to a disguised puzzle whose answer maps back
exactly: Sudoku symmetries (:class:`SudokuPerturbation`, built on
``tasks.sudoku.augment.SudokuTransform``: digit relabelling, band/row and
stack/column permutations, transpose; the Augmented-HRM paper's 9 cyclic digit
shifts are the ``"cyclic"`` preset) and maze symmetries
(:class:`MazePerturbation`: the 8 dihedral maps, optionally swapping start and
goal). Perturbation 0 of every preset is the identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from interp.guess_scaling.errors import GuessScalingError

SUDOKU_PRESETS = ("random", "cyclic", "digits", "geometric")
MAZE_PRESETS = ("dihedral", "dihedral+swap", "swap")


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



__all__ = [
    "SUDOKU_PRESETS", "MAZE_PRESETS", "Perturbation", "IdentityPerturbation", "SudokuPerturbation",
    "MazePerturbation", "sudoku_perturbations", "maze_perturbations", "make_perturbations",
]
