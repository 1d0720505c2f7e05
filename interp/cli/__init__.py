"""The ``interp`` command: one module per command group.

    interp trace / show / ablate     interp.cli.trace
    interp trace --text / --tokens   interp.cli.text_trace
    interp trace --loop-module       interp.cli.looped_trace
    interp demo                      interp.cli.demo
    interp scale                     interp.cli.scale (guess-scale: its deprecated alias)
    interp guess-scale               interp.cli.guess_scale
    interp report                    interp.report.command (re-exported by interp.cli.report)
    interp stability                 interp.cli.stability
    interp attribute                 interp.cli.attribute
    interp influence                 interp.cli.influence
    interp steer                     interp.cli.steer
    interp features                  interp.cli.features

Shared pieces (puzzle inputs, loading a checkpoint) are in ``interp.cli.common``; help and one-line
errors in ``common.cli_format``; options every command line shares in ``common.cli_options``.
Every command imports its heavy dependencies (torch, pandas, plotly, matplotlib)
inside its function, so ``interp --help`` starts in a fraction of a second.
Bad input prints one line ``error: ...`` on stderr and exits with status 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from common.allocator import retain_freed_memory
from common.cli_format import Parser, UsageError, VersionAction, error_line, examples, print_error
from common.io import is_disk_full
from interp.cli.attribute import add_attribute_parser
from interp.cli.demo import add_demo_parser
from interp.cli.features import add_features_parser
from interp.cli.guess_scale import add_guess_scale_parser
from interp.cli.influence import add_influence_parser
from interp.cli.report import add_report_parser
from interp.cli.scale import add_scale_parser
from interp.cli.stability import add_stability_parser
from interp.cli.steer import add_steer_parser
from interp.cli.trace import add_trace_parsers


def build_parser() -> Parser:
    parser = Parser(prog="interp", description="Per-step traces, analyses and interventions for recursive models.",
                     epilog=examples("interp demo", "interp trace --ckpt zoo/trm-sudoku9 --puzzle-file "
                                     "data/sudoku/generated_moderate.sdm --limit 16 --out traces/run1",
                                     "interp show traces/run1 --puzzle 1",
                                     "interp trace --help   # options, defaults and examples of one command"))
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_trace_parsers(sub)
    add_demo_parser(sub)
    add_scale_parser(sub)
    add_guess_scale_parser(sub)
    add_report_parser(sub)
    add_stability_parser(sub)
    add_attribute_parser(sub)
    add_influence_parser(sub)
    add_steer_parser(sub)
    add_features_parser(sub)
    return parser


def _disk_full(e: BaseException) -> int:
    return print_error(f"disk full or file size limit while writing ({error_line(e)[:200]}); what was written "
                       "completely is kept: free space and rerun (a trace resumes by chunk)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        retain_freed_memory()  # no page-fault churn between batches (common/allocator.py)
        return int(args.func(args) or 0)
    except UsageError as e:
        return print_error(str(e))
    except BrokenPipeError:  # output piped into `head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0
    except (ValueError, OSError, KeyError) as e:
        if is_disk_full(e):
            return _disk_full(e)
        return print_error(e)
    except Exception as e:  # a full disk from safetensors' writer is its own error type, not an OSError
        if not is_disk_full(e):
            raise
        return _disk_full(e)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
