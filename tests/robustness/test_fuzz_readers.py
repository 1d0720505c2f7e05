"""Fuzzing the puzzle and task readers and the ``interp`` command line.

Every input ends in a correct result or a ``ValueError`` subclass with a short
one-line message: never another exception type, never a hang. Hypothesis runs
derandomized (same examples every CI run); set ``ROBUST_FUZZ_EXAMPLES=2000`` and
``ROBUST_FUZZ_RANDOM=1`` for a longer, exploring session.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from robust_helpers import PUZZLE, PYTHON, one_error_line, subprocess_env

from tasks.arc import ArcTaskError, load_task_file, parse_task
from tasks.maze import MazeError, parse_maze
from tasks.sudoku.grid import PuzzleFormatError, grid_to_line, parse_puzzle, read_puzzle_file
from helpers.tiny_models import tiny_hrm

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(
    max_examples=int(os.environ.get("ROBUST_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=not os.environ.get("ROBUST_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    database=None,
)


def clean(fn, *args, **kwargs):
    """``(result, None)`` or ``(None, error)`` for a ValueError with a short one-line message; anything else fails."""
    try:
        return fn(*args, **kwargs), None
    except ValueError as e:
        msg = str(e)
        assert msg.strip(), f"{type(e).__name__} with an empty message"
        assert "\n" not in msg, f"multi-line message: {msg[:500]!r}"
        assert len(msg) <= 1000, f"{len(msg)}-character message: {msg[:300]!r}..."
        return None, e


# ----------------------------------------------------------------------------- Sudoku text
_ODD = ["\x00", "\ufeff", "\u00a0", "\u2028", "١", "Ⅸ", "🧩", "\r", "\t", "|", "+", "-", "\n"]


@st.composite
def sudoku_texts(draw) -> str:
    """Mutations of a valid puzzle (wrong lengths, odd characters, clashing givens) and free text."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.text(max_size=200))
    if kind == 1:
        return draw(st.text(alphabet="0123456789. \n|+-", min_size=70, max_size=90))
    cells = list(PUZZLE)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "digit"]))
        i = draw(st.integers(0, max(0, len(cells) - 1)))
        if op == "replace" and cells:
            cells[i] = draw(st.sampled_from(_ODD + list("0123456789.abcXYZ")))
        elif op == "insert":
            cells.insert(i, draw(st.sampled_from(_ODD)))
        elif op == "delete" and cells:
            del cells[i]
        elif op == "digit" and cells:
            cells[i] = draw(st.sampled_from("123456789"))  # may contradict a given in the same unit
    return "".join(cells)


def _expected_grid(text: str, size: int = 9):
    """Independent reading of the documented format: None if illegal or the wrong length."""
    skip = set(" \t\r\n\f\v") | (set("|+-") if "\n" in text.strip() else set())
    vals = []
    for ch in text:
        if ch in skip:
            continue
        if ch in ".0":
            vals.append(0)
        elif ch in "123456789"[:size]:
            vals.append(int(ch))
        else:
            return None
    return np.array(vals).reshape(size, size) if len(vals) == size * size else None


def _clashes(g: np.ndarray) -> bool:
    n = int(np.sqrt(g.shape[0]))
    units = [g[r] for r in range(9)] + [g[:, c] for c in range(9)]
    units += [g[r:r + n, c:c + n].ravel() for r in range(0, 9, n) for c in range(0, 9, n)]
    return any(len(u[u > 0]) != len(set(u[u > 0].tolist())) for u in units)


@FUZZ
@given(sudoku_texts())
def test_sudoku_parse_fuzz(text):
    grid, err = clean(parse_puzzle, text, size=9)
    assert err is None or isinstance(err, PuzzleFormatError)
    expected = _expected_grid(text)
    if expected is None:
        assert err is not None, f"accepted an illegal puzzle {text!r}"
    elif _clashes(expected):
        assert err is not None and "contradictory givens" in str(err)
    else:
        assert err is None, f"rejected a legal puzzle {text!r}: {err}"
        np.testing.assert_array_equal(grid, expected)
        assert np.array_equal(parse_puzzle(grid_to_line(grid)), grid)


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([".sdm", ".csv", ".txt"]))
@example(b"\r\x00", ".csv")  # found by a long random run: a carriage return inside the CSV header
@example(b"source,question\nx,\"" + PUZZLE.encode() + b"\n", ".csv")
@example(b"\xef\xbb\xbf" + PUZZLE.encode() + b"\r\n\r\n# c\n" + PUZZLE.encode(), ".sdm")
def test_sudoku_file_fuzz(tmp_path_factory, content, suffix):
    p = tmp_path_factory.mktemp("sdm") / f"f{suffix}"
    p.write_bytes(content)
    recs, err = clean(read_puzzle_file, p, size=9, limit=50)
    assert err is None or isinstance(err, PuzzleFormatError)
    if err is None:
        for r in recs:
            assert r.puzzle.shape == (9, 9) and not _clashes(r.puzzle)


def test_sudoku_file_contradictions_and_csv_answers(tmp_path):
    p = tmp_path / "bad.sdm"
    p.write_text(PUZZLE + "\n" + "55" + PUZZLE[2:] + "\n")
    with pytest.raises(PuzzleFormatError, match=r"bad.sdm:2: contradictory givens: r1c1 and r1c2"):
        read_puzzle_file(p)
    c = tmp_path / "x.csv"
    c.write_text("source,question,answer,rating\nx," + PUZZLE + "," + "1" * 81 + ",3\n")
    with pytest.raises(PuzzleFormatError, match="x.csv:2: .*answer"):
        read_puzzle_file(c)


# ----------------------------------------------------------------------------- mazes
@st.composite
def maze_texts(draw) -> str:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.text(max_size=120))
    if kind == 1:
        n = draw(st.integers(1, 7))
        rows = [draw(st.text(alphabet="# SGo", min_size=n - 1, max_size=n + 1)) for _ in range(draw(st.integers(1, 7)))]
        return "\n".join(rows)
    rows = ["#####", "#S  #", "# # #", "#  G#", "#####"]
    r, c = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    ch = draw(st.sampled_from(list("# SGo") + ["\x00", "é", "\t"]))
    rows[r] = rows[r][:c] + ch + rows[r][c + 1:]
    return "\n".join(rows)


@FUZZ
@given(maze_texts(), st.sampled_from([None, 0, 5, 7]))
def test_maze_parse_fuzz(text, width):
    grid, err = clean(parse_maze, text, width=width)
    assert err is None or isinstance(err, MazeError)
    if err is None:
        assert grid.ndim == 2 and grid.dtype == np.uint8
        assert (grid == 3).sum() == 1 and (grid == 4).sum() == 1  # exactly one S and one G
        assert set(np.unique(grid).tolist()) <= {1, 2, 3, 4, 5}


# ----------------------------------------------------------------------------- ARC JSON
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-20, 20), st.integers(), st.floats(allow_nan=True),
                      st.text(max_size=8))
json_junk = st.recursive(json_leaf, lambda kids: st.one_of(st.lists(kids, max_size=5),
                                                           st.dictionaries(st.text(max_size=6), kids, max_size=4)),
                         max_leaves=40)
grid_like = st.one_of(
    json_junk,
    st.lists(st.lists(st.integers(-2, 12), min_size=0, max_size=4), min_size=0, max_size=4),
    st.lists(st.lists(st.one_of(st.integers(0, 9), json_junk), min_size=1, max_size=3), min_size=1, max_size=3),
)
pair_like = st.one_of(json_junk, st.fixed_dictionaries({"input": grid_like, "output": grid_like}),
                      st.fixed_dictionaries({"input": grid_like}))
task_like = st.one_of(json_junk, st.fixed_dictionaries({"train": st.one_of(json_junk, st.lists(pair_like, max_size=3)),
                                                        "test": st.one_of(json_junk, st.lists(pair_like, max_size=3))}))


@FUZZ
@given(task_like)
def test_arc_parse_fuzz(obj):
    task, err = clean(parse_task, obj, "t", "fuzz.json")
    assert err is None or isinstance(err, ArcTaskError)
    if err is None:
        for a, b in task.train + task.test:
            for g in (a, b):
                if g is not None:
                    assert g.ndim == 2 and 1 <= min(g.shape) and max(g.shape) <= 30 and g.max() <= 9


def test_arc_file_edge_cases(tmp_path):
    good = {"train": [{"input": [[1, 2]], "output": [[2, 1]]}], "test": [{"input": [[3]]}]}
    cases = {
        "deep.json": "[" * 100_000 + "]" * 100_000,  # would overflow the parser's recursion
        "nul.json": "\x00" * 10,
        "latin1.json": None,
        "huge_grid.json": json.dumps({"train": [{"input": [[1] * 31], "output": [[1]]}], "test": [{"input": [[1]]}]}),
        "tall_grid.json": json.dumps({"train": [{"input": [[1]] * 5000, "output": [[1]]}], "test": [{"input": [[1]]}]}),
        "float.json": json.dumps({"train": [{"input": [[1.5]], "output": [[1]]}], "test": [{"input": [[1]]}]}),
        "bool.json": json.dumps({"train": [{"input": [[True]], "output": [[1]]}], "test": [{"input": [[1]]}]}),
        "long_str.json": json.dumps({"train": [{"input": [["x" * 100_000]], "output": [[1]]}], "test": [{"input": [[1]]}]}),
        "bigint.json": json.dumps({"train": [{"input": [[10**40]], "output": [[1]]}], "test": [{"input": [[1]]}]}),
    }
    for name, text in cases.items():
        p = tmp_path / name
        if text is None:
            p.write_bytes(b'{"train": "\xe9"}')
        else:
            p.write_text(text)
        _, err = clean(load_task_file, p)
        assert isinstance(err, ArcTaskError), name
    (tmp_path / "ok.json").write_text(json.dumps(good))
    t = load_task_file(tmp_path / "ok.json")
    assert t.test[0][1] is None and t.train[0][1].tolist() == [[2, 1]]
    for missing in (tmp_path / "nope.json", tmp_path):  # a missing file, a directory
        _, err = clean(load_task_file, missing)
        assert isinstance(err, ArcTaskError)


# ----------------------------------------------------------------------------- huge files
def _junk_file(path: Path, mb: int = 50) -> Path:
    line = b"this is not a puzzle, just junk \x01\x02 " * 3 + b"\n"
    block = line * ((1 << 20) // len(line) + 1)
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(block[: 1 << 20])
    assert path.stat().st_size == mb << 20
    return path


def _bounded(fn, *args, peak_mb: float = 8.0, seconds: float = 10.0, **kwargs):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = clean(fn, *args, **kwargs)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - t0 < seconds, f"{fn.__name__} took {time.perf_counter() - t0:.1f}s"
    assert peak < peak_mb * 2**20, f"{fn.__name__} allocated {peak / 2**20:.1f} MB for a streamed file"
    return out


def test_huge_files_are_streamed(tmp_path):
    from tasks.puzzles import TaskInfo, read_puzzles

    junk = _junk_file(tmp_path / "junk.sdm")
    _, err = _bounded(read_puzzle_file, junk)
    assert "junk.sdm:1:" in str(err)
    one_line = tmp_path / "oneline.txt"  # 50 MB without a newline
    with open(one_line, "wb") as f:
        for _ in range(50):
            f.write(b"1" * (1 << 20))
    _, err = _bounded(read_puzzle_file, one_line)
    assert "line longer than" in str(err)
    # 50 MB of valid puzzles: limit= reads only the head of the file
    good = tmp_path / "many.sdm"
    with open(good, "wb") as f:
        chunk = (PUZZLE + "\n").encode() * 12_800
        for _ in range(50):
            f.write(chunk)
    assert good.stat().st_size > 50e6 and one_line.stat().st_size == 50 << 20
    recs, err = _bounded(read_puzzle_file, good, limit=20)
    assert err is None and len(recs) == 20
    # the interp CLI's readers on the same files
    sudoku, maze = TaskInfo("sudoku", (9, 9), "argument"), TaskInfo("maze", (5, 5), "argument")
    small = _junk_file(tmp_path / "small.sdm", mb=1)  # warm-up: the readers' lazy imports (numba) are not the file
    for task in (sudoku, maze):
        clean(read_puzzles, task, None, str(small))
    assert _bounded(read_puzzles, sudoku, None, str(junk))[1] is not None
    assert _bounded(read_puzzles, maze, None, str(junk))[1] is not None
    assert _bounded(read_puzzles, maze, None, str(one_line))[1] is not None
    big_arc = _junk_file(tmp_path / "big.json", mb=50)
    assert isinstance(_bounded(load_task_file, big_arc)[1], ArcTaskError)
    for f in (junk, one_line, good, big_arc):  # 200 MB: do not keep them in pytest's retained tmp dirs
        f.unlink()


def test_maze_file_reader_streams_with_limit(tmp_path):
    from tasks.puzzles import TaskInfo, read_puzzles

    maze = "#####\n#S  #\n# # #\n#  G#\n#####"
    p = tmp_path / "mazes.txt"
    with open(p, "w") as f:
        for _ in range(200_000):  # ~6 MB of mazes separated by blank lines
            f.write(maze + "\n\n")
    batch, err = _bounded(read_puzzles, TaskInfo("maze", (5, 5), "argument"), None, str(p), limit=3, peak_mb=4)
    assert err is None and batch.inputs.shape == (3, 25) and batch.names[2].endswith("#3")
    # one maze per line (N*N characters) is read the same way
    q = tmp_path / "lines.txt"
    q.write_text("\n".join(maze.replace("\n", "") for _ in range(4)) + "\n")
    batch = read_puzzles(TaskInfo("maze", (5, 5), "argument"), None, str(q))
    assert batch.inputs.shape == (4, 25)
    np.testing.assert_array_equal(batch.labels[0], batch.labels[3])


# ----------------------------------------------------------------------------- the interp CLI
@pytest.fixture(scope="module")
def cli_ckpts(tiny_ckpts, tmp_path_factory):
    from models.checkpoint import save_checkpoint

    maze = tiny_hrm(seq_len=25, H_cycles=1, L_cycles=1)
    save_checkpoint(tiny_ckpts / "maze", maze, extra={"task": {"name": "maze", "grid_size": 5}})
    arc = tiny_hrm(vocab_size=12, seq_len=900, H_cycles=1, L_cycles=1)
    save_checkpoint(tiny_ckpts / "arc", arc, extra={"task": {"name": "arc"}})
    return tiny_ckpts


def _cli(argv, capsys) -> tuple[int, str]:
    from interp.cli import main

    code = main(argv)
    cap = capsys.readouterr()
    if code != 0:
        assert code == 2
        one_error_line(cap.err)
    return code, cap.err


@FUZZ
@given(st.sampled_from(["trm", "maze"]), st.one_of(sudoku_texts(), maze_texts()))
def test_cli_puzzle_argument_fuzz(cli_ckpts, tmp_path_factory, capsys, ckpt, text):
    if "\x00" in text:  # the OS cannot pass NUL in argv; the parser sees it only in files
        text = text.replace("\x00", "\\0")
    out = tmp_path_factory.mktemp("tr") / "t"
    code, _ = _cli(["trace", "--ckpt", str(cli_ckpts / ckpt), "--puzzle", text, "--out", str(out), "--show", "0",
                    "--color", "never"], capsys)
    if code == 0:
        from interp import load_trace

        assert load_trace(out).n_puzzles == 1
    else:
        assert not out.exists()


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(["trm", "maze", "arc"]))
def test_cli_puzzle_file_fuzz(cli_ckpts, tmp_path_factory, capsys, content, ckpt):
    d = tmp_path_factory.mktemp("pf")
    f = d / ("p.json" if ckpt == "arc" else "p.txt")
    f.write_bytes(content)
    out = d / "t"
    code, _ = _cli(["trace", "--ckpt", str(cli_ckpts / ckpt), "--puzzle-file", str(f), "--out", str(out),
                    "--show", "0", "--limit", "3"], capsys)
    if code != 0:
        assert not out.exists()


def test_cli_bad_arguments(cli_ckpts, tmp_path, capsys):
    ck = str(cli_ckpts / "trm")
    bad = [
        [],
        ["trace"],
        ["trace", "--ckpt", ck],
        ["trace", "--ckpt", ck, "--puzzle", PUZZLE, "--puzzle-file", "x"],
        ["trace", "--ckpt", ck, "--puzzle", PUZZLE, "--limit", "many"],
        ["trace", "--ckpt", ck, "--puzzle", PUZZLE, "--task", "maze"],
        ["trace", "--ckpt", ck, "--puzzle-file", str(tmp_path / "missing.sdm")],
        ["trace", "--ckpt", ck, "--puzzle-file", str(tmp_path)],
        ["trace", "--ckpt", str(tmp_path / "nope"), "--puzzle", PUZZLE],
        ["trace", "--ckpt", ck, "--puzzle", "55" + PUZZLE[2:]],
        ["trace", "--ckpt", ck, "--puzzle", PUZZLE, "--chunk-size", "0", "--out", str(tmp_path / "t")],
        ["trace", "--ckpt", ck, "--puzzle", PUZZLE, "--segments", "-3", "--out", str(tmp_path / "t2")],
        ["trace", "--ckpt", ck, "--puzzle", PUZZLE, "--states", "nonsense", "--out", str(tmp_path / "t3")],
        ["show", str(tmp_path / "nothing")],
        ["ablate", "--ckpt", ck, "--puzzle", PUZZLE, "--mode", "explode"],
        ["trace", "--ckpt", str(cli_ckpts / "arc"), "--puzzle", "[[1]]"],
    ]
    for argv in bad:
        code, err = _cli(argv, capsys)
        assert code == 2, argv


def test_cli_subprocess_exit_code_and_one_line(cli_ckpts, tmp_path):
    env = subprocess_env()
    f = tmp_path / "p.sdm"
    f.write_bytes(b"\x00\xff" * 100 + b"\n")
    for argv in (["trace", "--ckpt", str(cli_ckpts / "trm"), "--puzzle-file", str(f)],
                 ["trace", "--ckpt", str(cli_ckpts / "trm"), "--puzzle", "🧩" * 81]):
        r = subprocess.run([PYTHON, "-m", "interp", *argv], capture_output=True, text=True, cwd=tmp_path, env=env,
                           timeout=120)
        assert r.returncode == 2, r.stderr
        one_error_line(r.stderr)
        assert r.stdout == "" and not (tmp_path / "traces").exists()
