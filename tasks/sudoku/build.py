"""Build a Sudoku train/test dataset in the HRM/TRM reference layout.

Train: every puzzle is one group holding the original followed by ``n_aug``
randomly transformed copies (:class:`~tasks.sudoku.augment.SudokuTransform`),
each its own puzzle with one example. With ``data_mixing`` (Augmented-HRM) every
training example is followed by an easier twin in the same group: ``k`` of its
blanks, ``k`` uniform in ``[1, blanks - 1]``, filled from the solution (a puzzle
with fewer than 2 blanks gets an identical twin). Test: un-augmented, one group per
puzzle; drawn from a file, it leaves out the puzzles whose solution grid equals a training grid up to
symmetry (:mod:`tasks.sudoku.canonical`; counted in ``meta.build.test_dropped_equivalent``). All cells are supervised (labels = encoded solution); one puzzle identifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from tqdm import tqdm

from common.io import atomic_write_json
from tasks.puzzle_dataset import write_puzzle_split
from tasks.sudoku.grid import PuzzleFormatError, PuzzleRecord, box_size, encode_grid, iter_puzzle_file
from tasks.sudoku.augment import SudokuTransform
from tasks.sudoku.generate import default_blanks, generate
from tasks.sudoku.heldout import held_out_mask, keys_of
from tasks.sudoku.solver import solve


def easier_twin(puzzle: np.ndarray, solution: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fill ``k ~ U[1, blanks-1]`` random blanks of ``puzzle`` from ``solution`` (Augmented-HRM data mixing)."""
    twin = puzzle.copy()
    blanks = np.flatnonzero(puzzle.reshape(-1) == 0)
    if len(blanks) < 2:
        return twin
    k = int(rng.integers(1, len(blanks)))
    chosen = rng.choice(blanks, size=k, replace=False)
    flat = twin.reshape(-1)
    flat[chosen] = solution.reshape(-1)[chosen]
    return twin


def _sample_file(
    path: Path, k: int, rng: np.random.Generator, size: int,
    min_blanks: Optional[int], max_blanks: Optional[int], min_guesses: int, progress: bool,
) -> list[PuzzleRecord]:
    """Reservoir-sample ``k`` records passing the filters (one streaming pass, O(k) memory)."""
    chosen: list[PuzzleRecord] = []
    seen = 0
    for rec in tqdm(iter_puzzle_file(path, size=size), desc=f"read {path.name}", unit="puzzle", disable=not progress):
        blanks = int((rec.puzzle == 0).sum())
        if (min_blanks is not None and blanks < min_blanks) or (max_blanks is not None and blanks > max_blanks):
            continue
        if min_guesses > 0:
            result = solve(rec.puzzle)
            if result.guesses < min_guesses:
                continue
        seen += 1
        if len(chosen) < k:
            chosen.append(rec)
        else:
            j = int(rng.integers(seen))
            if j < k:
                chosen[j] = rec
    if seen < k:
        raise PuzzleFormatError(f"{path}: only {seen} puzzles pass the filters, need {k} (n_train + n_test)")
    order = rng.permutation(len(chosen))
    return [chosen[i] for i in order]


def _label(rec: PuzzleRecord) -> PuzzleRecord:
    """Attach the unique solution (solving when the file gave none)."""
    if rec.solution is not None:
        return rec
    result = solve(rec.puzzle)
    if result.n_solutions != 1:
        what = "no solution" if result.n_solutions == 0 else "more than one solution"
        raise PuzzleFormatError(f"{rec.source}: puzzle has {what}; cannot label it")
    rating = float(result.guesses) if rec.rating is None else rec.rating
    return PuzzleRecord(rec.puzzle, result.solution, rating, rec.source)


def _drop_equivalent(train: list[PuzzleRecord], test: list[PuzzleRecord], progress: bool
                     ) -> tuple[list[PuzzleRecord], int]:
    """``test`` less the puzzles whose solution grid equals a training grid up to symmetry, and how many."""
    train_keys = set(keys_of(np.stack([r.solution for r in train]), progress, desc="canonical forms (train)"))
    keep = held_out_mask(np.stack([r.solution for r in test]), train_keys)
    return [r for r, k in zip(test, keep) if k], int((~keep).sum())


def _train_grids(
    train: list[PuzzleRecord], n_aug: int, data_mixing: bool, size: int,
    aug_rng: np.random.Generator, mix_rng: np.random.Generator, progress: bool,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Puzzles and solutions ``int8 [N, S, S]`` in group order, and the group sizes (preallocated)."""
    per_group = (1 + n_aug) * (2 if data_mixing else 1)
    puzzles = np.empty((len(train) * per_group, size, size), dtype=np.int8)
    solutions = np.empty_like(puzzles)
    row = 0
    for rec in tqdm(train, desc="augment", unit="puzzle", disable=not progress or n_aug == 0):
        pair = np.stack([rec.puzzle, rec.solution])
        for k in range(1 + n_aug):
            p, s = pair if k == 0 else SudokuTransform.random(aug_rng, size).apply(pair)
            puzzles[row], solutions[row] = p, s
            row += 1
            if data_mixing:
                puzzles[row], solutions[row] = easier_twin(p, s, mix_rng), s
                row += 1
    return puzzles, solutions, [per_group] * len(train)


def _write_split(directory: Path, puzzles: np.ndarray, solutions: np.ndarray, group_sizes: list[int],
                 meta: dict[str, Any]) -> dict[str, int]:
    n = len(puzzles)
    write_puzzle_split(
        directory, encode_grid(puzzles), encode_grid(solutions),
        puzzle_ids=np.zeros(n, dtype=np.int32),
        puzzle_indices=np.arange(n + 1, dtype=np.int32),
        group_indices=np.concatenate([[0], np.cumsum(group_sizes)]).astype(np.int32),
        meta=meta, identifiers=["<blank>"],
    )
    return {"examples": n, "puzzles": n, "groups": len(group_sizes)}


def build_sudoku_dataset(
    out_dir: "str | Path",
    source: "str | Path" = "generate",
    n_train: int = 1000,
    n_test: int = 200,
    n_aug: int = 0,
    seed: int = 0,
    size: int = 9,
    min_blanks: Optional[int] = None,
    max_blanks: Optional[int] = None,
    min_guesses: int = 0,
    data_mixing: bool = False,
    progress: bool = True,
    workers: int = 0,
) -> dict[str, dict[str, int]]:
    """Write ``<out_dir>/train`` and ``<out_dir>/test``; returns example/puzzle/group counts per split.

    ``source``: ``"generate"`` (unique puzzles from :func:`generate` with the blank
    and difficulty targets) or a puzzle file (``.sdm``/``.txt``/Sudoku-Extreme
    ``.csv``) from which ``n_train + n_test`` puzzles passing the filters are drawn
    at random; puzzles without a solution are solved and must be unique.
    ``workers`` generator processes (0 = one per CPU) share the generation; the
    dataset does not depend on their number.
    """
    box_size(size)
    for name, value in (("n_train", n_train), ("n_test", n_test), ("n_aug", n_aug)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if n_train + n_test == 0:
        raise ValueError("n_train + n_test must be > 0")
    out = Path(out_dir)
    streams = np.random.SeedSequence(seed).spawn(3)
    sample_rng, aug_rng, mix_rng = (np.random.default_rng(s) for s in streams)
    total = n_train + n_test
    if str(source) == "generate":
        lo, hi = default_blanks(size)
        min_blanks = (lo if max_blanks is None else min(lo, max_blanks)) if min_blanks is None else min_blanks
        max_blanks = max(hi, min_blanks) if max_blanks is None else max_blanks
        records = generate(total, size=size, min_blanks=min_blanks, max_blanks=max_blanks,
                           min_guesses=min_guesses, seed=seed, progress=progress, workers=workers)
    else:
        records = _sample_file(Path(source), total, sample_rng, size, min_blanks, max_blanks, min_guesses, progress)
        records = [_label(r) for r in tqdm(records, desc="label", unit="puzzle", disable=not progress)]
    train, test = records[:n_train], records[n_train:]
    dropped = 0
    if str(source) != "generate" and train and test and size <= 9:  # honest test split (file sources repeat grids)
        test, dropped = _drop_equivalent(train, test, progress)

    if train:
        train_grids = _train_grids(train, n_aug, data_mixing, size, aug_rng, mix_rng, progress)
    meta: dict[str, Any] = {
        "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0,
        "vocab_size": size + 2, "seq_len": size * size, "num_puzzle_identifiers": 1,
        "mean_puzzle_examples": 1.0, "sets": ["all"], "task": "sudoku", "grid_size": size,
        "build": {
            "source": str(source), "seed": seed, "n_aug": n_aug, "data_mixing": data_mixing,
            "min_blanks": min_blanks, "max_blanks": max_blanks, "min_guesses": min_guesses,
            "test_dropped_equivalent": dropped,
        },
    }
    summary = {}
    if train:
        summary["train"] = _write_split(out / "train", *train_grids, meta)
    if test:
        test_puzzles = np.stack([r.puzzle for r in test])
        test_solutions = np.stack([r.solution for r in test])
        summary["test"] = _write_split(out / "test", test_puzzles, test_solutions, [1] * len(test), meta)
    atomic_write_json(out / "identifiers.json", ["<blank>"])  # where the reference builders put it
    return summary
