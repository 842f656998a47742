"""Least-squares fits the lab reads its claims from: a line, a power law's exponent on log-log axes, a geometric
rate per step, and a line in exact rational arithmetic (for counts that must lie on it exactly)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``y = slope x + intercept``."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    return slope, my - slope * mx


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of log y on log x (the exponent p of y ~ x^p), over the points with y > 0;
    None with fewer than 2 such points."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if y and y > 0]
    if len(pts) < 2:
        return None
    return linear_fit([p[0] for p in pts], [p[1] for p in pts])[0]


def per_step_factor(log10_values: Sequence[float]) -> float:
    """``10^slope`` of the least-squares line through ``log10 y`` against the step 0, 1, 2, ...: the geometric
    rate per step of a quantity that decays (or grows) as ``y_d ~ factor^d``."""
    return 10 ** linear_fit(range(len(log10_values)), log10_values)[0]


def exact_line(xs: list[int], ys: list[int]) -> tuple[Fraction, Fraction, list[Fraction]]:
    """Least-squares ``y = slope x + intercept`` in exact rational arithmetic; returns slope, intercept and the
    residuals ``y - (slope x + intercept)`` (all zero when the points lie on one line)."""
    n = len(xs)
    mx, my = Fraction(sum(xs), n), Fraction(sum(ys), n)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    intercept = my - slope * mx
    return slope, intercept, [y - (slope * x + intercept) for x, y in zip(xs, ys, strict=True)]


__all__ = ["exact_line", "linear_fit", "loglog_slope", "per_step_factor"]
