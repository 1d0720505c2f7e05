"""Accuracy vs pass budget: guess-scaling strategies (test-time scaling), vote rules, curves with intervals.

``perturbations`` (input disguises with exact inverses), ``recursion`` (one
pass of a model, optionally with latent noise or random starts, and its
fixed-point residual), ``candidates`` (every pass's answer per puzzle),
``voting`` (pure numpy rules), ``curves`` (strategies at a pass budget, the
table), ``plots`` (the figure). The command is ``interp guess-scale``
(``interp.cli.guess_scale``); docs/guess-scaling.md describes the strategies.
"""
