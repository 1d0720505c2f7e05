"""Build an ARC puzzle dataset in the HRM/TRM reference layout (one group per task, one puzzle per augmentation)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.io import atomic_write_json
from tasks.arc.augment import puzzle_name, random_offset, task_augmentations
from tasks.arc.grid import CANVAS, PAD, SEQ_LEN, VOCAB_SIZE, ArcTaskError, encode_grid
from tasks.arc.task import ArcTask, load_arc_tasks, select_tasks
from tasks.puzzle_dataset import write_puzzle_split


def build_arc_dataset(
    out_dir: str | Path,
    source: str | Path = "arc1",
    n_aug: int = 8,
    seed: int = 0,
    subset: int | Sequence[str] | None = None,
    translate: bool = True,
    test_pairs_to_train: Sequence[str] = (),
) -> Path:
    """Write an ARC puzzle dataset (reference layout) under ``out_dir/{train,test}``.

    Each task is a group; each augmented version of it (identity + up to
    ``n_aug``) is one puzzle with its own identifier, shared by both splits so
    a test puzzle uses the embedding learned on its demonstrations. The train
    split holds demonstration pairs (translated at random on the canvas, except
    one per puzzle, when ``translate``); the test split holds test pairs at the
    top-left. Test pairs of tasks whose collection is in ``test_pairs_to_train``
    go to the train split instead (the reference recipe uses ``("training",)``).
    """
    if n_aug < 0:
        raise ArcTaskError(f"n_aug must be >= 0, got {n_aug}")
    tasks = select_tasks(load_arc_tasks(source), subset)
    for task in tasks:
        for i, (_, out) in enumerate(task.test):
            if out is None:
                raise ArcTaskError(f"{task.origin}: test[{i}] has no 'output', so no label can be built")
    names, splits = _encode_splits(tasks, n_aug, np.random.default_rng(seed), translate, test_pairs_to_train)
    if not splits["test"]["ids"]:
        raise ArcTaskError("the test split would be empty: every task's test pairs were routed to train")
    for split, s in splits.items():
        meta = {
            "task": "arc",
            "source": str(source),
            "vocab_size": VOCAB_SIZE,
            "seq_len": SEQ_LEN,
            "pad_id": PAD,
            "ignore_label_id": 0,
            "blank_identifier_id": 0,
            "num_puzzle_identifiers": len(names),
            "grid_size": CANVAS,
            "n_aug": int(n_aug),
            "seed": int(seed),
            "translate": bool(translate and split == "train"),
            "num_tasks": len(tasks),
        }
        write_puzzle_split(
            Path(out_dir) / split,
            np.stack(s["x"]),
            np.stack(s["y"]),
            np.asarray(s["ids"], np.int32),
            np.asarray(s["pidx"], np.int32),
            np.asarray(s["gidx"], np.int32),
            meta,
            identifiers=names,
        )
    atomic_write_json(Path(out_dir) / "identifiers.json", names)  # also where the reference layout keeps it
    return Path(out_dir)


def _encode_splits(tasks: list[ArcTask], n_aug: int, rng: np.random.Generator, translate: bool,
                   test_pairs_to_train: Sequence[str]) -> tuple[list[str], dict[str, dict[str, list]]]:
    """Encode every augmented version of every task: (puzzle identifier names, per split its inputs ``x``,
    labels ``y``, puzzle ids, puzzle index ``pidx`` and group index ``gidx``)."""
    names = ["<blank>"]
    splits: dict[str, dict[str, list]] = {
        s: {"x": [], "y": [], "ids": [], "pidx": [0], "gidx": [0]} for s in ("train", "test")
    }
    for task in tasks:
        to_train = task.collection in test_pairs_to_train
        train_pairs = task.train + (task.test if to_train else ())
        test_pairs = () if to_train else task.test
        for transform in task_augmentations(task, n_aug, rng):
            names.append(puzzle_name(task.task_id, transform))
            pid = len(names) - 1
            for split, pairs in (("train", train_pairs), ("test", test_pairs)):
                if not pairs:
                    continue
                s = splits[split]
                keep = int(rng.integers(len(pairs)))  # one example per puzzle stays at the top-left
                for i, (a, b) in enumerate(pairs):
                    a, b = transform.apply(a), transform.apply(b)
                    moved = split == "train" and translate and i != keep
                    off = random_offset(rng, [a.shape, b.shape]) if moved else (0, 0)
                    s["x"].append(encode_grid(a, off))
                    s["y"].append(encode_grid(b, off))
                s["pidx"].append(len(s["x"]))
                s["ids"].append(pid)
        for s in splits.values():
            if len(s["ids"]) > s["gidx"][-1]:
                s["gidx"].append(len(s["ids"]))
    return names, splits


__all__ = ["build_arc_dataset"]
