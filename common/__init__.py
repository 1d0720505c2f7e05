"""Small helpers every package shares: atomic file writes and hashing (``common.io``), interval
estimators (``common.stats``), the ignore label (``common.labels``), lazy package exports (``common.lazy``).

Depends on nothing else in the project, so ``tasks``, ``models``, ``training``, ``interp`` and ``probes`` can all use it.
"""
