"""Datasets and deterministic batch streams.

The training data order is a pure function of (seed, epoch) for puzzles and
(seed, batch index) for text, so a resumed run sees exactly the batches an
uninterrupted one would; the only state to save is a position counter.

Puzzle epochs follow the reference sampler: every epoch visits each *group*
once in a random order, drawing one random puzzle of the group and one random
example of that puzzle. DDP ranks take interleaved shards of each epoch's
order (``order[rank::world]``, truncated to a multiple of the world size, as
``DistributedSampler`` does without padding).

``task.data`` is a dataset directory or a generator spec such as
``{generate: sudoku, n_train: 2000, n_test: 500, seed: 0}``; generated data is
built once into a cache directory keyed by the spec (``$RECURSE_INTERP_CACHE``
or ``~/.cache/recurse-interp/datasets``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from common.atomic import replace_dir, temp_dir_beside
from common.labels import IGNORE_LABEL

# generator name -> (module, builder function); each builder is ``fn(out_dir, **spec)``
GENERATORS: dict[str, tuple[str, str]] = {
    "sudoku": ("tasks.sudoku.build", "build_sudoku_dataset"),
    "maze": ("tasks.maze", "build_maze_dataset"),
    "arc": ("tasks.arc", "build_arc_dataset"),
    "text": ("tasks.text", "build_text_dataset"),
}


class DataError(ValueError):
    """A dataset that cannot be found, built or read."""


# ----- locating / generating datasets -------------------------------------------
def cache_root() -> Path:
    return Path(os.environ.get("RECURSE_INTERP_CACHE", Path.home() / ".cache" / "recurse-interp" / "datasets"))


def _builder(name: str) -> Callable[..., Any]:
    if name not in GENERATORS:
        raise DataError(f"unknown data generator {name!r} (expected one of {', '.join(GENERATORS)})")
    module, fn = GENERATORS[name]
    try:
        return getattr(importlib.import_module(module), fn)
    except (ImportError, AttributeError) as e:
        raise DataError(f"data generator {name!r} is not available ({module}.{fn}: {e})") from None


def spec_key(spec: dict[str, Any]) -> str:
    """Cache directory name for a generator spec: ``<generator>-<hash of the spec>``."""
    blob = json.dumps(spec, sort_keys=True, default=str).encode()
    return f"{spec['generate']}-{hashlib.sha256(blob).hexdigest()[:12]}"


def resolve_data(data: Any, build: bool = True, progress: bool | None = None) -> Path:
    """A dataset directory for ``task.data`` (a path, or a generator spec built into the cache).

    ``progress``: show (True) or hide (False) the builder's progress bars, when it has any; None: its default.
    """
    if isinstance(data, (str, os.PathLike)):
        p = Path(data).expanduser()
        if not p.exists():
            raise DataError(f"dataset directory not found: {p}")
        return p
    if not isinstance(data, dict) or "generate" not in data:
        raise DataError("task.data must be a dataset directory or a mapping with a 'generate' key")
    spec = dict(data)
    out = cache_root() / spec_key(spec)
    if (out / ".complete").exists() or not build:
        return out
    fn = _builder(spec.pop("generate"))
    tmp = temp_dir_beside(out)
    try:
        import inspect

        if progress is not None and "progress" in inspect.signature(fn).parameters and "progress" not in spec:
            spec["progress"] = progress
        fn(tmp, **spec)
        (tmp / ".complete").write_text(json.dumps(data, sort_keys=True, default=str))
        if out.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            replace_dir(tmp, out)
    except TypeError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"bad generator spec for {data['generate']!r}: {e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def split_dir(root: Path, split: str) -> Path:
    """``root/split`` for a dataset root, or ``root`` itself when it already is a split directory."""
    if (root / "dataset.json").exists():
        return root
    d = root / split
    if not (d / "dataset.json").exists():
        raise DataError(f"{root} holds no {split!r} split (expected {d}/dataset.json)")
    return d


# ----- puzzles ------------------------------------------------------------------
@dataclass
class PuzzleArrays:
    """One split: token arrays (possibly memory-mapped uint8) and the reference offset arrays."""

    inputs: np.ndarray  # [N, L]
    labels: np.ndarray  # [N, L]; cells equal to ``ignore_label_id`` are unsupervised
    puzzle_identifiers: np.ndarray  # [P]
    puzzle_indices: np.ndarray  # [P + 1] example offsets
    group_indices: np.ndarray  # [G + 1] puzzle offsets
    meta: dict[str, Any]
    ignore_label_id: int | None = None

    @property
    def num_groups(self) -> int:
        return len(self.group_indices) - 1

    @property
    def num_examples(self) -> int:
        return len(self.inputs)

    def example_puzzle_ids(self) -> np.ndarray:
        """[N] puzzle identifier of every example (examples of puzzle p: puzzle_indices[p]..[p+1])."""
        counts = np.diff(self.puzzle_indices)
        return np.repeat(self.puzzle_identifiers, counts)

    def get_inputs(self, idx: Any) -> np.ndarray:
        return np.asarray(self.inputs[idx]).astype(np.int64)

    def get_labels(self, idx: Any) -> np.ndarray:
        """int64 labels with unsupervised cells set to -100."""
        y = np.asarray(self.labels[idx]).astype(np.int64)
        if self.ignore_label_id is not None:
            y[y == self.ignore_label_id] = IGNORE_LABEL
        return y


def puzzle_arrays(ps: Any) -> PuzzleArrays:
    """Wrap a ``read_puzzle_split`` result (or any object with the same array attributes)."""
    meta = dict(getattr(ps, "meta", {}) or {})
    n = len(ps.inputs)
    pidx = np.asarray(getattr(ps, "puzzle_indices", np.arange(n + 1))).astype(np.int64)
    ids = getattr(ps, "puzzle_identifiers", np.zeros(len(pidx) - 1))
    gidx = getattr(ps, "group_indices", np.arange(len(pidx)))
    ignore = meta.get("ignore_label_id")
    return PuzzleArrays(
        inputs=ps.inputs,
        labels=ps.labels,
        puzzle_identifiers=np.asarray(ids).astype(np.int64),
        puzzle_indices=pidx,
        group_indices=np.asarray(gidx).astype(np.int64),
        meta=meta,
        ignore_label_id=None if ignore is None else int(ignore),
    )


def load_puzzle_split(root: str | Path, split: str) -> PuzzleArrays:
    """Read one split (``root/split`` or ``root`` itself) with the tasks' ``read_puzzle_split``."""
    from tasks.puzzle_dataset import read_puzzle_split

    return puzzle_arrays(read_puzzle_split(split_dir(Path(root), split)))


def epoch_order(data: PuzzleArrays, seed: int, epoch: int) -> np.ndarray:
    """Example indices of one epoch: groups shuffled, one random puzzle and example per group."""
    rng = np.random.default_rng([seed, epoch, 0x5EED])
    groups = rng.permutation(data.num_groups)
    g0, g1 = data.group_indices[groups], data.group_indices[groups + 1]
    puzzles = g0 + (rng.random(len(groups)) * (g1 - g0)).astype(np.int64)
    e0, e1 = data.puzzle_indices[puzzles], data.puzzle_indices[puzzles + 1]
    return e0 + (rng.random(len(groups)) * (e1 - e0)).astype(np.int64)


class PuzzleStream:
    """An endless, resumable stream of training examples for one rank.

    ``take(n)`` returns the next ``n`` example indices; ``position`` counts
    the examples this rank has drawn and fully determines the future.
    """

    def __init__(self, data: PuzzleArrays, seed: int, rank: int = 0, world: int = 1):
        if data.num_groups < world:
            raise DataError(f"the training split has {data.num_groups} groups, fewer than {world} ranks")
        self.data, self.seed, self.rank, self.world = data, seed, rank, world
        self.shard_len = data.num_groups // world
        self.position = 0
        self._epoch, self._order = -1, np.empty(0, dtype=np.int64)
        self._pids = data.example_puzzle_ids()

    def _shard(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            order = epoch_order(self.data, self.seed, epoch)
            self._order = order[: self.shard_len * self.world][self.rank :: self.world]
            self._epoch = epoch
        return self._order

    @property
    def epoch(self) -> float:
        return self.position / self.shard_len

    def take(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.int64)
        for i in range(n):
            e, k = divmod(self.position, self.shard_len)
            out[i] = self._shard(e)[k]
            self.position += 1
        return out

    def batch(self, idx: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs, labels, puzzle_ids) tensors for example indices."""
        d = self.data
        return (
            torch.from_numpy(d.get_inputs(idx)).to(device),
            torch.from_numpy(d.get_labels(idx)).to(device),
            torch.from_numpy(self._pids[idx]).to(device),
        )


# ----- text ---------------------------------------------------------------------
@dataclass
class TextArrays:
    """Memory-mapped token ids of a text dataset directory (train.bin / val.bin / meta.json)."""

    train: np.ndarray
    val: np.ndarray
    meta: dict[str, Any]

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])


def load_text_dataset(root: str | Path, seq_len: int) -> TextArrays:
    """Memory-map ``train.bin``/``val.bin`` through the tasks' ``TextDataset`` (which validates them)."""
    from tasks.text import TextDataError, TextDataset

    try:
        train = TextDataset(root, "train", block_size=seq_len)
        val = TextDataset(root, "val", block_size=seq_len)
    except TextDataError as e:
        raise DataError(str(e)) from None
    return TextArrays(train=train.tokens, val=val.tokens, meta=dict(train.meta))


def text_batch(tokens: np.ndarray, seq_len: int, batch: int, seed: int, step: int, rank: int = 0) -> np.ndarray:
    """``batch`` random windows of ``seq_len + 1`` tokens: a pure function of (seed, batch index ``step``, rank)."""
    n = len(tokens) - seq_len - 1
    if n < 1:
        raise DataError(f"the token stream ({len(tokens)} tokens) is shorter than one window of {seq_len + 1}")
    rng = np.random.default_rng([seed, step, rank, 0x7E47])
    starts = rng.integers(0, n + 1, size=batch)
    return np.stack([np.asarray(tokens[s : s + seq_len + 1], dtype=np.int64) for s in starts])


def text_eval_windows(tokens: np.ndarray, seq_len: int, n: int) -> np.ndarray:
    """Up to ``n`` consecutive non-overlapping windows of ``seq_len + 1`` tokens from the start."""
    count = min(n, (len(tokens) - 1) // seq_len)
    if count < 1:
        raise DataError(f"the validation stream ({len(tokens)} tokens) is shorter than one window of {seq_len + 1}")
    return np.stack([np.asarray(tokens[i * seq_len : i * seq_len + seq_len + 1], dtype=np.int64) for i in range(count)])
