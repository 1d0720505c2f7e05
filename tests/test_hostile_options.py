"""Hostile values for every option of every command line, found by walking the parsers (tests/helpers/cli_walk.py).

Three properties, each over every (sub)command the tree defines, so a new option is covered without a new test:

1. every option that takes a value is declared with a bounded type of ``common.cli_types`` (or ``choices``),
   and no command builds a plain ``argparse.ArgumentParser``;
2. hypothesis feeds each option hostile text (negative, zero, NaN, inf, huge, wrong type, empty, NUL): the
   parser either refuses it, and then ``main`` exits 2 with one ``error:`` line, no traceback and nothing
   written, or accepts a value that is sane (an int64, a finite float, text without NUL of bounded length);
3. end to end, on a tiny checkpoint: every path option of the ``interp`` commands, ``python -m training eval``
   and ``python -m models.hub export`` given a FIFO, a directory or a symlink to a FIFO ends within a time limit
   with status 0 or with status 2, one line and nothing written.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import re
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from common.cli_format import UsageError
from common.cli_types import MAX_TEXT
from tests.helpers.cli_walk import REPO, WALKED, Command, commands, entries, minimal_argv, value_actions, with_value

ENTRIES = entries()
COMMANDS: list[Command] = [c for e in ENTRIES for c in commands(e)]
OPTIONS = [(c, a) for c in COMMANDS for a in value_actions(c.parser)]


def _id(item: tuple[Command, argparse.Action]) -> str:
    c, a = item
    return f"{c.name}:{(a.option_strings or [a.dest])[-1]}"


# ----------------------------------------------------------------------------- 1. declared types
def test_every_command_line_is_walked():
    names = {e.name for e in ENTRIES}
    for must in ("interp.cli", "training.cli", "models.hub", "models.official", "tasks.sudoku", "tasks.maze",
                 "tasks.arc", "tasks.text", "scripts/sae_demo.py", "scripts/red_team.py", "benchmarks/bench_trace.py"):
        assert must in names, f"{must} not found by the walker ({sorted(names)})"
    interp = {c.path[0] for c in COMMANDS if c.entry.name == "interp.cli"}
    assert {"trace", "show", "ablate", "demo", "guess-scale", "report", "stability", "attribute"} <= interp
    assert len(OPTIONS) > 200


def test_no_plain_argparse_parser():
    plain = [str(f.relative_to(REPO)) for top in WALKED for f in (REPO / top).rglob("*.py")
             if re.search(r"argparse\.ArgumentParser\(", f.read_text(encoding="utf-8"))]
    assert plain == [], f"use common.cli_format.Parser (one-line errors, no abbreviations): {plain}"


@pytest.mark.parametrize("item", OPTIONS, ids=_id)
def test_option_has_bounded_type(item):
    c, a = item
    assert a.choices is not None or getattr(a.type, "__module__", None) == "common.cli_types", (
        f"{_id(item)}: declare type= from common.cli_types (positive_int, bounded_int(lo, hi), path_str, ...)")


def test_unknown_option_is_named_before_a_missing_required_one():
    from interp.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["trace", "--ckpt", "X", "--frobnicate"]) == 2
    assert err.getvalue().strip() == "error: unrecognized arguments: --frobnicate (in interp trace)"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["trace", "--ckpt", "X", "--puzzle-fil", "p.sdm"]) == 2  # no abbreviations
    assert "--puzzle-fil" in err.getvalue() and len(err.getvalue().splitlines()) == 1


# ----------------------------------------------------------------------------- 2. hostile values, parse + main
NUMERIC_HOSTILE = ["-1", "0", "nan", "inf", "-inf", "1e400", "9" * 40, "abc", "", " ", "1.5", "0x10", "1,,2",
                   "-9223372036854775809", "1e18"]
TEXT_HOSTILE = ["", " ", "\x00", "a\x00b", "x" * (MAX_TEXT + 1), "-", "--", "\n"]


def _numeric(a: argparse.Action) -> bool:
    return hasattr(a.type, "lo") or "number" in getattr(a.type, "__name__", "") or "int" in getattr(
        a.type, "__name__", "")


def _hostile(a: argparse.Action) -> st.SearchStrategy[str]:
    if _numeric(a):
        return st.one_of(st.sampled_from(NUMERIC_HOSTILE), st.integers(-10**30, 10**30).map(str),
                         st.floats(allow_nan=True, allow_infinity=True).map(repr))
    return st.one_of(st.sampled_from(TEXT_HOSTILE), st.text(max_size=40))


def _sane(v: object) -> bool:
    if isinstance(v, list):
        return all(_sane(x) for x in v)
    if isinstance(v, bool) or v is None:
        return True
    if isinstance(v, int):
        return -(2**63) <= v < 2**63
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, str):
        return "\x00" not in v and len(v) <= MAX_TEXT
    return True


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _main_refuses(c: Command, argv: list[str]) -> None:
    """``main(argv)`` exits 2 with one ``error:`` line on stderr, no traceback, writing nothing in its folder."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = c.entry.main(argv)
        finally:
            os.chdir(here)
        lines = err.getvalue().splitlines()
        assert status == 2, (argv, status, err.getvalue()[-300:])
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, lines[:3])
        assert "Traceback" not in err.getvalue()
        assert _files(Path(d)) == set(), (argv, _files(Path(d)))


@pytest.mark.parametrize("item", OPTIONS, ids=_id)
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
@example(data=None)
def test_hostile_value_is_refused_in_one_line_or_sane(item, data):
    c, a = item
    values = NUMERIC_HOSTILE[:6] if data is None and _numeric(a) else TEXT_HOSTILE[:4] if data is None else \
        [data.draw(_hostile(a) if a.choices is None else st.text(max_size=20).filter(lambda s: s not in a.choices))]
    top = c.entry.module() and _top_parser(c)
    for value in values:
        argv = with_value(c, a, value)
        try:
            ns = top.parse_args(argv)
        except UsageError as e:
            assert "\n" not in str(e)
            _main_refuses(c, argv)
            continue
        got = getattr(ns, a.dest)
        assert _sane(got), f"{_id(item)} accepted {value!r} as {got!r}"


_TOPS: dict[str, argparse.ArgumentParser] = {}


def _top_parser(c: Command) -> argparse.ArgumentParser:
    from tests.helpers.cli_walk import capture_parser

    if c.entry.name not in _TOPS:
        _TOPS[c.entry.name] = capture_parser(c.entry)
    return _TOPS[c.entry.name]


def test_minimal_argv_parses_for_every_command():
    """The walker's placeholder arguments are accepted, so refusals above come from the hostile value."""
    for c in COMMANDS:
        _top_parser(c).parse_args(minimal_argv(c))


# ----------------------------------------------------------------------------- 3. hostile files, end to end
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tiny Sudoku TRM, a puzzle file, a report config, a trace, and the hostile paths."""
    from helpers.tiny_models import tiny_trm
    from models.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("hostile")
    ck = save_checkpoint(root / "ck", tiny_trm(halt_max_steps=1, H_cycles=1, L_cycles=1),
                         extra={"task": {"name": "sudoku", "grid_size": 9}})
    (root / "p.sdm").write_text(PUZZLE + "\n")
    (root / "r.yaml").write_text("runs: []\n")
    os.mkfifo(root / "fifo")
    (root / "adir").mkdir()
    os.symlink(root / "fifo", root / "link_to_fifo")
    return {"root": root, "ck": ck, "puzzles": root / "p.sdm", "report": root / "r.yaml"}


def _base_argv(cmd: tuple[str, ...], w: dict[str, Path]) -> list[str] | None:
    """A valid, cheap run of a command (``None``: no end-to-end template for it; the parse test covers it)."""
    w = w or {k: Path("-") for k in ("ck", "puzzles", "root", "report")}
    ck, pf, out = str(w["ck"]), str(w["puzzles"]), str(w["root"] / "out")
    runs = {("trace",): ["--ckpt", ck, "--puzzle-file", pf, "--out", out, "--show", "0", "-q"],
            ("ablate",): ["--ckpt", ck, "--puzzle-file", pf, "--mode", "zero", "-q"],
            ("stability",): ["--ckpt", ck, "--puzzle-file", pf, "--tangents", "1", "--out", out],
            ("influence",): ["--ckpt", ck, "--puzzle-file", pf, "--out", out],
            ("attribute",): ["--ckpt", ck, "--puzzle-file", pf, "--out", out, "-q"],
            ("guess-scale",): ["--ckpt", ck, "--puzzle-file", pf, "--k", "1", "--strategies", "perturb", "--out", out,
                               "-q"],
            ("report",): ["--config", str(w["report"]), "--out", out],
            ("show",): [str(w["root"] / "adir")],
            ("eval",): ["--ckpt", ck, "--puzzle-file", pf],
            ("export",): [ck, out]}
    return runs.get(cmd[-1:])


def _kinds(a: argparse.Action) -> tuple[str, ...]:
    """A FIFO for every path; a directory where a file is read; a symlink to a FIFO where a folder is written."""
    return ("fifo", "link_to_fifo") if a.dest in ("out", "out_dir") else ("fifo", "adir")


E2E = [(c, a, kind) for c in COMMANDS if c.entry.name in ("interp.cli", "training.cli", "models.hub")
       and _base_argv(c.path, None) is not None
       for a in value_actions(c.parser) if getattr(a.type, "__name__", "") == "path" for kind in _kinds(a)]


class _Slow(Exception):
    pass


@pytest.mark.parametrize("case", E2E, ids=lambda t: f"{t[0].name}:{(t[1].option_strings or [t[1].dest])[-1]}={t[2]}")
def test_hostile_file_end_to_end(case, world):
    c, a, kind = case
    base = _base_argv(c.path, world)
    hostile = str(world["root"] / kind)
    argv = list(c.path) + _replace(c, base, a, hostile)
    before = _files(world["root"])

    def alarm(*_):
        raise _Slow

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            status = c.entry.main(argv)
    except _Slow:
        pytest.fail(f"{argv}: still running after 60 s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip() and not ln.startswith(("warning:", "note:"))]
    assert "Traceback" not in err.getvalue()
    assert status in (0, 2), (argv, status, err.getvalue()[-300:])
    if status == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, lines[:3])
        assert _files(world["root"]) == before, (argv, _files(world["root"]) ^ before)
    import shutil

    shutil.rmtree(world["root"] / "out", ignore_errors=True)


def _replace(c: Command, base: list[str], a: argparse.Action, value: str) -> list[str]:
    """``base`` with ``a``'s value replaced by (or, when absent, extended with) ``value``."""
    argv = list(base)
    if not a.option_strings:  # positionals lead the templates, in order
        pos = [x for x in value_actions(c.parser) if not x.option_strings]
        argv[pos.index(a)] = value
        return argv
    for i, tok in enumerate(argv):
        if tok in a.option_strings and i + 1 < len(argv):
            argv[i + 1] = value
            return argv
    if a.dest in ("data",) and "--puzzle-file" in argv:  # an exclusive partner of --puzzle-file
        i = argv.index("--puzzle-file")
        del argv[i:i + 2]
    return argv + [a.option_strings[0], value]


# ----------------------------------------------------------------------------- costly sizes x model
def test_run_cost_estimate_is_the_product_of_the_sizes():
    from helpers.tiny_models import tiny_trm
    from interp.tracing.memory import estimate_run_cost

    m = tiny_trm()
    n_params = sum(p.numel() for p in m.parameters())
    calls = len(m.step_hook_names(0))
    one = estimate_run_cost(m, 3, 2, passes=5, copies=7, rows=4)
    assert one["flop"] == 2 * n_params * 81 * calls * 2 * 3 * 5 * 7
    assert one["bytes"] == 16 * 4 * 4 * 7 * 81 * m.cfg.hidden_size


@pytest.mark.parametrize("cmd,extra,word", [
    ("stability", ["--tangents", "8", "--out", "o"], "--tangents"),
    ("guess-scale", ["--k", "1024", "--out", "o"], "--k"),
    ("trace", ["--segments", "1024", "--out", "o"], "--segments"),
])
def test_costly_sizes_refused_before_any_work(world, tmp_path, monkeypatch, capsys, cmd, extra, word):
    from interp.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECURSE_MAX_PFLOP", "1e-9")  # a millionth of a GFLOP: the tiny run is above it
    assert main([cmd, "--ckpt", str(world["ck"]), "--puzzle-file", str(world["puzzles"]), *extra]) == 2
    err = "\n".join(ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith(("note:", "warning:")))
    assert err.count("\n") == 0 and "PFLOP" in err and word in err, err
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("RECURSE_MAX_PFLOP", "lots")
    assert main([cmd, "--ckpt", str(world["ck"]), "--puzzle-file", str(world["puzzles"]), *extra]) == 2
    assert "RECURSE_MAX_PFLOP must be" in capsys.readouterr().err
