"""What the lab's words share: the closing sentence of a verdict and the list of what failed, so that every
summary says "held" and "did not hold" the same way (and the report can find it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def failed(verdict: Mapping[str, Any]) -> list[str]:
    """The parts of a verdict that did not hold (False; None means not measured)."""
    return [name for name, ok in verdict.items() if ok is False]


def closing(held: bool | None, verdict: Mapping[str, Any], held_text: str = "Every part of the claim held.") -> str:
    """The last sentence of a summary: ``held_text`` when the claim held, the failed parts when it did not."""
    if held is None:
        return "The claim could not be measured here."
    if held:
        return held_text
    return "Not every part held: " + ", ".join(failed(verdict)) + "."


def spread(values: list[float], fmt: str = ".3f") -> str:
    """``min-max`` of a list of numbers, e.g. ``0.912-0.998``."""
    return f"{min(values):{fmt}}-{max(values):{fmt}}"


__all__ = ["closing", "failed", "spread"]
