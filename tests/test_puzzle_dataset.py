"""Generic puzzle dataset splits: write/read round trip, validation messages, reference layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tasks.puzzle_dataset import PuzzleDatasetError, read_puzzle_split, write_puzzle_split


def toy(n_groups: int = 3, per_group: int = 2, examples_per_puzzle: int = 2, seq_len: int = 6, vocab: int = 5):
    """Arrays for groups of puzzles with several examples each (the ARC shape of the layout)."""
    rng = np.random.default_rng(0)
    n_puzzles = n_groups * per_group
    n = n_puzzles * examples_per_puzzle
    return dict(
        inputs=rng.integers(0, vocab, size=(n, seq_len)).astype(np.uint8),
        labels=rng.integers(0, vocab, size=(n, seq_len)).astype(np.uint8),
        puzzle_ids=np.arange(1, n_puzzles + 1, dtype=np.int32),
        puzzle_indices=np.arange(0, n + 1, examples_per_puzzle, dtype=np.int32),
        group_indices=np.arange(0, n_puzzles + 1, per_group, dtype=np.int32),
        meta={"vocab_size": vocab, "task": "toy", "num_puzzle_identifiers": n_puzzles + 1},
    )


def write(path, d, **kw):
    return write_puzzle_split(path, d["inputs"], d["labels"], d["puzzle_ids"], d["puzzle_indices"],
                              d["group_indices"], d["meta"], **kw)


def test_round_trip(tmp_path):
    d = toy()
    names = ["<blank>"] + [f"p{k}" for k in range(1, 7)]
    write(tmp_path / "train", d, identifiers=names)
    split = read_puzzle_split(tmp_path / "train")
    assert isinstance(split.inputs, np.memmap) and isinstance(split.labels, np.memmap)
    assert not split.inputs.flags.writeable
    assert np.array_equal(split.inputs, d["inputs"]) and np.array_equal(split.labels, d["labels"])
    assert split.inputs.dtype == np.uint8 and split.puzzle_indices.dtype == np.int32
    assert np.array_equal(split.puzzle_identifiers, d["puzzle_ids"])
    assert split.task == "toy" and split.seq_len == 6 and split.vocab_size == 5
    assert (split.n_examples, split.n_puzzles, split.n_groups) == (12, 6, 3)
    assert split.meta["total_groups"] == 3 and split.meta["mean_puzzle_examples"] == 2.0
    assert split.meta["pad_id"] == 0 and split.meta["sets"] == ["all"]
    assert split.identifiers == names
    assert list(split.group_puzzles(1)) == [2, 3]
    assert list(split.puzzle_examples(3)) == [6, 7]
    assert list(split.group_examples(1)) == [4, 5, 6, 7]
    on_disk = json.loads((tmp_path / "train" / "dataset.json").read_text())
    assert on_disk["task"] == "toy"


def test_rewrite_replaces_atomically(tmp_path):
    d = toy()
    write(tmp_path / "s", d)
    d2 = toy(n_groups=1)
    write(tmp_path / "s", d2)
    assert read_puzzle_split(tmp_path / "s").n_groups == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary directories left


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d.update(puzzle_indices=d["puzzle_indices"] + 1), r"puzzle_indices must start at 0, got 1"),
        (lambda d: d.update(puzzle_indices=d["puzzle_indices"][:-1]), r"puzzle_indices must end at 12 \(the number of examples\), got 10"),
        (lambda d: d["puzzle_indices"].__setitem__(2, 1), r"puzzle_indices must be strictly increasing; entry 1 \(2\) -> 2 \(1\)"),
        (lambda d: d.update(group_indices=np.array([0, 2, 5], dtype=np.int32)), r"group_indices must end at 6 \(the number of puzzles\), got 5"),
        (lambda d: d.update(puzzle_ids=d["puzzle_ids"][:-1]), r"puzzle_identifiers must have one entry per puzzle \(6\)"),
        (lambda d: d["puzzle_ids"].__setitem__(0, 99), r"puzzle_identifiers range 2\.\.99 outside 0\.\.6"),
        (lambda d: d["inputs"].__setitem__((0, 0), 7), r"inputs hold token 7 >= vocab_size 5"),
        (lambda d: d.update(labels=d["labels"][:, :5]), r"labels shape \(12, 5\) != inputs shape \(12, 6\)"),
        (lambda d: d["meta"].update(seq_len=81), r"seq_len 81 in dataset.json but inputs have 6 columns"),
        (lambda d: d.update(inputs=d["inputs"].astype(np.float32)), r"inputs must be integers, got dtype float32"),
        (lambda d: d.update(inputs=d["inputs"].astype(np.int64) + 300), r"do not fit uint8"),
        (lambda d: d["meta"].pop("vocab_size"), r"meta must give vocab_size"),
    ],
)
def test_writer_rejects_bad_offsets_and_values(tmp_path, change, message):
    d = toy()
    change(d)
    with pytest.raises(PuzzleDatasetError, match=message):
        write(tmp_path / "bad", d)
    assert not (tmp_path / "bad").exists()


def test_reader_validates_what_is_on_disk(tmp_path):
    d = toy()
    split = tmp_path / "s"
    write(split, d)
    np.save(split / "all__group_indices.npy", np.array([0, 4, 3, 6], dtype=np.int32))
    with pytest.raises(PuzzleDatasetError, match=r"group_indices must be strictly increasing"):
        read_puzzle_split(split)
    write(split, d)
    np.save(split / "all__inputs.npy", d["inputs"].astype(np.int64))
    with pytest.raises(PuzzleDatasetError, match=r"inputs must be uint8, got int64"):
        read_puzzle_split(split)
    write(split, d)
    (split / "all__labels.npy").write_bytes(b"not a numpy file")
    with pytest.raises(PuzzleDatasetError, match=r"all__labels\.npy: unreadable \.npy file"):
        read_puzzle_split(split)
    write(split, d)
    (split / "all__puzzle_indices.npy").unlink()
    with pytest.raises(PuzzleDatasetError, match=r"missing all__puzzle_indices\.npy"):
        read_puzzle_split(split)
    write(split, d)
    meta = json.loads((split / "dataset.json").read_text())
    meta["total_groups"] = 5
    (split / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(PuzzleDatasetError, match=r"total_groups 5 but group_indices describe 3 groups"):
        read_puzzle_split(split)
    (split / "dataset.json").write_text("{")
    with pytest.raises(PuzzleDatasetError, match="not valid JSON"):
        read_puzzle_split(split)
    with pytest.raises(PuzzleDatasetError, match="no dataset.json"):
        read_puzzle_split(tmp_path / "nowhere")
    # object arrays are never unpickled
    write(split, d)
    np.save(split / "all__puzzle_identifiers.npy", np.array([{"x": 1}] * 6, dtype=object), allow_pickle=True)
    with pytest.raises(PuzzleDatasetError, match="unreadable"):
        read_puzzle_split(split)


def test_reads_reference_built_layout(tmp_path):
    """A split as the reference builders write it: no task field, identifiers.json beside the split."""
    root = tmp_path / "sudoku-extreme-1k"
    split = root / "test"
    split.mkdir(parents=True)
    inputs = np.ones((3, 81), dtype=np.uint8)
    labels = np.full((3, 81), 10, dtype=np.uint8)
    meta = {"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": 11, "seq_len": 81,
            "num_puzzle_identifiers": 1, "total_groups": 3, "mean_puzzle_examples": 1, "sets": ["all"]}
    (split / "dataset.json").write_text(json.dumps(meta))
    np.save(split / "all__inputs.npy", inputs)
    np.save(split / "all__labels.npy", labels)
    np.save(split / "all__puzzle_identifiers.npy", np.zeros(3, dtype=np.int32))
    np.save(split / "all__puzzle_indices.npy", np.arange(4, dtype=np.int32))
    np.save(split / "all__group_indices.npy", np.arange(4, dtype=np.int32))
    (root / "identifiers.json").write_text(json.dumps(["<blank>"]))
    loaded = read_puzzle_split(split)
    assert loaded.task is None and loaded.identifiers == ["<blank>"]
    assert loaded.n_examples == 3 and int(loaded.labels.max()) == 10
    with pytest.raises(PuzzleDatasetError, match="set 'other' not in dataset.json sets"):
        read_puzzle_split(split, set_name="other")
