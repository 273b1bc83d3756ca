"""Statistics over seeds: the Student-t confidence interval every table, figure and timing uses."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special


def t_interval(values: np.ndarray, confidence: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and half-width of the Student-t confidence interval (n - 1 degrees of freedom) along `axis`:
    each column of a [seeds, steps] matrix at once. With fewer than two values the half-width is NaN."""
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[axis]
    mean = x.mean(axis=axis)
    if n < 2:
        return mean, np.full_like(mean, math.nan)
    sem = x.std(axis=axis, ddof=1) / math.sqrt(n)
    return mean, t_quantile(0.5 + confidence / 2, n - 1) * sem


def t_quantile(q: float, df: int) -> float:
    """The Student-t quantile: what `scipy.stats.t.ppf(q, df)` returns (it computes exactly this,
    `scipy.special.stdtrit`), without importing scipy.stats (about a second, on every `sombench table`)."""
    return special.stdtrit(df, q)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval (n - 1 degrees of freedom).

    With one value the half-width is NaN: one seed says nothing about the spread.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return math.nan, math.nan
    mean, half = t_interval(x, confidence)
    return float(mean), float(half)
