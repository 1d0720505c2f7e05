"""The shared progress bar: per-batch updates, rate and time left, a closing line with the wall time."""

from __future__ import annotations

import io

import numpy as np
import pytest

from common.progress import Progress, format_seconds, status


def test_bar_counts_batches_and_closes_with_the_wall_time():
    f = io.StringIO()
    with Progress(10, "trace", file=f) as bar:
        for _ in range(5):
            bar.update(2)
        bar.bar.refresh()
        shown = f.getvalue()
    assert "10/10 puzzles" in shown and "puzzles/s" in shown and "<" in shown  # done/total, rate, time left
    last = f.getvalue().rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert last.startswith("trace: 10 puzzles in ") and last.endswith("/s)")
    assert f.getvalue().count("trace: 10 puzzles in") == 1


def test_disabled_error_and_resume():
    f = io.StringIO()
    with Progress(4, "x", enabled=False, file=f) as bar:
        bar.update(4)
        bar.write("note")  # plainly, as there is no bar
    assert f.getvalue() == "note\n"
    f = io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress(4, "x", file=f) as bar:
            bar.update(1)
            raise RuntimeError("boom")
    assert " in " not in f.getvalue()  # no closing line after an error
    f = io.StringIO()
    with Progress(10, "train", unit="step", initial=6, file=f) as bar:
        bar.update(1)
        bar.goto(5)  # a rollback
        bar.goto(10)
    assert f.getvalue().rstrip().split("\r")[-1].startswith("train: 4 steps in ")  # counted from the resume point
    f = io.StringIO()
    with Progress(None, "patch", unit="chunk", file=f) as bar:
        assert list(bar.wrap([1, 2, 3])) == [1, 2, 3]
    assert "patch: 3 chunks in " in f.getvalue()
    assert [format_seconds(s) for s in (9.14, 125, 3720)] == ["9.1 s", "2 min 05 s", "1 h 02 min"]
    f = io.StringIO()
    status("compiling", file=f)
    status("hidden", enabled=False, file=f)
    assert f.getvalue() == "compiling\n"


def test_trace_to_disk_moves_the_bar_once_per_batch(tmp_path, monkeypatch, capsys):
    """Not once per chunk: 10 puzzles in batches of 2 inside one 1024-puzzle chunk give 5 updates of 2."""
    from helpers.tiny_models import tiny_trm
    from interp.tracing.stream import trace_to_disk

    seen = []
    orig = Progress.update
    monkeypatch.setattr(Progress, "update", lambda self, n=1: (seen.append(n), orig(self, n))[1])
    x = np.random.default_rng(0).integers(1, 11, (10, 81))
    trace_to_disk(tiny_trm().eval(), x, tmp_path / "t", batch_size=2, progress=True)
    assert seen == [2] * 5
    assert "trace -> t: 10 puzzles in " in capsys.readouterr().err
