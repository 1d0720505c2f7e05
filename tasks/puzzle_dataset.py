"""Puzzle dataset splits in the HRM/TRM reference layout: write atomically, read memory-mapped.

One split directory holds::

    dataset.json                  pad_id, ignore_label_id, blank_identifier_id, vocab_size, seq_len,
                                  num_puzzle_identifiers, total_groups, mean_puzzle_examples, sets
                                  (+ our own fields, e.g. "task": "sudoku", "grid_size": 9)
    all__inputs.npy               uint8 [N, seq_len]   token ids
    all__labels.npy               uint8 [N, seq_len]
    all__puzzle_identifiers.npy   int32 [P]            one id per puzzle
    all__puzzle_indices.npy       int32 [P + 1]        puzzle p = examples [pi[p], pi[p+1])
    all__group_indices.npy        int32 [G + 1]        group g = puzzles [gi[g], gi[g+1])
    identifiers.json              names of puzzle ids, index 0 "<blank>"

The reference builders put ``identifiers.json`` beside the split directories;
:func:`read_puzzle_split` looks in both places, so splits built by the reference
repositories load unchanged (``task`` is then None). Sudoku, maze and ARC builders
all write through :func:`write_puzzle_split`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from common.io import read_json, replace_dir

FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
META_KEYS = (
    "pad_id", "ignore_label_id", "blank_identifier_id", "vocab_size", "seq_len",
    "num_puzzle_identifiers", "total_groups", "mean_puzzle_examples", "sets",
)


class PuzzleDatasetError(ValueError):
    """A dataset split that cannot be used; the message names the file and the problem."""


@dataclass
class PuzzleSplit:
    """One split read from disk; ``inputs``/``labels`` are read-only memory maps."""

    path: Path
    meta: dict[str, Any]
    set_name: str
    inputs: np.ndarray
    labels: np.ndarray
    puzzle_identifiers: np.ndarray
    puzzle_indices: np.ndarray
    group_indices: np.ndarray
    identifiers: Optional[list[str]] = None

    @property
    def task(self) -> Optional[str]:
        """Our ``task`` field ("sudoku", "maze", "arc"); None for reference-built splits."""
        return self.meta.get("task")

    @property
    def seq_len(self) -> int:
        return int(self.meta["seq_len"])

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def n_examples(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def n_puzzles(self) -> int:
        return int(len(self.puzzle_indices) - 1)

    @property
    def n_groups(self) -> int:
        return int(len(self.group_indices) - 1)

    def puzzle_examples(self, puzzle: int) -> range:
        """Example rows of puzzle ``puzzle``."""
        return range(int(self.puzzle_indices[puzzle]), int(self.puzzle_indices[puzzle + 1]))

    def group_puzzles(self, group: int) -> range:
        """Puzzle numbers of group ``group`` (an original puzzle and its augmented copies)."""
        return range(int(self.group_indices[group]), int(self.group_indices[group + 1]))

    def group_examples(self, group: int) -> range:
        """Example rows of every puzzle in group ``group``."""
        p = self.group_puzzles(group)
        return range(int(self.puzzle_indices[p.start]), int(self.puzzle_indices[p.stop]))


def _offsets(arr: np.ndarray, end: int, name: str, counted: str, where: str) -> None:
    if arr.ndim != 1 or len(arr) < 1:
        raise PuzzleDatasetError(f"{where}: {name} must be a non-empty 1-D offset array, got shape {tuple(arr.shape)}")
    if arr.dtype.kind not in "iu":
        raise PuzzleDatasetError(f"{where}: {name} must be integers, got dtype {arr.dtype}")
    if int(arr[0]) != 0:
        raise PuzzleDatasetError(f"{where}: {name} must start at 0, got {int(arr[0])}")
    if int(arr[-1]) != end:
        raise PuzzleDatasetError(f"{where}: {name} must end at {end} ({counted}), got {int(arr[-1])}")
    steps = np.diff(arr.astype(np.int64))
    if (steps <= 0).any():
        k = int(np.argmax(steps <= 0))
        raise PuzzleDatasetError(
            f"{where}: {name} must be strictly increasing; entry {k} ({int(arr[k])}) -> {k + 1} ({int(arr[k + 1])})"
        )


def _validate(meta: dict[str, Any], arrays: dict[str, np.ndarray], where: str, check_values: bool = True) -> None:
    """Shared shape/dtype/offset/vocabulary checks for the writer and the reader."""
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise PuzzleDatasetError(f"{where}: dataset.json lacks {', '.join(missing)}")
    inputs, labels = arrays["inputs"], arrays["labels"]
    for name, arr in (("inputs", inputs), ("labels", labels)):
        if arr.ndim != 2:
            raise PuzzleDatasetError(f"{where}: {name} must be 2-D [N, seq_len], got shape {tuple(arr.shape)}")
        if arr.dtype != np.uint8:
            raise PuzzleDatasetError(f"{where}: {name} must be uint8, got {arr.dtype}")
    if labels.shape != inputs.shape:
        raise PuzzleDatasetError(f"{where}: labels shape {tuple(labels.shape)} != inputs shape {tuple(inputs.shape)}")
    if inputs.shape[1] != int(meta["seq_len"]):
        raise PuzzleDatasetError(
            f"{where}: seq_len {meta['seq_len']} in dataset.json but inputs have {inputs.shape[1]} columns"
        )
    vocab = int(meta["vocab_size"])
    if check_values and inputs.size:
        for name, arr in (("inputs", inputs), ("labels", labels)):
            top = int(arr.max())
            if top >= vocab:
                raise PuzzleDatasetError(f"{where}: {name} hold token {top} >= vocab_size {vocab}")
    n_examples = inputs.shape[0]
    pidx, gidx, ids = arrays["puzzle_indices"], arrays["group_indices"], arrays["puzzle_identifiers"]
    _offsets(pidx, n_examples, "puzzle_indices", "the number of examples", where)
    n_puzzles = len(pidx) - 1
    _offsets(gidx, n_puzzles, "group_indices", "the number of puzzles", where)
    if ids.ndim != 1 or len(ids) != n_puzzles:
        raise PuzzleDatasetError(
            f"{where}: puzzle_identifiers must have one entry per puzzle ({n_puzzles}), got shape {tuple(ids.shape)}"
        )
    if ids.dtype.kind not in "iu":
        raise PuzzleDatasetError(f"{where}: puzzle_identifiers must be integers, got dtype {ids.dtype}")
    n_ids = int(meta["num_puzzle_identifiers"])
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= n_ids):
        raise PuzzleDatasetError(
            f"{where}: puzzle_identifiers range {int(ids.min())}..{int(ids.max())} "
            f"outside 0..{n_ids - 1} (num_puzzle_identifiers)"
        )
    if int(meta["total_groups"]) != len(gidx) - 1:
        raise PuzzleDatasetError(
            f"{where}: total_groups {meta['total_groups']} but group_indices describe {len(gidx) - 1} groups"
        )


def write_puzzle_split(
    directory: "str | Path",
    inputs: np.ndarray,
    labels: np.ndarray,
    puzzle_ids: np.ndarray,
    puzzle_indices: np.ndarray,
    group_indices: np.ndarray,
    meta: dict[str, Any],
    identifiers: Optional[Sequence[str]] = None,
    set_name: str = "all",
) -> Path:
    """Validate and write one split, atomically (temporary sibling directory, then rename).

    ``meta`` needs ``vocab_size``; ``seq_len``, ``total_groups``,
    ``mean_puzzle_examples`` and ``num_puzzle_identifiers`` are filled in when
    absent (and checked when present); ``pad_id``, ``ignore_label_id`` and
    ``blank_identifier_id`` default to 0, ``sets`` to ``[set_name]``. Extra keys
    (``task``, ``grid_size``, provenance) are kept. An existing split is replaced.
    """
    directory = Path(directory)
    where = str(directory)
    if "vocab_size" not in meta:
        raise PuzzleDatasetError(f"{where}: meta must give vocab_size")
    if int(meta["vocab_size"]) > 256:
        raise PuzzleDatasetError(f"{where}: vocab_size {meta['vocab_size']} does not fit uint8 tokens")
    arrays = {}
    for name, arr in (("inputs", inputs), ("labels", labels)):
        arr = np.asarray(arr)
        if arr.dtype.kind not in "iu":
            raise PuzzleDatasetError(f"{where}: {name} must be integers, got dtype {arr.dtype}")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
            raise PuzzleDatasetError(f"{where}: {name} values {int(arr.min())}..{int(arr.max())} do not fit uint8")
        arrays[name] = np.ascontiguousarray(arr, dtype=np.uint8)
    offsets = (("puzzle_identifiers", puzzle_ids), ("puzzle_indices", puzzle_indices), ("group_indices", group_indices))
    for name, arr in offsets:
        arr = np.asarray(arr)
        if arr.dtype.kind not in "iu":
            raise PuzzleDatasetError(f"{where}: {name} must be integers, got dtype {arr.dtype}")
        if arr.size and (int(arr.max()) > np.iinfo(np.int32).max or int(arr.min()) < np.iinfo(np.int32).min):
            raise PuzzleDatasetError(f"{where}: {name} values do not fit int32")
        arrays[name] = np.ascontiguousarray(arr, dtype=np.int32)
    full = {"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "sets": [set_name]}
    full.update(meta)
    n_examples = arrays["inputs"].shape[0] if arrays["inputs"].ndim == 2 else 0
    n_puzzles = max(len(arrays["puzzle_indices"]) - 1, 0)
    full.setdefault("seq_len", int(arrays["inputs"].shape[-1]) if arrays["inputs"].ndim == 2 else 0)
    full.setdefault("total_groups", max(len(arrays["group_indices"]) - 1, 0))
    full.setdefault("mean_puzzle_examples", float(n_examples / n_puzzles) if n_puzzles else 0.0)
    if identifiers is not None:
        default_ids = len(identifiers)
    else:
        default_ids = int(arrays["puzzle_identifiers"].max()) + 1 if n_puzzles else 1
    full.setdefault("num_puzzle_identifiers", default_ids)
    if set_name not in full["sets"]:
        raise PuzzleDatasetError(f"{where}: set_name {set_name!r} not in meta sets {full['sets']}")
    _validate(full, arrays, where)
    names = list(identifiers) if identifiers is not None else ["<blank>"]

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a dataset is meant to be shared
        for name, arr in arrays.items():
            np.save(tmp / f"{set_name}__{name}.npy", arr, allow_pickle=False)
        (tmp / "dataset.json").write_text(json.dumps(full, indent=2) + "\n")
        (tmp / "identifiers.json").write_text(json.dumps(names) + "\n")
        replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _load(path: Path, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise PuzzleDatasetError(f"{path.parent}: missing {path.name} (not a puzzle dataset split?)")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PuzzleDatasetError(f"{path}: unreadable .npy file ({reason})") from None


def read_puzzle_split(
    directory: "str | Path", set_name: Optional[str] = None, check_values: bool = True
) -> PuzzleSplit:
    """Read and validate one split (ours or reference-built); inputs/labels memory-mapped read-only.

    ``set_name`` defaults to the first entry of ``sets`` in ``dataset.json``.
    ``check_values`` scans the token arrays once to check them against ``vocab_size``.
    """
    directory = Path(directory)
    where = str(directory)
    meta_path = directory / "dataset.json"
    if not meta_path.is_file():
        raise PuzzleDatasetError(f"{where}: no dataset.json (not a puzzle dataset split?)")
    meta = read_json(meta_path, PuzzleDatasetError)
    if not isinstance(meta, dict):
        raise PuzzleDatasetError(f"{meta_path}: expected a JSON object")
    sets = meta.get("sets") or ["all"]
    name = set_name if set_name is not None else sets[0]
    if name not in sets:
        raise PuzzleDatasetError(f"{where}: set {name!r} not in dataset.json sets {sets}")
    arrays = {f: _load(directory / f"{name}__{f}.npy", mmap=f in ("inputs", "labels")) for f in FIELDS}
    _validate(meta, arrays, where, check_values=check_values)
    identifiers = None
    for candidate in (directory / "identifiers.json", directory.parent / "identifiers.json"):
        if candidate.is_file():
            identifiers = read_json(candidate, PuzzleDatasetError)
            if not isinstance(identifiers, list):
                raise PuzzleDatasetError(f"{candidate}: expected a JSON list of names")
            break
    return PuzzleSplit(
        path=directory, meta=meta, set_name=name,
        inputs=arrays["inputs"], labels=arrays["labels"],
        puzzle_identifiers=arrays["puzzle_identifiers"], puzzle_indices=arrays["puzzle_indices"],
        group_indices=arrays["group_indices"], identifiers=identifiers,
    )
