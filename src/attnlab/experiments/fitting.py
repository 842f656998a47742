"""Least-squares fits shared by the experiments: a line, and a power law's exponent on log-log axes."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
