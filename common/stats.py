"""Interval estimators, in one place.

Which to use:

* ``proportion_ci``: a proportion (solved / total, exact accuracy): Wilson score interval.
* ``bootstrap_mean_ci``: a mean (token accuracy, cross-entropy, segments): the percentile interval
  ``scipy.stats.bootstrap`` gives, which stays inside the observed range (a cross-entropy interval never goes below 0).
* ``stratified_bootstrap_ci``: a statistic of two classes (a ROC AUC), resampled per class.

All bootstrap intervals of a mean resample through ``bootstrap_means``, the one resampler.
* ``interval``: either of the two, chosen from the values (0/1 values are a proportion) -> ``CI``.

Older helpers kept for existing callers: ``bootstrap_ci`` (numpy percentile bootstrap),
``mean_ci`` (Student-t over a few replicates; not for binary outcomes), ``wilson_interval``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def bootstrap_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """The bootstrap distribution of the mean: ``n_boot`` means of resamples (with replacement) of ``values``.

    The one resampler of the project. It draws exactly what ``scipy.stats.bootstrap``
    draws from ``default_rng(seed)`` (one ``integers(0, n, (n_boot, n))`` stream), in
    chunks of at most 4M indices so large inputs stay within memory.
    """
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 4_000_000 // v.size)
    for i in range(0, n_boot, chunk):
        k = min(chunk, n_boot - i)
        means[i : i + k] = v[rng.integers(0, v.size, size=(k, v.size))].mean(axis=1)
    return means


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of the mean of ``values`` (``np.quantile`` of ``bootstrap_means``)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(bootstrap_means(v, n_boot, seed), [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _scipy_percentile_interval(dist: np.ndarray, alpha: float) -> tuple[float, float]:
    """The two-sided percentile interval as ``scipy.stats.bootstrap(method="percentile")`` computes it from ``dist``.

    Same levels and quantile function as the installed scipy (``stats.quantile``
    since 1.15, ``np.percentile`` before), so intervals match the numbers scipy gave.
    """
    a = (1 - (1 - alpha)) / 2
    try:
        from scipy.stats import quantile
    except ImportError:  # scipy < 1.15
        return float(np.percentile(dist, a * 100)), float(np.percentile(dist, (1 - a) * 100))
    q = quantile(dist, np.stack([np.asarray(a), 1 - np.asarray(a)]), axis=-1)
    return float(q[0]), float(q[1])


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
    lo, hi = _scipy_percentile_interval(bootstrap_means(v, n_boot, seed), alpha)
    return CI(m, max(lo, float(v.min())), min(hi, float(v.max())), n)


def stratified_bootstrap_ci(statistic: Callable[[np.ndarray, np.ndarray], float], flags: np.ndarray,
                            score: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of ``statistic(flags, score)`` (e.g. a ROC AUC) over resamples stratified by ``flags``.

    Positives and negatives are resampled separately (each keeps its count), so every
    resample holds both classes and a rank statistic stays defined.
    """
    flags = np.asarray(flags, bool)
    rng = np.random.default_rng(seed)
    fi, si = np.flatnonzero(flags), np.flatnonzero(~flags)
    vals = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(fi, fi.size), rng.choice(si, si.size)])
        vals.append(statistic(flags[idx], score[idx]))
    lo, hi = np.quantile(vals, [0.025, 0.975])
    return float(lo), float(hi)


def interval(values: Sequence[float] | np.ndarray | Any, alpha: float = 0.05, seed: int = 0) -> CI:
    """The project's interval for a column of per-item values: Wilson for 0/1 values, else a bootstrap of the mean."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size and np.isin(v, (0.0, 1.0)).all():
        return proportion_ci(int(v.sum()), int(v.size), alpha)
    return bootstrap_mean_ci(v, alpha, seed=seed)


__all__ = ["bootstrap_ci", "bootstrap_mean_ci", "bootstrap_means", "stratified_bootstrap_ci", "CI", "interval", "mean_ci", "proportion_ci", "wilson_interval"]
