"""Honest held-out sets: drop the held-out puzzles whose solution grid equals a training grid up to symmetry.

A training set is a puzzle file (any format :func:`~tasks.sudoku.grid.read_puzzle_file` reads; puzzles without
an answer are solved). Its canonical keys (:mod:`tasks.sudoku.canonical`) are cached in ``cache_dir`` under the
file's SHA-256, so a 50,000-puzzle training file is canonicalised once (minutes), then read in a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from common.atomic import atomic_write_text
from common.hashing import file_sha256
from common.untrusted import regular_file
from tasks.sudoku.canonical import canonical_keys, equivalent_mask
from tasks.sudoku.grid import PuzzleFormatError, iter_puzzle_file
from tasks.sudoku.solver import solve

CHUNK = 512  # grids canonicalised per call (the progress bar advances by chunks)


def solution_grids(path: "str | Path", size: int = 9, progress: bool = False) -> np.ndarray:
    """The solution grid of every puzzle of ``path`` ``int8 [N, S, S]`` (solved when the file gives none)."""
    grids = []
    for rec in tqdm(iter_puzzle_file(path, size=size), desc=f"read {Path(path).name}", unit="puzzle",
                    disable=not progress):
        sol = rec.solution
        if sol is None:
            res = solve(rec.puzzle)
            if not res.unique:
                raise PuzzleFormatError(f"{rec.source}: the training puzzle has no unique solution")
            sol = res.solution
        grids.append(np.asarray(sol, dtype=np.int8))
    if not grids:
        raise PuzzleFormatError(f"{path}: no puzzles")
    return np.stack(grids)


def keys_of(grids: np.ndarray, progress: bool = False, desc: str = "canonical forms") -> list[str]:
    """Canonical keys of ``grids`` in chunks, with a progress bar on stderr."""
    keys: list[str] = []
    with tqdm(total=len(grids), desc=desc, unit="grid", disable=not progress) as bar:
        for i in range(0, len(grids), CHUNK):
            keys += canonical_keys(grids[i:i + CHUNK])
            bar.update(len(grids[i:i + CHUNK]))
    return keys


def training_keys(path: "str | Path", size: int = 9, cache_dir: Optional[Path] = None,
                  progress: bool = False) -> set[str]:
    """The canonical keys of a training file's solution grids (cached by the file's SHA-256 in ``cache_dir``)."""
    path = regular_file(path, None, PuzzleFormatError, where=f"training set {path}")  # a FIFO would block the hash
    cached = Path(cache_dir) / f"{file_sha256(path)}.s{size}.txt" if cache_dir is not None else None
    if cached is not None and cached.is_file() and not cached.is_symlink():
        keys = cached.read_text().split()
        if keys and all(len(k) == size * size and k.isdigit() for k in keys):
            return set(keys)
    keys = keys_of(solution_grids(path, size, progress), progress, desc=f"canonical forms of {path.name}")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cached, "\n".join(keys) + "\n")
    return set(keys)


def held_out_mask(solutions: np.ndarray, train: set[str], progress: bool = False) -> np.ndarray:
    """``bool [N]``: True for the held-out solution grids that are NOT equivalent to any training grid."""
    if not len(solutions):
        return np.zeros(0, dtype=bool)
    if not progress:
        return ~equivalent_mask(solutions, train)
    return ~np.isin(keys_of(solutions, progress, desc="canonical forms of the held-out set"), list(train))


__all__ = ["solution_grids", "keys_of", "training_keys", "held_out_mask"]
