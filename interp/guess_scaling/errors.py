"""The one exception type of the guess-scaling tools."""

from __future__ import annotations


class GuessScalingError(ValueError):
    """Bad arguments to the guess-scaling tools; the message names the problem."""


__all__ = ["GuessScalingError"]
