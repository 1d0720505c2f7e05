"""Interval estimators, in one place.

Which to use:

* ``proportion_ci``: a proportion (solved / total, exact accuracy): Wilson score interval.
* ``bootstrap_mean_ci``: a mean (token accuracy, cross-entropy, segments): ``scipy.stats.bootstrap``
  percentile interval, which stays inside the observed range (a cross-entropy interval never goes below 0).
* ``interval``: either of the two, chosen from the values (0/1 values are a proportion) -> ``CI``.

Older helpers kept for existing callers: ``bootstrap_ci`` (numpy percentile bootstrap),
``mean_ci`` (Student-t over a few replicates; not for binary outcomes), ``wilson_interval``.
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


def _finite_or_trivial(values: Sequence[float] | np.ndarray | Any) -> tuple[np.ndarray, CI | None]:
    """The finite values as float64, and the CI itself when there are fewer than two (no interval to estimate)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return v, CI(float("nan"), float("nan"), float("nan"), 0)
    if v.size == 1:
        return v, CI(float(v[0]), float("nan"), float("nan"), 1)
    return v, None


def mean_ci(values: Sequence[float] | np.ndarray | Any, alpha: float = 0.05) -> CI:
    """Mean and Student-t interval of the finite values (NaNs dropped)."""
    v, early = _finite_or_trivial(values)
    if early is not None:
        return early
    n, m = int(v.size), float(v.mean())
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


def proportion_ci(successes: int, n: int, alpha: float = 0.05) -> CI:
    """Proportion ``successes / n`` with its Wilson score interval."""
    if n == 0:
        return CI(float("nan"), float("nan"), float("nan"), 0)
    lo, hi = wilson_interval(int(successes), int(n), alpha)
    return CI(successes / n, lo, hi, int(n))


def bootstrap_mean_ci(values: Sequence[float] | np.ndarray | Any, alpha: float = 0.05, n_boot: int = 2000,
                      seed: int = 0) -> CI:
    """Mean of the finite values with a ``scipy.stats.bootstrap`` percentile interval (inside the data's range)."""
    v, early = _finite_or_trivial(values)
    if early is not None:
        return early
    n, m = int(v.size), float(v.mean())
    if np.all(v == v[0]):
        return CI(m, m, m, n)
    from scipy.stats import bootstrap

    res = bootstrap((v,), np.mean, confidence_level=1 - alpha, n_resamples=n_boot, method="percentile",
                    random_state=np.random.default_rng(seed), vectorized=True)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return CI(m, max(lo, float(v.min())), min(hi, float(v.max())), n)


def interval(values: Sequence[float] | np.ndarray | Any, alpha: float = 0.05, seed: int = 0) -> CI:
    """The project's interval for a column of per-item values: Wilson for 0/1 values, else a bootstrap of the mean."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size and np.isin(v, (0.0, 1.0)).all():
        return proportion_ci(int(v.sum()), int(v.size), alpha)
    return bootstrap_mean_ci(v, alpha, seed=seed)


__all__ = ["bootstrap_ci", "bootstrap_mean_ci", "CI", "interval", "mean_ci", "proportion_ci", "wilson_interval"]
