"""Reports for papers: the config (``config``), building a report directory (``run``), tables with
intervals (``tables``) and static matplotlib figures (``figures``). The command is ``interp report``.
"""
