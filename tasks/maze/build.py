"""Build a maze puzzle dataset in the HRM/TRM reference layout (train and test splits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.io import atomic_write_json
from tasks.dihedral import NUM_DIHEDRAL
from tasks.maze.augment import augment_maze
from tasks.maze.generate import default_min_path_length, generate_mazes
from tasks.maze.grid import PAD, VOCAB_SIZE, MazeError, decode, encode
from tasks.puzzle_dataset import write_puzzle_split


def build_maze_dataset(
    out_dir: str | Path,
    n_train: int = 1000,
    n_test: int = 1000,
    size: int = 30,
    min_path_length: int | None = None,
    n_aug: int = 0,
    seed: int = 0,
    loop_fraction: float = 0.05,
    unique_path: bool = True,
) -> Path:
    """Write a maze puzzle dataset (reference layout) under ``out_dir/{train,test}``.

    Every maze is one puzzle with one example and puzzle identifier 0 (the
    reference maze data has no per-puzzle identities). With ``n_aug`` in 0..7,
    each training maze also gets ``n_aug`` distinct non-identity dihedral
    copies in its group; the test split is never augmented. Train and test
    mazes are distinct.
    """
    if n_train < 1 or n_test < 1:
        raise MazeError(f"n_train and n_test must be >= 1, got {n_train} and {n_test}")
    if not 0 <= n_aug < NUM_DIHEDRAL:
        raise MazeError(f"n_aug must be in 0..7 (dihedral copies per maze), got {n_aug}")
    if min_path_length is None:
        min_path_length = default_min_path_length(size)
    out_dir = Path(out_dir)
    seen: set[bytes] = set()
    seeds = np.random.SeedSequence(seed).spawn(3)
    splits = {
        "train": generate_mazes(n_train, size, seeds[0], min_path_length, loop_fraction, unique_path, seen),
        "test": generate_mazes(n_test, size, seeds[1], min_path_length, loop_fraction, unique_path, seen),
    }
    aug_rng = np.random.default_rng(seeds[2])
    for split, (inputs, labels) in splits.items():
        k = n_aug if split == "train" else 0
        xs, ys = [], []
        for x, y in zip(inputs, labels):
            extra = aug_rng.choice(np.arange(1, NUM_DIHEDRAL), size=k, replace=False) if k else []
            tids = [0] + sorted(int(t) for t in extra)
            for t in tids:
                px, py = augment_maze(decode(x), decode(y), t)
                xs.append(encode(px))
                ys.append(encode(py))
        n_puzzles = len(xs)
        group_size = k + 1
        meta = {
            "task": "maze",
            "grid_size": int(size),
            "vocab_size": VOCAB_SIZE,
            "seq_len": int(size * size),
            "pad_id": PAD,
            "ignore_label_id": 0,
            "blank_identifier_id": 0,
            "num_puzzle_identifiers": 1,
            "min_path_length": int(min_path_length),
            "loop_fraction": float(loop_fraction),
            "unique_path": bool(unique_path),
            "n_aug": int(k),
            "seed": int(seed),
        }
        write_puzzle_split(
            out_dir / split,
            np.stack(xs),
            np.stack(ys),
            np.zeros(n_puzzles, dtype=np.int32),
            np.arange(n_puzzles + 1, dtype=np.int32),
            np.arange(0, n_puzzles + 1, group_size, dtype=np.int32),
            meta,
            identifiers=["<blank>"],
        )
    atomic_write_json(out_dir / "identifiers.json", ["<blank>"])  # also where the reference layout keeps it
    return out_dir


__all__ = ["build_maze_dataset"]
