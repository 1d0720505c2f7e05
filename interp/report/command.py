"""``interp report`` (also ``python -m interp.report``): build a report directory from a YAML/JSON config.

It lives in ``interp.report`` so that ``python -m interp.report`` needs nothing from the layer above
(``interp.cli`` registers it on the ``interp`` command).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from common.cli_format import Parser, UsageError, examples, print_error
from common.cli_types import path_str
from common.cli_options import add_plotly, add_quiet, show_progress


def cmd_report(args: argparse.Namespace) -> int:
    """Handler of ``interp report``."""
    from interp.report.config import load_config
    from interp.report.run import build_report

    cfg = load_config(args.config)
    prefix = getattr(args, "command_prefix", "interp report")
    command = prefix + " " + " ".join(shlex.quote(a) for a in
                                          ["--config", str(args.config), "--out", str(args.out)]
                                          + (["--overwrite"] if args.overwrite else []))
    out = build_report(cfg, args.out, command=command, overwrite=args.overwrite,
                       progress=show_progress(args), plotly_js=args.plotly)
    print(f"report written to {out} (open {out / 'report.md'})")
    return 0


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``report`` on an argparse subparsers object (``interp.cli.build_parser`` calls this)."""
    p = subparsers.add_parser("report", help="build a report directory (tables, figures, HTML) from a config",
                              description="Build Markdown/LaTeX tables (mean ± 95% CI), PNG/SVG figures, "
                                          "interactive HTML and provenance from a YAML/JSON config.",
                              epilog=examples("interp report --config reports/zoo_quick.yaml --out out/report-quick   # zoo models, "
                                              "shipped puzzles; reports/*.yaml holds the seed-table configs"))
    p.add_argument("--config", type=path_str, required=True, help="report config (.yaml/.yml/.json); see interp/report/config.py")
    p.add_argument("--out", type=path_str, required=True, help="output directory (new or empty; --overwrite replaces a report)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report directory")
    add_plotly(p)
    add_quiet(p)
    p.set_defaults(func=cmd_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m interp.report``: the ``interp report`` subcommand on its own."""
    parser = Parser(prog="interp", description="Reports for recursive-model experiments.")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    add_report_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "report":
        argv = ["report", *argv]
    try:
        args = parser.parse_args(argv)
        args.command_prefix = "python -m interp.report"
        return int(args.func(args) or 0)
    except UsageError as e:
        return print_error(str(e))
    except (ValueError, OSError, KeyError) as e:
        return print_error(e)


__all__ = ["add_report_parser", "cmd_report", "main"]
