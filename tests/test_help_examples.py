"""Every example in every ``--help`` names files shipped with the clone (fast) and runs as written (slow).

The examples are read from the parsers themselves (``interp``, ``recurse-train``, ``python -m models.official``
and all their subcommands) and run in order, in a copy of the repository, like the README's commands
(``tests/test_docs.py``): an example may read what an earlier one wrote (``interp show traces/run1`` after
``interp trace ... --out traces/run1``).
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from test_docs import doc_env, repo_copy  # noqa: F401  (fixtures: the copy of the clone and its environment)

REPO = Path(__file__).resolve().parents[1]
PROGRAMS = {"interp": ["-m", "interp"], "recurse-train": ["-m", "training"],
            "python -m models.official": ["-m", "models.official"]}
INPUT_ROOTS = ("data/", "zoo/", "reports/", "training/", "tests/")
OUTPUT_ROOTS = ("out/", "runs/", "traces/")
FILE_LIKE = re.compile(r"\.(sdm|txt|csv|json|ya?ml|pth?|ckpt|safetensors)$")


def _parsers() -> list[argparse.ArgumentParser]:
    from interp.cli import build_parser as interp_parser
    from models.official import build_parser as official_parser
    from training.cli import build_parser as train_parser

    todo, seen = [interp_parser(), train_parser(), official_parser()], []
    while todo:
        p = todo.pop(0)
        seen.append(p)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(dict.fromkeys(action.choices.values()))
    return seen


def help_examples() -> list[tuple[str, str]]:
    """``(prog, example)`` for every line of every parser's ``examples:`` epilog, in parser order, comments cut."""
    out = []
    for p in _parsers():
        text = p.epilog or ""
        if "examples:" not in text:
            continue
        for line in text.split("examples:", 1)[1].splitlines():
            cmd = line.split("  #")[0].strip()
            if cmd and cmd not in {c for _, c in out}:
                out.append((p.prog, cmd))
    return out


EXAMPLES = help_examples()


def _argv(cmd: str) -> list[str]:
    for prefix, args in sorted(PROGRAMS.items(), key=lambda kv: -len(kv[0])):
        if cmd.startswith(prefix + " ") or cmd == prefix:
            return [sys.executable, *args, *shlex.split(cmd[len(prefix):])]
    raise AssertionError(f"an example of an unknown program: {cmd}")


def test_every_parser_has_examples_and_they_name_shipped_files():
    progs = {prog for prog, _ in EXAMPLES}
    for want in ("interp trace", "interp show", "interp ablate", "interp demo", "interp stability",
                 "interp guess-scale", "interp report", "interp attribute", "interp influence",
                 "recurse-train train", "recurse-train eval", "recurse-train data"):
        assert want in progs, f"{want} --help shows no example"
    problems = []
    for prog, cmd in EXAMPLES:
        _argv(cmd)
        for tok in shlex.split(cmd):
            if tok.startswith(OUTPUT_ROOTS):
                continue
            if tok.startswith(INPUT_ROOTS) and not (REPO / tok).exists():
                problems.append(f"{prog}: {cmd!r} names {tok}, which the clone does not have")
            elif FILE_LIKE.search(tok) and not tok.startswith(INPUT_ROOTS):
                problems.append(f"{prog}: {cmd!r} names {tok}, which is not a shipped file")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("prog,cmd", EXAMPLES, ids=[f"{i:02d}" for i in range(len(EXAMPLES))])
def test_help_example_runs(prog, cmd, repo_copy, doc_env):  # noqa: F811
    proc = subprocess.run(_argv(cmd), cwd=repo_copy, env=doc_env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (f"`{cmd}` (from `{prog} --help`) failed with exit {proc.returncode}:\n"
                                  f"--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-2000:]}")
