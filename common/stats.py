"""Interval estimators, in one place.

* ``bootstrap_ci``: percentile bootstrap interval of a mean (resampling items: puzzles, sequences).
* ``mean_ci`` / ``CI``: mean with a Student-t interval over a few replicates (seeds, runs).
* ``wilson_interval``: Wilson score interval of a binomial proportion (solved / total).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of the mean of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 4_000_000 // v.size)
    for i in range(0, n_boot, chunk):
        k = min(chunk, n_boot - i)
        means[i : i + k] = v[rng.integers(0, v.size, size=(k, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class CI:
    """Mean with a (1 - alpha) Student-t interval over ``n`` replicates."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half(self) -> float:
        return (self.high - self.low) / 2 if np.isfinite(self.low) else float("nan")


def mean_ci(values: Sequence[float] | np.ndarray | Any, alpha: float = 0.05) -> CI:
    """Mean and Student-t interval of the finite values (NaNs dropped)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return CI(float("nan"), float("nan"), float("nan"), 0)
    m = float(v.mean())
    if n == 1:
        return CI(m, float("nan"), float("nan"), 1)
    from scipy.stats import t

    half = float(t.ppf(1 - alpha / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return CI(m, m - half, m + half, n)


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (always contains successes / n)."""
    from statistics import NormalDist

    if n == 0:
        return (float("nan"), float("nan"))
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


__all__ = ["bootstrap_ci", "CI", "mean_ci", "wilson_interval"]
