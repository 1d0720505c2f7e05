"""Accuracy vs number of guesses: perturbed or re-sampled passes, voting over their answers, curves with intervals.

``voting`` (pure numpy voting rules), ``curves`` (perturbations, candidates, the scaling table and its plots).
The command is ``interp guess-scale`` (``interp.cli.guess_scale``).
"""
