"""ARC augmentations: one of the 8 dihedral symmetries times a permutation of colours 1..9 (black stays black).

``ArcTransform`` has an exact inverse for mapping predictions back; augmented puzzles are named
``taskid|||t3_0213456789``. Training examples can additionally be translated on the canvas (``random_offset``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tasks.arc.grid import CANVAS, NUM_COLOURS, ArcTaskError, Pair
from tasks.arc.task import ArcTask
from tasks.dihedral import (
    NUM_DIHEDRAL,
    dihedral_transform,
    inverse_dihedral_transform,
    inverse_id,
)

AUG_SEPARATOR = "|||"


def _colours(grid: np.ndarray) -> np.ndarray:
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() >= NUM_COLOURS)):
        raise ArcTaskError(
            f"ARC transforms act on 2-D integer grids of colours 0..9, got {arr.dtype} shape {arr.shape}"
        )
    return arr


@dataclass(frozen=True)
class ArcTransform:
    """A dihedral symmetry (0..7) combined with a colour permutation that keeps black (0) fixed.

    ``colour_perm[c]`` is the new colour of colour ``c``. ``apply`` recolours
    then rotates/reflects; ``apply_inverse`` undoes it exactly.
    """

    dihedral_id: int = 0
    colour_perm: tuple[int, ...] = field(default=tuple(range(NUM_COLOURS)))

    def __post_init__(self) -> None:
        if isinstance(self.dihedral_id, bool) or not 0 <= int(self.dihedral_id) < NUM_DIHEDRAL:
            raise ArcTaskError(f"dihedral_id must be in 0..7, got {self.dihedral_id!r}")
        perm = tuple(int(c) for c in self.colour_perm)
        if sorted(perm) != list(range(NUM_COLOURS)):
            raise ArcTaskError(f"colour_perm must be a permutation of 0..9, got {perm}")
        if perm[0] != 0:
            raise ArcTaskError(f"colour_perm must keep black fixed (colour_perm[0] == 0), got {perm[0]}")
        object.__setattr__(self, "dihedral_id", int(self.dihedral_id))
        object.__setattr__(self, "colour_perm", perm)

    @classmethod
    def identity(cls) -> ArcTransform:
        return cls()

    @classmethod
    def random(cls, rng: np.random.Generator) -> ArcTransform:
        """A uniform draw from the 8 x 9! augmentations."""
        return cls(int(rng.integers(NUM_DIHEDRAL)), (0, *(int(c) for c in rng.permutation(np.arange(1, NUM_COLOURS)))))

    @property
    def is_identity(self) -> bool:
        return self.dihedral_id == 0 and self.colour_perm == tuple(range(NUM_COLOURS))

    def apply(self, grid: np.ndarray) -> np.ndarray:
        return dihedral_transform(np.asarray(self.colour_perm, np.uint8)[_colours(grid)], self.dihedral_id)

    def apply_inverse(self, grid: np.ndarray) -> np.ndarray:
        inv = np.asarray(self.inverse().colour_perm, np.uint8)
        return inv[inverse_dihedral_transform(_colours(grid), self.dihedral_id)]

    def inverse(self) -> ArcTransform:
        inv = [0] * NUM_COLOURS
        for c, new in enumerate(self.colour_perm):
            inv[new] = c
        return ArcTransform(inverse_id(self.dihedral_id), tuple(inv))

    @property
    def name(self) -> str:
        """Compact name, e.g. ``t3_0213456789`` (symmetry 3, then the permutation's images of 0..9)."""
        return f"t{self.dihedral_id}_{''.join(str(c) for c in self.colour_perm)}"

    @classmethod
    def from_name(cls, name: str) -> ArcTransform:
        parts = name.split("_")
        if len(parts) != 2 or not parts[0].startswith("t") or not parts[0][1:].isdigit() or not parts[1].isdigit():
            raise ArcTaskError(f"bad ARC augmentation name {name!r}, expected like 't3_0213456789'")
        return cls(int(parts[0][1:]), tuple(int(c) for c in parts[1]))


def puzzle_name(task_id: str, transform: ArcTransform) -> str:
    """Identifier name of an (augmented) task: ``taskid`` or ``taskid|||t3_0213456789``."""
    return task_id if transform.is_identity else f"{task_id}{AUG_SEPARATOR}{transform.name}"


def parse_puzzle_name(name: str) -> tuple[str, ArcTransform]:
    """Inverse of ``puzzle_name``: the task id and the transform to undo on predictions."""
    task_id, sep, aug = name.partition(AUG_SEPARATOR)
    return task_id, (ArcTransform.from_name(aug) if sep else ArcTransform.identity())


def random_offset(rng: np.random.Generator, shapes: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """A top-left offset at which every grid of ``shapes`` fits on the canvas (uniform per axis)."""
    shapes = list(shapes)
    h = max(s[0] for s in shapes)
    w = max(s[1] for s in shapes)
    return int(rng.integers(CANVAS - h + 1)), int(rng.integers(CANVAS - w + 1))


def _pairs_hash(pairs: Sequence[Pair]) -> str:
    digest = hashlib.sha256()
    for grid in (g for pair in pairs for g in pair if g is not None):
        digest.update(np.asarray(grid.shape, np.int64).tobytes())
        digest.update(np.ascontiguousarray(grid).tobytes())
    return digest.hexdigest()


def task_augmentations(task: ArcTask, n_aug: int, rng: np.random.Generator) -> list[ArcTransform]:
    """Identity plus up to ``n_aug`` random transforms giving pairwise distinct versions of ``task``.

    A transform that leaves every grid of the task as another version already
    has it (e.g. a symmetric task under a reflection) is redrawn, up to
    ``5 * n_aug`` draws; symmetric or low-colour tasks may end with fewer.
    """
    pairs = task.train + task.test
    transforms = [ArcTransform.identity()]
    seen = {_pairs_hash(pairs)}
    for _ in range(5 * n_aug):
        if len(transforms) > n_aug:
            break
        t = ArcTransform.random(rng)
        h = _pairs_hash([(t.apply(a), None if b is None else t.apply(b)) for a, b in pairs])
        if h not in seen:
            seen.add(h)
            transforms.append(t)
    return transforms


__all__ = ["AUG_SEPARATOR", "ArcTransform", "puzzle_name", "parse_puzzle_name", "random_offset", "task_augmentations"]
