"""Every command line of the project, found by reading the tree: its parser and each option, for hostile tests.

An *entry* is a file that builds a :class:`common.cli_format.Parser` and has a ``main``: ``interp``,
``python -m training``, ``python -m models.hub``, the ``tasks`` CLIs, ``scripts/*.py``, ``benchmarks/*.py``.
Its parser is captured by running ``main`` with ``Parser.parse_args`` replaced by a trap, so a new command,
subcommand or option is walked without anyone listing it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from unittest import mock

from common.cli_format import Parser

REPO = Path(__file__).resolve().parents[2]
WALKED = ("common", "tasks", "models", "training", "probes", "interp", "scripts", "benchmarks")
_BUILDS_PARSER = re.compile(r"(?<![\w.])Parser\(")


@dataclass(frozen=True)
class Entry:
    """One command line: the file, how it is started, and how to import it."""

    path: Path

    @property
    def name(self) -> str:
        rel = self.path.relative_to(REPO)
        if rel.parts[0] in ("scripts", "benchmarks"):
            return str(rel)
        mod = ".".join(rel.with_suffix("").parts)
        return mod.removesuffix(".__main__").removesuffix(".__init__")

    def module(self) -> ModuleType:
        rel = self.path.relative_to(REPO)
        if rel.parts[0] in ("scripts", "benchmarks"):
            name = "_walk_" + "_".join(rel.with_suffix("").parts)
            if name not in sys.modules:
                spec = importlib.util.spec_from_file_location(name, self.path)
                mod = importlib.util.module_from_spec(spec)
                sys.modules[name] = mod
                spec.loader.exec_module(mod)
            return sys.modules[name]
        return importlib.import_module(".".join(rel.with_suffix("").parts))

    def main(self, argv: list[str]) -> int:
        """Run ``main`` with ``argv`` (through ``sys.argv`` when it takes no argument); its status."""
        fn = self.module().main
        try:
            if inspect.signature(fn).parameters:
                return int(fn(argv) or 0)
            with mock.patch.object(sys, "argv", [self.name, *argv]):
                return int(fn() or 0)
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)


def entries() -> list[Entry]:
    """Every file of the walked packages that builds a ``Parser`` and defines ``main``."""
    found = []
    for top in WALKED:
        for f in sorted((REPO / top).rglob("*.py")):
            if f.name == "cli_format.py":
                continue
            text = f.read_text(encoding="utf-8")
            if _BUILDS_PARSER.search(text) and re.search(r"^def main\(", text, re.M):
                found.append(Entry(f))
    return found


class _Trap(Exception):
    def __init__(self, parser: Parser) -> None:
        self.parser = parser


def capture_parser(entry: Entry) -> Parser:
    """The top-level parser ``entry.main`` builds (caught at its first ``parse_args``)."""

    def trap(self: Parser, *args, **kwargs):
        raise _Trap(self)

    with mock.patch.object(Parser, "parse_args", trap):
        try:
            entry.main([])
        except _Trap as t:
            return t.parser
    raise AssertionError(f"{entry.name}: main() never parsed its arguments with common.cli_format.Parser")


@dataclass
class Command:
    """A parser reached by a path of subcommand names (``["trace"]``, ``[]`` for a command without any)."""

    entry: Entry
    path: tuple[str, ...]
    parser: argparse.ArgumentParser

    @property
    def name(self) -> str:
        return " ".join([self.entry.name, *self.path])


def commands(entry: Entry, parser: argparse.ArgumentParser | None = None, path: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every leaf (sub)command of ``entry``."""
    parser = parser or capture_parser(entry)
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield Command(entry, path, parser)
        return
    for name, sub in subs[0].choices.items():
        if name in subs[0]._name_parser_map and sub is subs[0]._name_parser_map[name]:
            yield from commands(entry, sub, (*path, name))


def value_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The actions that take a value (options and positionals; no flags, help or version)."""
    return [a for a in parser._actions if a.nargs != 0 and not isinstance(a, (argparse._SubParsersAction,
                                                                                 argparse._HelpAction))
            and a.dest != argparse.SUPPRESS]


def placeholder(action: argparse.Action) -> str:
    """A value ``action``'s own type accepts (for the required arguments around a hostile one)."""
    if action.choices:
        return str(list(action.choices)[0])
    for v in ("1", "0.5", "x"):
        try:
            if action.type is None or action.type(v) is not None:
                return v
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
    return "x"


def minimal_argv(cmd: Command, skip: argparse.Action | None = None) -> list[str]:
    """Subcommand path plus the required arguments, each with a placeholder (one per required exclusive group)."""
    argv = list(cmd.path)
    group_of = {a: g for g in cmd.parser._mutually_exclusive_groups for a in g._group_actions}
    done: set[int] = set()
    for a in value_actions(cmd.parser) + [a for a in cmd.parser._actions if a.nargs == 0]:
        g = group_of.get(a)
        if g is not None and g.required:
            if id(g) in done or (skip is not None and skip in g._group_actions):
                continue
            if a is skip:
                continue
            done.add(id(g))
        elif not a.required or a is skip:
            continue
        if not a.option_strings:
            continue  # positionals are added below, in order
        argv += [a.option_strings[0]] if a.nargs == 0 else [a.option_strings[0], placeholder(a)]
    for a in value_actions(cmd.parser):
        if not a.option_strings and a is not skip and a.nargs not in ("?", "*"):
            argv.append(placeholder(a))
    return argv


def with_value(cmd: Command, action: argparse.Action, value: str) -> list[str]:
    """``argv`` running ``cmd`` with ``value`` for ``action`` (``--opt=value`` so a leading '-' stays a value)."""
    base = minimal_argv(cmd, skip=action)
    if action.option_strings:
        opt = next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
        return base + ([f"{opt}={value}"] if opt.startswith("--") else [opt, value])
    # a positional: put it where the placeholder would be (after the other positionals, they are in order)
    pos = [a for a in value_actions(cmd.parser) if not a.option_strings and a.nargs not in ("?", "*")]
    i = pos.index(action) if action in pos else len(pos)
    n_before = len(base) - len([a for a in pos if a is not action])
    return base[:n_before + i] + [value] + base[n_before + i:]
