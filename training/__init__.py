"""Training pipeline: deep supervision with ACT halting, CGAR, LM multi-pass loss, checkpoints, CLI.

Entry point: ``python -m training train|eval ...`` (see ``training.cli``).
"""
