"""Puzzle files as people have them: one fixture per shape in tests/fixtures/puzzles/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.puzzles import PuzzleInputError, TaskInfo, check_kind, read_puzzles, sniff_puzzle_kind
from tasks.sudoku.grid import PuzzleFormatError, SkippedLines, parse_puzzle, read_puzzle_file

FIX = Path(__file__).parent / "fixtures" / "puzzles"
WIKI = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOL = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
HARD = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"
SUDOKU = TaskInfo("sudoku", (9, 9), "argument", ckpt="zoo/trm-sudoku9")


def _read(name: str):
    skipped = SkippedLines()
    return read_puzzle_file(FIX / name, skipped=skipped), skipped


def test_title_and_comment_lines_are_skipped_and_counted():
    recs, skipped = _read("title_and_comments.sdm")
    assert [r.source for r in recs] == ["title_and_comments.sdm:6", "title_and_comments.sdm:7"]
    assert np.array_equal(recs[0].puzzle, parse_puzzle(WIKI)) and np.array_equal(recs[1].puzzle, parse_puzzle(HARD))
    assert skipped.count == 4 and skipped.comments == 3  # title + '#', '//', ';' comments; blank lines not counted
    assert "skipped 4 line(s)" in skipped.message("f.sdm")


def test_trailing_names_after_whitespace():
    recs, skipped = _read("trailing_names.txt")
    assert len(recs) == 2 and skipped.count == 0
    assert np.array_equal(recs[1].puzzle, parse_puzzle(HARD))


def test_csv_with_the_puzzle_in_any_column_and_extra_columns():
    recs, skipped = _read("csv_any_column.csv")
    assert len(recs) == 2 and skipped.count == 0  # the header is a header, not a skipped line
    assert recs[0].rating == 3.5 and recs[0].source == "wikipedia"
    assert np.array_equal(recs[0].solution, parse_puzzle(SOL)) and recs[1].solution is None
    # no header: the grid with blanks is the puzzle, a full grid solving it is the answer
    recs, _ = _read("csv_no_header.csv")
    assert len(recs) == 1 and np.array_equal(recs[0].puzzle, parse_puzzle(WIKI))
    assert np.array_equal(recs[0].solution, parse_puzzle(SOL))


def test_utf8_bom_and_crlf():
    recs, _ = _read("bom.sdm")
    assert len(recs) == 2 and np.array_equal(recs[0].puzzle, parse_puzzle(WIKI))


def test_quoted_csv_fields_with_comma_and_newline():
    recs, skipped = _read("quoted_newline.csv")
    assert [r.source for r in recs] == ["wiki", "hard"] and skipped.count == 0
    assert np.array_equal(recs[1].puzzle, parse_puzzle(HARD))


def test_file_without_a_puzzle_gives_one_clear_error():
    with pytest.raises(PuzzleInputError, match=r"no_puzzle.txt: no 9x9 Sudoku puzzle in the file \(3 line"):
        read_puzzles(SUDOKU, None, str(FIX / "no_puzzle.txt"))


def test_read_puzzles_reports_skipped_lines_in_one_note():
    batch = read_puzzles(SUDOKU, None, str(FIX / "title_and_comments.sdm"))
    assert len(batch.inputs) == 2 and sum("skipped 4 line(s)" in n for n in batch.notes) == 1


def test_almost_puzzles_are_errors_not_skips(tmp_path):
    p = tmp_path / "typo.sdm"
    p.write_text("A title\n" + WIKI[:-1] + "?\n")
    with pytest.raises(PuzzleFormatError, match=r"typo.sdm:2: illegal character '\?'"):
        read_puzzle_file(p)


def test_maze_file_with_bom():
    maze = TaskInfo("maze", (5, 5), "argument")
    batch = read_puzzles(maze, None, str(FIX / "maze_bom.txt"))
    assert batch.inputs.shape == (1, 25)


def test_task_mismatch_names_the_checkpoint_task():
    maze = TaskInfo("maze", (9, 9), "checkpoint", ckpt="zoo/trm-maze9")
    with pytest.raises(PuzzleInputError, match="checkpoint zoo/trm-maze9 is a maze model; the puzzle is a Sudoku"):
        read_puzzles(maze, HARD, None)
    with pytest.raises(PuzzleInputError, match="is a maze model; title_and_comments.sdm is a Sudoku"):
        read_puzzles(maze, None, str(FIX / "title_and_comments.sdm"))
    with pytest.raises(PuzzleInputError, match="is a Sudoku model; maze_bom.txt is a maze"):
        read_puzzles(SUDOKU, None, str(FIX / "maze_bom.txt"))
    assert sniff_puzzle_kind("#") is None and sniff_puzzle_kind("Hardest puzzles") is None
    check_kind(SUDOKU, "a title line")  # cannot tell: no error


def test_big_file_streams_in_constant_memory(tmp_path):
    import tracemalloc

    p = tmp_path / "big.sdm"
    with open(p, "w") as f:
        f.write("# a big collection\n")
        for _ in range(20_000):
            f.write(WIKI + " name\n")
    tracemalloc.start()
    n = sum(1 for _ in __import__("tasks.sudoku.grid", fromlist=["x"]).iter_puzzle_file(p))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 20_000 and peak < 2 * 2**20
