"""Clean/corrupted pairs: the two runs whose difference a patching or attribution experiment explains.

A pair is a clean input (the model's answer on it is what we explain), a
corrupted input of the same shape, the labels the metric reads (the clean
answer) and the positions the metric looks at. Built-in corruptions:

* ``change_given``: one given Sudoku digit becomes another digit, chosen so
  that the corrupted puzzle still has a solution and no clashing givens;
* ``blank_given``: one given digit is blanked (always solvable);
* ``swap``: the corrupted input is the next puzzle of the batch;
* ``substitute``: one token of a language-model input is replaced by another.

User-supplied pairs come in as two token arrays (``make_pairs(..., corrupt=tokens)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from interp.causal.errors import CausalError

CORRUPTIONS = ("change_given", "blank_given", "swap", "substitute")
SUDOKU_ONLY = ("change_given", "blank_given")


@dataclass
class PairSet:
    """``clean``/``corrupt`` [N, L] token ids, ``labels`` [N, L] (-100: not scored), ``targets`` [N, L] bool
    (the positions the metric averages over), and per pair a description of the corruption."""

    clean: np.ndarray
    corrupt: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    kind: str
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.clean.shape[0])

    def changed_positions(self) -> list[np.ndarray]:
        """Per pair, the positions where the clean and corrupted inputs differ."""
        return [np.flatnonzero(a != b) for a, b in zip(self.clean, self.corrupt)]


def _sudoku_grid(tokens: np.ndarray) -> np.ndarray:
    from tasks.sudoku.grid import decode_tokens

    return decode_tokens(tokens.astype(np.int64))


def _sudoku_tokens(grid: np.ndarray) -> np.ndarray:
    from tasks.sudoku.grid import encode_grid

    return encode_grid(grid).astype(np.int64)


def _solvable(grid: np.ndarray) -> bool:
    from tasks.sudoku.grid import find_clash
    from tasks.sudoku.solver import count_solutions

    return find_clash(grid) is None and count_solutions(grid, limit=1) >= 1


def change_given(tokens: np.ndarray, rng: np.random.Generator, cell: int | None = None) -> tuple[np.ndarray, str]:
    """One given digit of a Sudoku (token row) changed so that the puzzle keeps a solution."""
    grid = _sudoku_grid(tokens)
    size = grid.shape[0]
    flat = grid.reshape(-1)
    givens = np.flatnonzero(flat) if cell is None else np.array([cell])
    if givens.size == 0 or (cell is not None and flat[cell] == 0):
        raise CausalError("change_given needs a given digit" + (f" at cell {cell}" if cell is not None else ""))
    for c in rng.permutation(givens):
        for d in rng.permutation(np.arange(1, size + 1)):
            if d == flat[c]:
                continue
            new = flat.copy()
            new[c] = d
            if _solvable(new.reshape(size, size)):
                return _sudoku_tokens(new.reshape(size, size)), f"cell {c}: {flat[c]} -> {d}"
    raise CausalError("change_given: no given digit can change without leaving the puzzle unsolvable")


def blank_given(tokens: np.ndarray, rng: np.random.Generator, cell: int | None = None) -> tuple[np.ndarray, str]:
    """One given digit of a Sudoku blanked."""
    grid = _sudoku_grid(tokens)
    flat = grid.reshape(-1).copy()
    givens = np.flatnonzero(flat)
    if cell is not None:
        if flat[cell] == 0:
            raise CausalError(f"blank_given: cell {cell} is not a given")
        c = cell
    elif givens.size == 0:
        raise CausalError("blank_given needs a puzzle with at least one given")
    else:
        c = int(rng.choice(givens))
    old = flat[c]
    flat[c] = 0
    return _sudoku_tokens(flat.reshape(grid.shape)), f"cell {c}: {old} -> blank"


def substitute(tokens: np.ndarray, rng: np.random.Generator, vocab_size: int,
               position: int | None = None) -> tuple[np.ndarray, str]:
    """One token replaced by a different one (language models)."""
    out = tokens.astype(np.int64).copy()
    p = int(rng.integers(0, len(out))) if position is None else int(position)
    if not 0 <= p < len(out):
        raise CausalError(f"substitute: position {p} is outside the input (length {len(out)})")
    choices = np.setdiff1d(np.arange(vocab_size), [out[p]])
    new = int(rng.choice(choices))
    out[p], old = new, out[p]
    return out, f"position {p}: token {old} -> {new}"


def target_mask(clean: np.ndarray, labels: np.ndarray, target: str | int | None, task: str) -> np.ndarray:
    """[N, L] bool: the positions the metric reads. ``"blank"`` (puzzles: every labelled blank cell),
    ``"last"`` (LMs: the last position), an int position, or None (puzzles: blank, LMs: last)."""
    N, L = clean.shape
    labelled = labels != -100
    if target is None:
        target = "last" if task == "text" else "blank"
    if target == "blank":
        if task == "text":
            raise CausalError("--target blank is for puzzles; language models take a position or 'last'")
        from tasks.sudoku.grid import BLANK_TOKEN

        mask = labelled & (clean == BLANK_TOKEN) if task == "sudoku" else labelled
        mask = mask if mask.any() else labelled
    elif target == "last":
        mask = np.zeros((N, L), dtype=bool)
        mask[:, L - 1] = True
    else:
        try:
            p = int(target)
        except (TypeError, ValueError):
            raise CausalError(f"target must be 'blank', 'last' or a position, got {target!r}") from None
        if not 0 <= p < L:
            raise CausalError(f"target position {p} is outside the grid/input (0..{L - 1})")
        mask = np.zeros((N, L), dtype=bool)
        mask[:, p] = True
    if not (mask & labelled).any(axis=1).all():
        bad = int(np.flatnonzero(~(mask & labelled).any(axis=1))[0])
        raise CausalError(f"pair {bad}: the target has no labelled position (give labels or another --target)")
    return mask & labelled


def make_pairs(
    clean: np.ndarray,
    labels: np.ndarray | None,
    kind: str,
    task: str,
    target: str | int | None = None,
    seed: int = 0,
    corrupt: np.ndarray | None = None,
    vocab_size: int | None = None,
    cell: int | None = None,
) -> PairSet:
    """Pairs for ``clean`` [N, L] tokens. ``kind`` is a built-in corruption or ``"user"`` (``corrupt`` given);
    ``labels`` are the clean answers (the metric needs them: a clear error when absent)."""
    clean = np.asarray(clean).astype(np.int64)
    if clean.ndim != 2 or clean.shape[0] == 0:
        raise CausalError(f"clean inputs must be a non-empty [N, L] token array, got shape {list(clean.shape)}")
    if labels is None:
        raise CausalError("the metric needs the clean answers: give labels (puzzles are labelled by the solver)")
    labels = np.asarray(labels).astype(np.int64)
    if labels.shape != clean.shape:
        raise CausalError(f"labels have shape {list(labels.shape)}, the inputs {list(clean.shape)}")
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    if kind == "user":
        if corrupt is None:
            raise CausalError("user pairs need the corrupted inputs")
        bad = np.asarray(corrupt).astype(np.int64)
        if bad.shape != clean.shape:
            raise CausalError(f"corrupted inputs have shape {list(bad.shape)}, the clean ones {list(clean.shape)}")
        notes = ["user-supplied"] * len(clean)
    elif kind in SUDOKU_ONLY:
        if task != "sudoku":
            raise CausalError(f"corruption {kind!r} is for Sudoku; use 'swap' or user pairs for {task}")
        fn = change_given if kind == "change_given" else blank_given
        rows = [fn(row, rng, cell) for row in clean]
        bad, notes = np.stack([r[0] for r in rows]), [r[1] for r in rows]
    elif kind == "swap":
        if len(clean) < 2:
            raise CausalError("corruption 'swap' needs at least two puzzles (each is paired with the next)")
        bad = np.roll(clean, -1, axis=0)
        notes = [f"puzzle {(i + 1) % len(clean)}" for i in range(len(clean))]
    elif kind == "substitute":
        if vocab_size is None:
            raise CausalError("token substitution needs the vocabulary size")
        rows = [substitute(row, rng, vocab_size, cell) for row in clean]
        bad, notes = np.stack([r[0] for r in rows]), [r[1] for r in rows]
    else:
        raise CausalError(f"unknown corruption {kind!r} (one of {', '.join(CORRUPTIONS)}, or user pairs)")
    same = np.flatnonzero((bad == clean).all(axis=1))
    if same.size:
        raise CausalError(f"pair {int(same[0])}: the corruption leaves the input unchanged")
    return PairSet(clean, bad, labels, target_mask(clean, labels, target, task), kind, notes)


__all__ = ["CORRUPTIONS", "PairSet", "make_pairs", "change_given", "blank_given", "substitute", "target_mask"]
