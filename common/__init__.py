"""Small helpers every package shares, one job per module: atomic file and directory writes
(``common.atomic``), bounded readers for untrusted inputs (``common.untrusted``), Plotly HTML files
(``common.plotly_html``), output folders this tool owns (``common.outputs``), file hashing
(``common.hashing``), full-disk errors (``common.disk_full``), interval estimators (``common.stats``),
the ignore label (``common.labels``), lazy package exports (``common.lazy``), the allocator
(``common.allocator``). ``common.io`` re-exports the I/O names for older imports.

Depends on nothing else in the project, so ``tasks``, ``models``, ``training``, ``interp`` and ``probes`` can all use it.
"""
