"""Sudoku dataset builder: reference layout, groups of augmented copies, data mixing, file sources, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tasks.puzzle_dataset import read_puzzle_split
from tasks.sudoku.__main__ import main
from tasks.sudoku.grid import PuzzleFormatError, decode_tokens, grid_to_line, is_valid_solution
from tasks.sudoku.build import build_sudoku_dataset, easier_twin
from tasks.sudoku.generate import generate
from tasks.sudoku.solver import solve


def blanks(grid: np.ndarray) -> int:
    return int((grid == 0).sum())


def test_generated_build_layout_and_groups(tmp_path):
    out = tmp_path / "ds"
    summary = build_sudoku_dataset(out, n_train=4, n_test=3, n_aug=2, seed=5, size=9, progress=False)
    assert summary["train"] == {"examples": 12, "puzzles": 12, "groups": 4}
    train, test = read_puzzle_split(out / "train"), read_puzzle_split(out / "test")
    assert json.loads((out / "identifiers.json").read_text()) == ["<blank>"]
    for split in (train, test):
        m = split.meta
        assert (m["vocab_size"], m["seq_len"], m["task"], m["grid_size"]) == (11, 81, "sudoku", 9)
        assert (m["pad_id"], m["ignore_label_id"], m["num_puzzle_identifiers"]) == (0, 0, 1)
        assert (split.puzzle_identifiers == 0).all()
        assert np.array_equal(split.puzzle_indices, np.arange(split.n_examples + 1))
        puzzles, solutions = decode_tokens(split.inputs), decode_tokens(split.labels)
        assert split.labels.min() >= 2  # every cell supervised with a digit
        for p, s in zip(puzzles, solutions):
            assert is_valid_solution(s, p)
    assert np.array_equal(train.group_indices, [0, 3, 6, 9, 12])
    assert np.array_equal(test.group_indices, [0, 1, 2, 3])
    # group = original then augmented copies of the same puzzle (same blank count, same digit multiset)
    originals = generate(7, size=9, seed=5)
    puzzles = decode_tokens(train.inputs)
    for g in range(4):
        rows = list(train.group_examples(g))
        assert grid_to_line(puzzles[rows[0]]) == grid_to_line(originals[g].puzzle)
        for r in rows[1:]:
            assert blanks(puzzles[r]) == blanks(puzzles[rows[0]])
            assert grid_to_line(puzzles[r]) != grid_to_line(puzzles[rows[0]])
    # test split is un-augmented and disjoint from train
    test_lines = [grid_to_line(p) for p in decode_tokens(test.inputs)]
    assert test_lines == [grid_to_line(r.puzzle) for r in originals[4:]]


def test_build_is_deterministic(tmp_path):
    kw = dict(n_train=3, n_test=2, n_aug=3, seed=9, size=4, data_mixing=True, progress=False)
    build_sudoku_dataset(tmp_path / "a", **kw)
    build_sudoku_dataset(tmp_path / "b", **kw)
    for split in ("train", "test"):
        for name in ("inputs", "labels", "group_indices"):
            a = np.load(tmp_path / "a" / split / f"all__{name}.npy")
            b = np.load(tmp_path / "b" / split / f"all__{name}.npy")
            assert np.array_equal(a, b)


def test_data_mixing_twins(tmp_path):
    out = tmp_path / "mix"
    build_sudoku_dataset(out, n_train=3, n_test=1, n_aug=1, seed=2, size=9, data_mixing=True, progress=False)
    train = read_puzzle_split(out / "train")
    assert np.array_equal(train.group_indices, [0, 4, 8, 12])  # (original + 1 aug) x (example + twin)
    puzzles, solutions = decode_tokens(train.inputs), decode_tokens(train.labels)
    for k in range(0, train.n_examples, 2):
        p, twin = puzzles[k], puzzles[k + 1]
        assert np.array_equal(solutions[k], solutions[k + 1])
        filled = (p == 0) & (twin != 0)
        assert 1 <= filled.sum() <= blanks(p) - 1
        assert np.array_equal(twin[p != 0], p[p != 0])  # givens kept
        assert np.array_equal(twin[filled], solutions[k][filled])  # filled from the solution
        assert solve(twin).unique


def test_easier_twin_edge_cases():
    rec = generate(1, size=4, seed=0)[0]
    rng = np.random.default_rng(0)
    one_blank = rec.solution.copy()
    one_blank[0, 0] = 0
    assert np.array_equal(easier_twin(one_blank, rec.solution, rng), one_blank)  # no k in [1, 0]
    ks = {blanks(rec.puzzle) - blanks(easier_twin(rec.puzzle, rec.solution, rng)) for _ in range(300)}
    assert ks == set(range(1, blanks(rec.puzzle)))  # k ~ U[1, blanks - 1]


def test_build_from_file(tmp_path):
    records = generate(6, size=9, seed=21)
    src = tmp_path / "src.sdm"
    src.write_text("# six puzzles\n" + "".join(grid_to_line(r.puzzle) + "\n" for r in records))
    out = tmp_path / "from-file"
    summary = build_sudoku_dataset(out, source=src, n_train=4, n_test=2, n_aug=1, seed=0, progress=False)
    assert summary["train"]["groups"] == 4 and summary["test"]["examples"] == 2
    train, test = read_puzzle_split(out / "train"), read_puzzle_split(out / "test")
    known = {grid_to_line(r.puzzle): grid_to_line(r.solution) for r in records}
    originals = [decode_tokens(train.inputs[r]) for r in train.group_indices[:-1]]
    used = [grid_to_line(p) for p in originals] + [grid_to_line(p) for p in decode_tokens(test.inputs)]
    assert sorted(used) == sorted(known)  # all six drawn, train and test disjoint
    for p, s in zip(decode_tokens(test.inputs), decode_tokens(test.labels)):
        assert known[grid_to_line(p)] == grid_to_line(s)
    assert json.loads((out / "test" / "dataset.json").read_text())["build"]["source"] == str(src)
    with pytest.raises(PuzzleFormatError, match=r"only 6 puzzles pass the filters, need 7"):
        build_sudoku_dataset(tmp_path / "x", source=src, n_train=5, n_test=2, progress=False)


def test_build_from_file_drops_test_puzzles_equivalent_to_training(tmp_path):
    from tasks.sudoku.augment import SudokuTransform

    records = generate(6, size=9, seed=22)
    rng = np.random.default_rng(8)
    twins = [SudokuTransform.random(rng, 9).apply(np.stack([r.puzzle, r.solution])) for r in records]
    lines = [grid_to_line(r.puzzle) for r in records] + [grid_to_line(p) for p, _ in twins]
    pair = {line: i % 6 for i, line in enumerate(lines)}  # line -> which base puzzle it is a copy of
    src = tmp_path / "twins.sdm"
    src.write_text("".join(line + "\n" for line in lines))
    out = tmp_path / "honest"
    summary = build_sudoku_dataset(out, source=src, n_train=6, n_test=6, seed=4, progress=False)
    train, test = read_puzzle_split(out / "train"), read_puzzle_split(out / "test")
    train_pairs = {pair[grid_to_line(p)] for p in decode_tokens(train.inputs)}
    drawn_test = [line for line in lines if line not in {grid_to_line(p) for p in decode_tokens(train.inputs)}]
    expected = sorted(line for line in drawn_test if pair[line] not in train_pairs)
    assert sorted(grid_to_line(p) for p in decode_tokens(test.inputs)) == expected
    dropped = json.loads((out / "test" / "dataset.json").read_text())["build"]["test_dropped_equivalent"]
    assert dropped == 6 - len(expected) == 6 - summary["test"]["examples"] and dropped > 0


def test_build_from_file_rejects_ambiguous_puzzle(tmp_path):
    src = tmp_path / "amb.sdm"
    src.write_text("." * 81 + "\n")
    with pytest.raises(PuzzleFormatError, match=r"amb\.sdm:1: puzzle has more than one solution"):
        build_sudoku_dataset(tmp_path / "o", source=src, n_train=1, n_test=0, progress=False)


def test_cli_build_and_generate(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["build", "--out", str(out), "--n-train", "3", "--n-test", "2", "--n-aug", "1",
                 "--size", "4", "--seed", "1", "--quiet"]) == 0
    assert read_puzzle_split(out / "train").n_examples == 6
    assert "train:" in capsys.readouterr().out
    assert main(["generate", "-n", "2", "--size", "4", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(len(line.split()[0]) == 16 for line in lines)
    assert main(["build", "--out", str(out), "--n-train", "-1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: argument --n-train: must be >= 1, got -1"], err  # refused by the parser, one line
