"""Seed statistics for ``corpusmill ablate`` (no dependencies beyond the standard library).

- :func:`mean_std`: the mean and the sample standard deviation (n - 1) over seeds;
- :func:`paired_t`: Student's paired t-test of two variants run with the same seeds (the same seed gives
  both runs the same initialisation and data order, so the per-seed differences are what the data
  choice changed): t, degrees of freedom and the two-sided p-value, from the regularized incomplete beta
  function (Numerical Recipes' continued fraction), so scipy is not needed.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def _betacf(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def paired_t(a: Sequence[float], b: Sequence[float]) -> Optional[dict]:
    """Paired t-test of ``b - a`` (same seeds, in the same order): mean difference, its standard deviation,
    t, df and the two-sided p; None with fewer than two pairs. Identical differences (no spread) give
    p 0 when they are not all zero, 1 when they are."""
    if len(a) != len(b):
        raise ValueError("paired_t: the two variants need the same seeds")
    d = [y - x for x, y in zip(a, b)]
    n = len(d)
    if n < 2:
        return None
    mean, sd = mean_std(d)
    if sd == 0:
        return {
            "mean_diff": mean,
            "sd_diff": 0.0,
            "t": math.inf if mean else 0.0,
            "df": n - 1,
            "p": 0.0 if mean else 1.0,
        }
    t = mean / (sd / math.sqrt(n))
    return {"mean_diff": mean, "sd_diff": sd, "t": t, "df": n - 1, "p": t_two_sided_p(t, n - 1)}
