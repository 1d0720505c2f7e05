"""The ``interp`` command line on tiny checkpoints: traces, files of puzzles, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from interp import load_trace
from interp.cli import main
from models.checkpoint import save_checkpoint
from helpers.tiny_models import tiny_hrm, tiny_trm

REPO = Path(__file__).resolve().parents[1]
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
HARD = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    trm = tiny_trm()
    save_checkpoint(root / "trm", trm, extra={"task": {"name": "sudoku", "grid_size": 9}})
    maze = tiny_hrm(seq_len=25)
    save_checkpoint(root / "maze", maze, extra={"task": {"name": "maze", "grid_size": 5}})
    small = tiny_hrm()
    save_checkpoint(root / "nometa", small)  # 4x4: Sudoku or maze? the user must say
    (root / "foreign").mkdir()
    (root / "foreign" / "config.json").write_text(json.dumps({"format": "someone-else/2", "arch": {}}))
    (root / "file.pt").write_bytes(b"\x80\x02not a checkpoint")
    return root


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "interp", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_trace_one_puzzle(ckpts, tmp_path, capsys):
    out = tmp_path / "tr"
    assert main(["trace", "--ckpt", str(ckpts / "trm"), "--puzzle", PUZZLE, "--out", str(out), "--color", "never"]) == 0
    stdout = capsys.readouterr().out
    assert "answer after step" in stdout and "halting logit per segment (q_halt; TRM halts when q_halt > 0)" in stdout
    assert "result:" in stdout and f"trace written to {out}" in stdout
    assert " 5  3  . | .  7  . | .  .  ." in stdout  # the input grid, row 1
    tr = load_trace(out)
    assert tr.n_puzzles == 1 and tr.family == "trm" and tr.meta["task"]["name"] == "sudoku"
    expect = np.array([int(c) + 1 for c in SOLUTION])  # the solver's solution is the label
    np.testing.assert_array_equal(tr.labels[0], expect)
    assert tr.stored_states == ["y", "z"]  # full states for the printed puzzle



def test_trace_lens_answer_only_without_confidence(ckpts, tmp_path, capsys):
    """``--lens answer --no-confidence``: the latent is not decoded, no confidence arrays, and the viewer still works."""
    out = tmp_path / "tr"
    assert main(["trace", "--ckpt", str(ckpts / "trm"), "--puzzle", PUZZLE, "--out", str(out), "--color", "never",
                 "--lens", "answer", "--no-confidence"]) == 0
    capsys.readouterr()
    tr = load_trace(out)
    assert tr.decoded_states == ["y"]
    assert not [k for k in tr.arrays if k.startswith("conf/")] and "pred/z" not in tr.arrays
    assert (out / "viewer.html").stat().st_size > 1000
    full = tmp_path / "full"
    assert main(["trace", "--ckpt", str(ckpts / "trm"), "--puzzle", PUZZLE, "--out", str(full), "--color", "never"]) == 0
    ref = load_trace(full)
    assert ref.decoded_states == ["y", "z"] and "conf/y" in ref.arrays
    np.testing.assert_array_equal(tr.predictions, ref.predictions)  # the answer lens itself is unchanged

def test_malformed_puzzle_subprocess_one_line(ckpts, tmp_path):
    """``python -m interp`` end to end; bad input fails before torch is even imported."""
    r = _run("trace", "--ckpt", str(ckpts / "trm"), "--puzzle", PUZZLE[:-3], cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "78" in lines[0], r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("args, expect", [
    (["--ckpt", "{trm}", "--puzzle", PUZZLE.replace("5", "x", 1)], "illegal character"),
    (["--ckpt", "{trm}", "--puzzle", "11" + PUZZLE[2:]], "givens"),
    (["--ckpt", "{root}/missing", "--puzzle", PUZZLE], "not found"),
    (["--ckpt", "{maze}", "--task", "sudoku", "--puzzle", PUZZLE], "maze model"),
    (["--ckpt", "{root}/foreign", "--puzzle", PUZZLE], "not a recurse-interp/1 config"),
    (["--ckpt", "{root}/file.pt", "--puzzle", PUZZLE], "not a tensor-only torch.save file"),  # read as a checkpoint, never unpickled
    (["--ckpt", "{root}/nometa", "--puzzle", "1..."], "--task"),
    (["--ckpt", "{trm}", "--puzzle-file", "{root}/nope.sdm"], "no such file"),
    (["--ckpt", "{trm}"], "--puzzle"),
    (["--ckpt", "{trm}", "--puzzle", PUZZLE, "--segments", "0"], "argument --segments: must be >= 1"),
])
def test_bad_input_gives_one_error_line(ckpts, capsys, args, expect):
    args = [a.format(trm=ckpts / "trm", maze=ckpts / "maze", root=ckpts) for a in args]
    code = main(["trace", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:") and expect in err[0], err


def test_puzzle_file_and_show(ckpts, tmp_path, capsys):
    f = tmp_path / "puzzles.sdm"
    f.write_text(f"# three puzzles\n{PUZZLE}\n{HARD}\n{SOLUTION[:-1]}.\n")
    out = tmp_path / "many"
    assert main(["trace", "--ckpt", str(ckpts / "trm"), "--puzzle-file", str(f), "--out", str(out),
                 "--show", "0", "--state-puzzles", "1"]) == 0
    text = capsys.readouterr().out
    assert "per puzzle:" in text and "puzzles.sdm:2" in text and "summary:" in text
    tr = load_trace(out)
    assert tr.n_puzzles == 3 and list(tr.state_index) == [0]
    assert (tr.labels[2] == np.array([int(c) + 1 for c in SOLUTION])).all()
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "Trace(family='trm', puzzles=3" in shown and "token_acc" in shown
    assert main(["show", str(out), "--puzzle", "1", "--color", "never"]) == 0  # the story, without the model
    shown = capsys.readouterr().out
    assert "answer after step" in shown and "=== puzzle 1 of 3 ===" in shown  # 1-based, as lines in a file
    assert main(["show", str(out), "--puzzle", "0"]) == 2 and "--puzzle: must be >= 1" in capsys.readouterr().err
    assert main(["show", str(out), "--puzzle", "7"]) == 2 and "to 3, got 7" in capsys.readouterr().err
    # re-running on the same directory resumes (nothing to do); another input needs --overwrite
    assert main(["trace", "--ckpt", str(ckpts / "trm"), "--puzzle-file", str(f), "--out", str(out), "--show", "0",
                 "--state-puzzles", "1"]) == 0
    assert main(["trace", "--ckpt", str(ckpts / "trm"), "--puzzle", PUZZLE, "--out", str(out)]) == 2
    assert "different trace" in capsys.readouterr().err



def test_show_writes_a_viewer_for_a_trace_made_in_python(ckpts, tmp_path, capsys):
    from interp import trace_to_disk
    from models.load import load_any

    model = load_any(ckpts / "trm")[0]
    x = np.array([[1 if c == "." else int(c) + 1 for c in p] for p in (PUZZLE, HARD)])
    out = tmp_path / "py"
    trace_to_disk(model, x, out, progress=False, task={"name": "sudoku", "grid": [9, 9]})
    assert not (out / "viewer.html").exists()
    assert main(["show", str(out), "--viewer", "--viewer-puzzles", "2"]) == 0
    assert "viewer written to" in capsys.readouterr().out
    html = (out / "viewer.html").read_text()
    assert (out / "plotly-cartesian.gz.js").exists() and "plotly-cartesian.gz.js" in html and "puzzle 2" in html
    load_trace(out)  # the extra files do not break the trace

def test_maze_checkpoint(ckpts, tmp_path, capsys):
    maze = "#####\n# S #\n# ###\n#G  #\n#####\n"
    f = tmp_path / "maze.txt"
    f.write_text(maze)
    assert main(["trace", "--ckpt", str(ckpts / "maze"), "--puzzle-file", str(f), "--out", str(tmp_path / "m"),
                 "--color", "never"]) == 0
    text = capsys.readouterr().out
    assert "task: maze 5x5" in text and " #  #  #  #  #" in text
    tr = load_trace(tmp_path / "m")
    assert (tr.labels[0] == 5).sum() == 2  # the solver's path: two 'o' cells between S and G


def test_ablate_command(ckpts, capsys):
    assert main(["ablate", "--ckpt", str(ckpts / "trm"), "--puzzle", PUZZLE, "--mode", "freeze_init,zero"]) == 0
    text = capsys.readouterr().out
    assert "freeze_init" in text and "delta_ce" in text


def test_zoo_checkpoints_if_present(tmp_path, capsys):
    zoo = sorted(p.parent for p in (REPO / "zoo").glob("*/config.json")
                 if (json.loads(p.read_text()).get("task") or {}).get("name") == "sudoku"
                 and json.loads(p.read_text())["model"].get("seq_len") == 81)
    if not zoo:
        pytest.skip("no 9x9 Sudoku checkpoint in zoo/")
    assert main(["trace", "--ckpt", str(zoo[0]), "--puzzle", PUZZLE, "--out", str(tmp_path / "z")]) == 0
    assert "result:" in capsys.readouterr().out


def test_version_and_help_with_examples_and_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("recurse-interp ")
    for cmd in (["trace"], ["show"], ["ablate"], ["demo"], ["guess-scale"], ["report"]):
        with pytest.raises(SystemExit):
            main([*cmd, "--help"])
        text = capsys.readouterr().out
        assert "examples:" in text and "--quiet" in text or cmd == ["show"], cmd
    with pytest.raises(SystemExit):
        main(["trace", "--help"])
    assert "(default: 64)" in capsys.readouterr().out


def test_language_model_and_task_mismatch_messages(ckpts, capsys):
    lm = REPO / "zoo" / "hrm-lm-pydoc"
    if lm.exists():
        assert main(["ablate", "--ckpt", str(lm), "--puzzle", PUZZLE]) == 2
        err = capsys.readouterr().err
        assert "is a language model" in err and "`interp ablate` takes puzzles" in err
    assert main(["trace", "--ckpt", str(ckpts / "maze"), "--puzzle", PUZZLE]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("is a maze model; the puzzle is a Sudoku") and str(ckpts / "maze") in err


def test_halting_rule_of_trm_shows_q_halt_only(ckpts, tmp_path, capsys):
    assert main(["trace", "--ckpt", str(ckpts / "trm"), "--puzzle", PUZZLE, "--out", str(tmp_path / "h"),
                 "--color", "never"]) == 0
    text = capsys.readouterr().out
    if "halting" in text:
        assert "q_continue" not in text and "TRM halts when q_halt > 0" in text


def test_shared_options_have_one_default_in_every_command():
    """``--threads`` and ``--device`` come from common.cli_options: the same default wherever they appear."""
    from common.cli_options import DEVICE_DEFAULT, THREADS_DEFAULT
    from interp.cli import build_parser
    from training.cli import build_parser as train_parser

    def sub(parser, name):
        return next(a for a in parser._subparsers._group_actions).choices[name]

    interp_parser = build_parser()
    for name, flag in [("stability", "threads"), ("guess-scale", "threads"), ("guess-scale", "device"),
                       ("trace", "device")]:
        default = sub(interp_parser, name).get_default(flag)
        assert default == (THREADS_DEFAULT if flag == "threads" else DEVICE_DEFAULT), (name, flag, default)
    assert sub(train_parser(), "eval").get_default("device") == DEVICE_DEFAULT


def test_set_threads_zero_leaves_torch_alone():
    import argparse

    from common.cli_options import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(argparse.Namespace(threads=0))
        assert torch.get_num_threads() == before
        set_threads(argparse.Namespace(threads=2))
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="--threads"):
            set_threads(argparse.Namespace(threads=-1))
    finally:
        torch.set_num_threads(before)


def test_print_error_is_one_line(capsys):
    from common.cli_format import EXIT_USAGE, print_error

    assert print_error(KeyError("no such\n  key")) == EXIT_USAGE
    assert print_error("diverged", status=1) == 1
    assert capsys.readouterr().err.splitlines() == ["error: no such key", "error: diverged"]
