"""Validity-preserving Sudoku symmetries with exact inverses.

A :class:`SudokuTransform` is one element of the Sudoku symmetry group: an
optional transpose, then a row permutation that keeps bands together (band order
+ row order inside each band), a column permutation that keeps stacks together,
then a relabelling of the digits (blank stays blank). This is the augmentation of
the HRM/TRM reference builders; every such map sends valid (puzzle, solution)
pairs to valid pairs, so "guess scaling" can solve K transformed copies and map
each answer back with :meth:`SudokuTransform.apply_inverse`.

Conventions: ``new[i, j] = old[row_perm[i], col_perm[j]]`` (after the transpose),
``row_perm[k*n + j] = band_perm[k]*n + row_perms[k][j]``, and digit ``d`` becomes
``digit_perm[d - 1]``. ``a.compose(b)`` means "apply ``a``, then ``b``".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from tasks.sudoku.grid import PuzzleFormatError, box_size


def _is_perm(p: Sequence[int], m: int) -> bool:
    return len(p) == m and sorted(p) == list(range(m))


def _inverse(p: np.ndarray) -> np.ndarray:
    inv = np.empty_like(p)
    inv[p] = np.arange(len(p))
    return inv


def _split(perm: Sequence[int], n: int, what: str) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """Full band-preserving permutation -> (band order, within-band orders); rejects others."""
    perm = [int(x) for x in perm]
    if not _is_perm(perm, n * n):
        raise ValueError(f"{what} permutation must be a permutation of 0..{n * n - 1}, got {perm}")
    outer, inner = [], []
    for k in range(n):
        seg = perm[k * n:(k + 1) * n]
        block = seg[0] // n
        if any(x // n != block for x in seg):
            raise ValueError(f"{what} permutation {perm} splits a {'band' if what == 'row' else 'stack'}")
        outer.append(block)
        inner.append(tuple(x % n for x in seg))
    return tuple(outer), tuple(inner)


@dataclass(frozen=True)
class SudokuTransform:
    """Transpose?, band/row and stack/column permutations, digit relabelling (see module doc)."""

    digit_perm: tuple[int, ...]
    band_perm: tuple[int, ...]
    row_perms: tuple[tuple[int, ...], ...]
    stack_perm: tuple[int, ...]
    col_perms: tuple[tuple[int, ...], ...]
    transpose: bool = False

    def __post_init__(self) -> None:
        size = len(self.digit_perm)
        n = box_size(size)
        if sorted(self.digit_perm) != list(range(1, size + 1)):
            raise ValueError(f"digit_perm must be a permutation of 1..{size}, got {list(self.digit_perm)}")
        for name in ("band_perm", "stack_perm"):
            if not _is_perm(list(getattr(self, name)), n):
                raise ValueError(f"{name} must be a permutation of 0..{n - 1}, got {list(getattr(self, name))}")
        for name in ("row_perms", "col_perms"):
            perms = getattr(self, name)
            if len(perms) != n or not all(_is_perm(list(p), n) for p in perms):
                raise ValueError(f"{name} must be {n} permutations of 0..{n - 1}, got {perms}")

    # ----------------------------------------------------------- constructors

    @classmethod
    def from_perms(
        cls, row_perm: Sequence[int], col_perm: Sequence[int], digit_perm: Sequence[int], transpose: bool = False
    ) -> "SudokuTransform":
        """Build from full row/column permutations (must keep bands/stacks together)."""
        size = len(digit_perm)
        n = box_size(size)
        band, rows = _split(row_perm, n, "row")
        stack, cols = _split(col_perm, n, "column")
        return cls(tuple(int(d) for d in digit_perm), band, rows, stack, cols, bool(transpose))

    @classmethod
    def identity(cls, size: int = 9) -> "SudokuTransform":
        n = box_size(size)
        ident = tuple(range(n))
        return cls(tuple(range(1, size + 1)), ident, (ident,) * n, ident, (ident,) * n, False)

    @classmethod
    def random(cls, rng: np.random.Generator, size: int = 9, transpose: Optional[bool] = None) -> "SudokuTransform":
        """A uniformly random group element (transpose with probability 1/2 unless given)."""
        n = box_size(size)
        flip = bool(rng.random() < 0.5) if transpose is None else bool(transpose)
        band = tuple(rng.permutation(n).tolist())
        rows = tuple(tuple(rng.permutation(n).tolist()) for _ in range(n))
        stack = tuple(rng.permutation(n).tolist())
        cols = tuple(tuple(rng.permutation(n).tolist()) for _ in range(n))
        digits = tuple((rng.permutation(size) + 1).tolist())
        return cls(digits, band, rows, stack, cols, flip)

    @classmethod
    def cyclic_shift(cls, shift: int, size: int = 9) -> "SudokuTransform":
        """Augmented-HRM relabelling: digit ``d -> (d - 1 + shift) mod S + 1``, cells unmoved."""
        ident = cls.identity(size)
        digits = tuple((d - 1 + shift) % size + 1 for d in range(1, size + 1))
        return cls(digits, ident.band_perm, ident.row_perms, ident.stack_perm, ident.col_perms, False)

    # ----------------------------------------------------------- views

    @property
    def size(self) -> int:
        return len(self.digit_perm)

    @property
    def row_perm(self) -> np.ndarray:
        """Full row permutation: new row ``i`` takes old row ``row_perm[i]``."""
        n = len(self.band_perm)
        return np.array([self.band_perm[k] * n + self.row_perms[k][j] for k in range(n) for j in range(n)])

    @property
    def col_perm(self) -> np.ndarray:
        n = len(self.stack_perm)
        return np.array([self.stack_perm[k] * n + self.col_perms[k][j] for k in range(n) for j in range(n)])

    @property
    def digit_map(self) -> np.ndarray:
        """Lookup table ``[S+1]``: value ``v`` becomes ``digit_map[v]`` (0 stays 0)."""
        return np.array((0,) + tuple(self.digit_perm))

    # ----------------------------------------------------------- algebra

    def invert(self) -> "SudokuTransform":
        """The transform undoing this one: ``t.invert().apply(t.apply(g)) == g``."""
        rows, cols = _inverse(self.row_perm), _inverse(self.col_perm)
        digits = _inverse(np.array(self.digit_perm) - 1) + 1
        if self.transpose:  # (P_rc T)^-1 = T P_rc^-1 = P_{c^-1, r^-1} T
            rows, cols = cols, rows
        return SudokuTransform.from_perms(rows.tolist(), cols.tolist(), digits.tolist(), self.transpose)

    def compose(self, other: "SudokuTransform") -> "SudokuTransform":
        """One transform equal to applying ``self`` first and then ``other``."""
        if other.size != self.size:
            raise ValueError(f"cannot compose transforms of sizes {self.size} and {other.size}")
        ra, ca = self.row_perm, self.col_perm
        rb, cb = other.row_perm, other.col_perm
        if other.transpose:  # T P_{ra,ca} = P_{ca,ra} T
            rows, cols = ca[rb], ra[cb]
        else:
            rows, cols = ra[rb], ca[cb]
        digits = other.digit_map[self.digit_map[1:]]
        flip = self.transpose != other.transpose
        return SudokuTransform.from_perms(rows.tolist(), cols.tolist(), digits.tolist(), flip)

    # ----------------------------------------------------------- application

    def _check(self, grid: np.ndarray) -> np.ndarray:
        arr = np.asarray(grid)
        s = self.size
        if arr.ndim < 2 or arr.shape[-2:] != (s, s):
            raise PuzzleFormatError(f"expected grid(s) of shape [..., {s}, {s}], got {tuple(arr.shape)}")
        if arr.size and (arr.min() < 0 or arr.max() > s):
            raise PuzzleFormatError(f"grid values must be in 0..{s}, got {int(arr.min())}..{int(arr.max())}")
        return arr

    def _move(self, arr: np.ndarray) -> np.ndarray:
        if self.transpose:
            arr = np.swapaxes(arr, -1, -2)
        return arr[..., self.row_perm, :][..., :, self.col_perm]

    def apply(self, grid: np.ndarray) -> np.ndarray:
        """Transform grid(s) ``[..., S, S]`` with values ``0..S``; dtype kept."""
        arr = self._check(grid)
        return self.digit_map[self._move(arr)].astype(arr.dtype)

    def apply_inverse(self, grid: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply` exactly."""
        return self.invert().apply(grid)

    def apply_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """Transform encoded grids ``[..., S*S]`` (0 pad and 1 blank fixed, digit tokens relabelled)."""
        arr = np.asarray(tokens)
        s = self.size
        if arr.ndim < 1 or arr.shape[-1] != s * s:
            raise PuzzleFormatError(f"expected tokens of shape [..., {s * s}], got {tuple(arr.shape)}")
        if arr.size and (arr.min() < 0 or arr.max() > s + 1):
            raise PuzzleFormatError(f"token values must be in 0..{s + 1}, got {int(arr.min())}..{int(arr.max())}")
        table = np.concatenate([[0, 1], self.digit_map[1:] + 1])
        moved = self._move(arr.reshape(*arr.shape[:-1], s, s)).reshape(arr.shape)
        return table[moved].astype(arr.dtype)

    def apply_inverse_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply_tokens` exactly."""
        return self.invert().apply_tokens(tokens)

    # ----------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (full row/column permutations)."""
        return {
            "size": self.size,
            "transpose": self.transpose,
            "row_perm": self.row_perm.tolist(),
            "col_perm": self.col_perm.tolist(),
            "digit_perm": list(self.digit_perm),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SudokuTransform":
        try:
            return cls.from_perms(d["row_perm"], d["col_perm"], d["digit_perm"], bool(d.get("transpose", False)))
        except KeyError as exc:
            raise ValueError(f"transform dict lacks key {exc.args[0]!r}") from None


def compose(*transforms: SudokuTransform) -> SudokuTransform:
    """Apply ``transforms`` left to right as one transform."""
    if not transforms:
        raise ValueError("compose needs at least one transform")
    out = transforms[0]
    for t in transforms[1:]:
        out = out.compose(t)
    return out


def cyclic_relabellings(size: int = 9) -> list[SudokuTransform]:
    """The ``S`` cyclic digit shifts (shift 0 = identity) used by Augmented-HRM input perturbation."""
    return [SudokuTransform.cyclic_shift(k, size) for k in range(size)]


def random_transforms(rng: np.random.Generator, k: int, size: int = 9) -> list[SudokuTransform]:
    """``k`` independent random transforms (for guess scaling / augmentation)."""
    return [SudokuTransform.random(rng, size) for _ in range(k)]
