"""Causal analysis: which state of which cell at which step causes the answer (patching and attribution).

Modules are imported one by one (``interp.causal.attribute``, ``pairs``, ``metrics``, ``attribution``,
``patching``, ...); this file only makes the folder a regular package, so tools that read the tree
(mkdocstrings, the architecture checks) see it. See ``docs/causal.md``.
"""
