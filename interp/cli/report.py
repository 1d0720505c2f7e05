"""``interp report``: the command is defined in ``interp.report.command`` (``python -m interp.report`` runs it too)."""

from interp.report.command import add_report_parser, cmd_report, main

__all__ = ["add_report_parser", "cmd_report", "main"]
