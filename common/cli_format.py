"""How every command line of the project looks: help with defaults and examples, one-line errors.

Shared by ``interp`` (``interp.cli``), ``recurse-train`` (``training.cli``) and
``python -m interp.report``; it lives here, in the lowest layer, so each of them
can import it without reaching up. Only argparse is imported: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

EXIT_USAGE = 2
"""Exit status of a command given bad input (argparse's own convention)."""


class _DefaultsMixin:
    """Append ``(default: X)`` to an option's help when it has a real default (not None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def help_formatter() -> type:
    """Help with defaults shown and examples kept as written: rich-argparse when installed, else plain argparse."""
    try:
        from rich_argparse import RawDescriptionRichHelpFormatter as base
    except ImportError:  # pragma: no cover - rich-argparse is a declared dependency
        base = argparse.RawDescriptionHelpFormatter
    return type("HelpFormatter", (_DefaultsMixin, base), {})


def version_string() -> str:
    """``recurse-interp X.Y.Z`` from the installed distribution (or pyproject's version in a bare checkout)."""
    try:
        from importlib.metadata import version

        return f"recurse-interp {version('recurse-interp')}"
    except Exception:  # pragma: no cover - not installed
        return "recurse-interp (not installed)"


def examples(*lines: str) -> str:
    """An ``examples:`` epilog for a parser's help."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


class _PlainFormatter(_DefaultsMixin, argparse.RawDescriptionHelpFormatter):
    """Used while parsers are built and arguments parsed: cheap (rich is imported only to print help)."""


class UsageError(Exception):
    """A command-line usage error, reported as one ``error: ...`` line with :data:`EXIT_USAGE`."""


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as a single ``error: ...`` line; help shows defaults and examples."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _PlainFormatter)
        kwargs.setdefault("allow_abbrev", False)  # "--puzzle-fil" is an error, not a silent "--puzzle-file"
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        self._argv = list(sys.argv[1:] if args is None else args)  # read by error(): unknown options come first
        return super().parse_known_args(args, namespace)

    def unknown_options(self, argv: Sequence[str]) -> list[str]:
        """The tokens of ``argv`` that look like options this parser does not know (before a ``--``)."""
        out = []
        for tok in argv:
            if tok == "--":
                break
            if not tok.startswith(self.prefix_chars) or tok in self.prefix_chars:
                continue
            if self._negative_number_matcher.match(tok) and not self._has_negative_number_optionals:
                continue  # a negative number is a value, not an option
            name = tok.split("=", 1)[0] if tok.startswith("--") else tok[:2]
            if name not in self._option_string_actions and " " not in tok:
                out.append(tok.split("=", 1)[0])
        return out

    def parse_cli(self, args: Sequence[str] | None = None) -> argparse.Namespace:
        """``parse_args`` for scripts: a usage error prints one ``error: ...`` line and exits with status 2."""
        try:
            return self.parse_args(args)
        except UsageError as e:
            raise SystemExit(print_error(str(e))) from None

    def format_help(self) -> str:
        if self.formatter_class is _PlainFormatter:
            self.formatter_class = help_formatter()  # rich-argparse, imported now that help is shown
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        """One-line ``UsageError``; an unknown option is named before any "required" complaint it caused."""
        if "required" in message:
            unknown = self.unknown_options(getattr(self, "_argv", []))
            if unknown:
                message = f"unrecognized arguments: {' '.join(unknown[:5])} (in {self.prog})"
        raise UsageError(" ".join(message.split()))


class VersionAction(argparse.Action):
    """``--version``: reads the installed version only when asked (importlib.metadata costs ~0.1 s)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, default: Any = argparse.SUPPRESS,
                 help: str = "print the version and exit") -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None) -> None:
        print(version_string())
        parser.exit()


def error_line(e: BaseException) -> str:
    """An error as the one line after ``error:`` (KeyError's quotes dropped, whitespace folded)."""
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(msg.split()) or type(e).__name__


def print_error(e: BaseException | str, status: int = EXIT_USAGE) -> int:
    """Print ``error: <one line>`` on stderr and return ``status``: the one way a command reports bad input."""
    print(f"error: {e if isinstance(e, str) else error_line(e)}", file=sys.stderr)
    return status
