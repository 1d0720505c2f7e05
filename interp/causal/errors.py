"""The one exception type of the causal tools (pairs, patching, attribution, influence)."""

from __future__ import annotations


class CausalError(ValueError):
    """Bad input to a causal analysis; the one-line message names the problem."""


__all__ = ["CausalError"]
