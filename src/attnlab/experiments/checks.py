"""Validation of experiment configs: each check raises ValueError naming the field, what was expected and what
came (written once here, used by every ``Config.__post_init__``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ints(cfg: Any, names: Iterable[str], minimum: int = 1) -> None:
    """Each named field is an integer >= ``minimum``."""
    for name in names:
        value = getattr(cfg, name)
        if not _is_int(value) or value < minimum:
            raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def positive(cfg: Any, names: Iterable[str]) -> None:
    """Each named field is a finite number > 0."""
    for name in names:
        value = getattr(cfg, name)
        if not _is_number(value) or not 0 < value < math.inf:
            raise ValueError(f"{name}: expected a positive finite number, got {value!r}")


def fractions(cfg: Any, names: Iterable[str], *, below_one: bool = False) -> None:
    """Each named field is a number in (0, 1] (``below_one``: in (0, 1))."""
    interval = "(0, 1)" if below_one else "(0, 1]"
    for name in names:
        value = getattr(cfg, name)
        if not _is_number(value) or not 0 < value <= 1 or (below_one and value == 1):
            raise ValueError(f"{name}: expected a number in {interval}, got {value!r}")


def increasing(name: str, values: Any, *, minimum: int = 2, low: float = -math.inf, high: float = math.inf) -> None:
    """``values`` is a tuple of at least ``minimum`` strictly increasing numbers in ``[low, high]`` (integers when
    ``low`` is an integer, e.g. lengths)."""
    kind = _is_int if _is_int(low) else _is_number
    if (
        not isinstance(values, tuple)
        or len(values) < minimum
        or any(not kind(v) or not low <= v <= high for v in values)
        or list(values) != sorted(set(values))
    ):
        where = "" if (low, high) == (-math.inf, math.inf) else f" in [{low:g}, {high:g}]"
        raise ValueError(f"{name}: expected at least {minimum} strictly increasing numbers{where}, got {values!r}")


def choice(name: str, value: Any, options: Sequence[Any]) -> None:
    """``value`` is one of ``options``."""
    if value not in options:
        raise ValueError(f"{name}: expected one of {', '.join(map(str, options))}, got {value!r}")


def choices(name: str, values: Any, options: Sequence[Any], minimum: int = 1) -> None:
    """``values`` is a tuple of at least ``minimum`` distinct names from ``options``."""
    if (
        not isinstance(values, tuple)
        or len(values) < minimum
        or any(v not in options for v in values)
        or len(set(values)) != len(values)
    ):
        raise ValueError(f"{name}: expected at least {minimum} distinct names from {tuple(options)}, got {values!r}")


def multiple(name: str, value: int, of: int, of_name: str) -> None:
    """``value`` is a multiple of ``of`` (e.g. a width divisible by the number of heads)."""
    if value % of:
        raise ValueError(f"{name}: expected a multiple of {of_name}={of}, got {value}")


__all__ = ["choice", "choices", "fractions", "increasing", "ints", "multiple", "positive"]
