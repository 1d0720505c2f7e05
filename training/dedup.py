"""``eval`` on an honest held-out set: Sudoku puzzles whose solution grid equals a training grid up to symmetry
(digit relabelling, transposition, band/stack and row/column permutations) are dropped before scoring, and the
result says how many (:mod:`tasks.sudoku.heldout`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .data import PuzzleArrays, cache_root


def known_train_file(task: dict[str, Any]) -> Optional[Path]:
    """The checkpoint's training puzzle file (``task.data.source``) when it is a Sudoku file present here."""
    data = task.get("data")
    src = data.get("source") if isinstance(data, dict) and data.get("generate") == "sudoku" else None
    if isinstance(src, str) and src not in ("", "generate"):
        p = Path(src)
        if p.is_file() and not p.is_symlink():
            return p
    return None


def _subset(split: PuzzleArrays, keep: np.ndarray) -> PuzzleArrays:
    """The examples ``keep`` of a one-example-per-puzzle split."""
    n = int(keep.size)
    return PuzzleArrays(inputs=np.asarray(split.inputs[keep]), labels=np.asarray(split.labels[keep]),
                        puzzle_identifiers=np.zeros(n, dtype=np.int64), puzzle_indices=np.arange(n + 1),
                        group_indices=np.arange(n + 1), meta=split.meta, ignore_label_id=split.ignore_label_id)


def dedup_split(split: PuzzleArrays, n: int, train_file: Path, progress: bool = False
                ) -> tuple[PuzzleArrays, dict[str, Any]]:
    """The first ``n`` (0 = all) examples of ``split`` less those equivalent to a training puzzle of
    ``train_file``, and ``{"train_set", "considered", "dropped", "dropped_indices"}``."""
    from tasks.sudoku.grid import decode_tokens
    from tasks.sudoku.heldout import held_out_mask, training_keys

    total = split.num_examples if not n else min(n, split.num_examples)
    sols = decode_tokens(np.asarray(split.labels[:total]).astype(np.int64))
    size = sols.shape[-1]
    train = training_keys(train_file, size, cache_dir=cache_root() / "canonical", progress=progress)
    keep = held_out_mask(sols, train)
    idx = np.flatnonzero(keep)
    if not len(idx):
        raise ValueError(f"every one of the {total} evaluation puzzles is equivalent to a training puzzle of "
                         f"{train_file}; nothing is left to score")
    info = {"train_set": str(train_file), "considered": total, "dropped": int(total - len(idx)),
            "dropped_indices": [int(i) for i in np.flatnonzero(~keep)]}
    return _subset(split, idx), info


__all__ = ["known_train_file", "dedup_split"]
