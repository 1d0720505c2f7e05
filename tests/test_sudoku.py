"""Sudoku grids: parsing, formatting, token encoding, validity metrics, puzzle-file readers, CLI."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.sudoku.__main__ import main
from tasks.sudoku.grid import (
    PuzzleFormatError,
    count_conflicts,
    decode_tokens,
    encode_grid,
    format_grid,
    grid_to_line,
    is_valid_solution,
    iter_puzzle_file,
    parse_puzzle,
    read_puzzle_file,
)

WIKI = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
WIKI_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def digits(line: str) -> np.ndarray:
    return np.array([0 if ch in ".0" else int(ch) for ch in line], dtype=np.int8).reshape(9, 9)


# ---------------------------------------------------------------- parse / format


def test_parse_dots_and_zeros_agree():
    grid = parse_puzzle(WIKI)
    assert grid.dtype == np.int8 and grid.shape == (9, 9)
    assert np.array_equal(grid, digits(WIKI))
    assert np.array_equal(parse_puzzle(WIKI.replace(".", "0")), grid)
    assert grid[0, 0] == 5 and grid[0, 2] == 0 and grid[8, 8] == 9


def test_parse_pasted_grid_with_whitespace_and_format_round_trip():
    grid = parse_puzzle(WIKI)
    pretty = format_grid(grid)
    assert "|" in pretty and "+" in pretty and len(pretty.splitlines()) == 11
    assert np.array_equal(parse_puzzle(pretty), grid)
    spaced = "\n".join(" ".join(WIKI[r * 9:(r + 1) * 9]) for r in range(9)) + "\n"
    assert np.array_equal(parse_puzzle(spaced), grid)
    assert grid_to_line(grid) == WIKI
    assert grid_to_line(grid, blank="0") == WIKI.replace(".", "0")


def test_parse_wrong_length_names_the_length():
    with pytest.raises(PuzzleFormatError, match=r"wrong length: got 80 cells, expected 81"):
        parse_puzzle(WIKI[:-1])
    with pytest.raises(PuzzleFormatError, match=r"got 82 cells"):
        parse_puzzle(WIKI + "\n1")  # a pasted grid must still have exactly 81 cells


def test_parse_illegal_character_names_char_and_position():
    bad = WIKI[:16] + "x" + WIKI[17:]
    with pytest.raises(PuzzleFormatError, match=r"illegal character 'x' at position 17 \(cell r2c8\)"):
        parse_puzzle(bad)
    # separators are only tolerated inside a multi-line pasted grid
    with pytest.raises(PuzzleFormatError, match=r"illegal character '\|'"):
        parse_puzzle(WIKI[:3] + "|" + WIKI[3:])
    for odd in ("\u00e9", "\u2605"):  # non-ASCII, one below and one above code point 256
        with pytest.raises(PuzzleFormatError, match=f"illegal character '{odd}' at position 1"):
            parse_puzzle(odd + WIKI[1:])


def test_parse_size4_and_bad_digit_for_size():
    grid = parse_puzzle("1.3..4.2" + "2.4..1.3", size=4)
    assert grid.shape == (4, 4) and grid[0, 0] == 1 and grid[1, 1] == 4
    with pytest.raises(PuzzleFormatError, match=r"illegal character '5' at position 2"):
        parse_puzzle("15" + "." * 14, size=4)


def test_parse_contradictory_givens_names_the_two_cells():
    with pytest.raises(PuzzleFormatError, match=r"r1c1 and r1c5 are both 7 in the same row"):
        parse_puzzle("7...7" + "." * 76)
    with pytest.raises(PuzzleFormatError, match=r"r1c1 and r3c3 are both 4 in the same box"):
        parse_puzzle("4" + "." * 19 + "4" + "." * 60)
    with pytest.raises(PuzzleFormatError, match=r"r1c2 and r9c2 are both 2 in the same column"):
        parse_puzzle(".2" + "." * 70 + ".2" + "." * 7)
    assert parse_puzzle("7...7" + "." * 76, check=False)[0, 4] == 7


def test_parse_rejects_bad_size():
    with pytest.raises(PuzzleFormatError, match="grid size"):
        parse_puzzle(WIKI, size=8)


# ---------------------------------------------------------------- tokens


def test_encode_decode_round_trip_and_token_values():
    grid = parse_puzzle(WIKI)
    tokens = encode_grid(grid)
    assert tokens.dtype == np.uint8 and tokens.shape == (81,)
    assert tokens[0] == 6 and tokens[2] == 1  # 5 -> 6, blank -> 1
    assert set(np.unique(tokens)) <= set(range(1, 11))
    assert np.array_equal(decode_tokens(tokens), grid)
    batch = np.stack([grid, digits(WIKI_SOLUTION)])
    assert encode_grid(batch).shape == (2, 81)
    assert np.array_equal(decode_tokens(encode_grid(batch)), batch)
    padded = tokens.copy()
    padded[:3] = 0
    assert (decode_tokens(padded).reshape(-1)[:3] == 0).all()
    small = encode_grid(parse_puzzle("1.3..4.2" + "2.4..1.3", size=4))
    assert small.shape == (16,) and small.max() <= 5


def test_decode_rejects_bad_tokens():
    with pytest.raises(PuzzleFormatError, match=r"token values must be in 0..10"):
        decode_tokens(np.full(81, 11, dtype=np.uint8))
    with pytest.raises(PuzzleFormatError, match="not a square grid"):
        decode_tokens(np.ones(80, dtype=np.uint8))
    with pytest.raises(PuzzleFormatError, match="values must be in 0..9"):
        encode_grid(np.full((9, 9), 10))


# ---------------------------------------------------------------- validity


def brute_conflicts(grid: np.ndarray) -> int:
    """Independent count: for every row/column/box, duplicates beyond the first, blanks ignored."""
    units = [list(grid[r]) for r in range(9)] + [list(grid[:, c]) for c in range(9)]
    units += [list(grid[r:r + 3, c:c + 3].reshape(-1)) for r in (0, 3, 6) for c in (0, 3, 6)]
    return sum(n - 1 for u in units for d, n in Counter(int(x) for x in u).items() if d != 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=81, max_size=81))
def test_count_conflicts_matches_brute_force(cells):
    grid = np.array(cells, dtype=np.int8).reshape(9, 9)
    assert count_conflicts(grid) == brute_conflicts(grid)


def test_count_conflicts_batch_and_known_values():
    solution = digits(WIKI_SOLUTION)
    assert count_conflicts(solution) == 0
    broken = solution.copy()
    broken[0, 0], broken[0, 1] = broken[0, 1], broken[0, 0]  # swap inside a row: 2 columns break
    assert count_conflicts(broken) == 2
    ones = np.ones((9, 9), dtype=np.int8)
    assert count_conflicts(ones) == 27 * 8
    batch = np.stack([solution, broken, ones])
    assert count_conflicts(batch).tolist() == [0, 2, 216]


def test_is_valid_solution():
    solution = digits(WIKI_SOLUTION)
    puzzle = digits(WIKI)
    assert is_valid_solution(solution)
    assert is_valid_solution(solution, puzzle)
    other = puzzle.copy()
    other[0, 2] = 9  # a given that the solution does not keep
    assert not is_valid_solution(solution, other)
    incomplete = solution.copy()
    incomplete[4, 4] = 0
    assert not is_valid_solution(incomplete)
    swapped = solution.copy()
    swapped[0, 0], swapped[0, 1] = swapped[0, 1], swapped[0, 0]
    assert not is_valid_solution(swapped)
    assert not is_valid_solution(solution[:8])


# ---------------------------------------------------------------- files


def test_read_sdm_with_comments_blank_lines_and_trailing_fields(tmp_path):
    path = tmp_path / "mix.sdm"
    path.write_bytes(
        ("# a comment\r\n\r\n" + WIKI + "\r\n" + WIKI.replace(".", "0") + "  12.5 name\n" + "\n   \n").encode()
    )
    records = read_puzzle_file(path)
    assert len(records) == 2
    assert np.array_equal(records[0].puzzle, digits(WIKI))
    assert np.array_equal(records[1].puzzle, digits(WIKI))
    assert records[0].solution is None and records[0].rating is None
    assert records[0].source == "mix.sdm:3" and records[1].source == "mix.sdm:4"
    assert len(read_puzzle_file(path, limit=1)) == 1


def test_read_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("# header\n" + WIKI + "\n" + WIKI[:-1] + "\n")
    with pytest.raises(PuzzleFormatError, match=r"bad\.txt:3: wrong length: got 80 cells"):
        read_puzzle_file(path)
    path.write_text(WIKI + "\n\n" + WIKI[:5] + "?" + WIKI[6:] + "\n")
    with pytest.raises(PuzzleFormatError, match=r"bad\.txt:3: illegal character '\?' at position 6"):
        read_puzzle_file(path)
    path.write_bytes(WIKI.encode() + b"\n" + b"\xff\xfe" + WIKI.encode()[2:] + b"\n")
    with pytest.raises(PuzzleFormatError, match=r"bad\.txt:2: not UTF-8 text \(byte 0xff at column 1\)"):
        read_puzzle_file(path)
    path.write_bytes(b"1" * 70000)
    with pytest.raises(PuzzleFormatError, match=r"bad\.txt:1: line longer than"):
        read_puzzle_file(path)
    with pytest.raises(PuzzleFormatError, match="no such file"):
        read_puzzle_file(tmp_path / "missing.sdm")


def test_reader_streams(tmp_path):
    path = tmp_path / "many.sdm"
    path.write_text((WIKI + "\n") * 3 + WIKI[:-1] + "?\n")
    it = iter_puzzle_file(path)
    assert np.array_equal(next(it).puzzle, digits(WIKI))  # lazy: the bad line is not read yet
    with pytest.raises(PuzzleFormatError, match=":4:"):
        list(it)


def test_read_sudoku_extreme_csv(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(
        "source,question,answer,rating\n"
        f"puzzles0_kaggle,{WIKI},{WIKI_SOLUTION},3\n"
        f"puzzles1,{WIKI.replace('.', '0')},,\n"
    )
    records = read_puzzle_file(path)
    assert len(records) == 2
    assert records[0].source == "puzzles0_kaggle" and records[0].rating == 3
    assert np.array_equal(records[0].solution, digits(WIKI_SOLUTION))
    assert records[1].solution is None and records[1].rating is None
    # detected by header even without the .csv suffix
    other = tmp_path / "train.txt"
    other.write_text(path.read_text())
    assert len(read_puzzle_file(other)) == 2


def test_csv_errors(tmp_path):
    path = tmp_path / "bad.csv"
    wrong = WIKI_SOLUTION[:-2] + WIKI_SOLUTION[-1] + WIKI_SOLUTION[-2]
    path.write_text(f"source,question,answer,rating\nx,{WIKI},{wrong},1\n")
    with pytest.raises(PuzzleFormatError, match=r"bad\.csv:2: answer is not a valid solution"):
        read_puzzle_file(path)
    path.write_text(f"source,question,answer,rating\nx,{WIKI},{WIKI_SOLUTION}\n")
    assert len(read_puzzle_file(path)) == 1  # a missing trailing field is tolerated
    path.write_text(f"source,question,answer,rating\nx,{WIKI},{WIKI_SOLUTION},hard\n")
    with pytest.raises(PuzzleFormatError, match=r"rating 'hard' is not a number"):
        read_puzzle_file(path)
    path.write_text(f"source,question,answer,rating\n\nx,{WIKI[:-1]},,1\n")
    with pytest.raises(PuzzleFormatError, match=r"bad\.csv:3: wrong length"):
        read_puzzle_file(path)
    path.write_text("a,b\n1,2\n")
    assert read_puzzle_file(path) == []  # no puzzle: the caller reports it (tasks.puzzles.read_puzzles)


# ---------------------------------------------------------------- CLI


def test_cli_solve(capsys):
    assert main(["solve", WIKI]) == 0
    out = capsys.readouterr().out
    assert WIKI_SOLUTION in out and "unique" in out and "guesses: 0" in out


def test_cli_errors_exit_2(capsys):
    assert main(["solve", WIKI[:-1]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: wrong length") and len(err.strip().splitlines()) == 1
    assert main(["solve", "12345678." + "........9" + "." * 63]) == 2
    assert "no solution" in capsys.readouterr().err
