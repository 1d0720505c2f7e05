"""The label value of positions that are not scored (blank padding, given cells in some datasets, unknown answers).

Same value as PyTorch's ``cross_entropy(ignore_index=-100)`` default; every loss, metric and reader uses this one constant.
"""

IGNORE_LABEL = -100

__all__ = ["IGNORE_LABEL"]
