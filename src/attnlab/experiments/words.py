"""What the lab's words share: templates filled from a result, and the closing sentence of a verdict.

An experiment's setup paragraph and its headline table are templates: text with fields in Python's format syntax,
``{cfg.lag}`` (the config), ``{m[factor/rnn/h/init]:.3f}`` (a metric), ``{d[params][lstm]:,}`` (the data),
``{r[device_name]}`` (the result), and ``<name>`` for a value the words compute (``{m[acc/rnn/d=<last>]}``), filled
by :func:`fill` and :func:`table`. Every summary ends the same way
(:func:`closing`), so that "held" and "did not hold" are said alike (and the report can find them)."""

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


def fill(text: str, cfg: Any, r: Mapping[str, Any], **fields: Any) -> str:
    """A template filled from the config (``cfg``), the result (``r``; ``m`` its metrics, ``d`` its data) and
    ``fields``; its white space (line breaks, indentation) becomes single spaces. ``<name>`` is replaced by the field
    ``name`` first, so that a field can be part of a metric's key: ``{m[acc/rnn/d=<last>]:.2f}``."""
    for name, value in fields.items():
        text = text.replace(f"<{name}>", str(value))
    return " ".join(text.split()).format(cfg=cfg, r=r, m=r["metrics"], d=r["data"], **fields)


def table(text: str, cfg: Any, r: Mapping[str, Any], **fields: Any) -> list[tuple[str, str]]:
    """Headline rows from a template, one ``label | value`` per line (a line that starts with white space continues
    the one before), each filled as by :func:`fill`; a row that names a metric the result lacks is left out."""
    lines: list[str] = []
    for line in text.strip("\n").splitlines():
        if line[:1].isspace() and lines:
            lines[-1] += " " + line.strip()
        elif line.strip():
            lines.append(line.strip())
    rows = []
    for line in lines:
        label, _, value = line.partition(" | ")
        try:
            rows.append((fill(label, cfg, r, **fields), fill(value, cfg, r, **fields)))
        except KeyError:
            continue
    return rows


def spread(values: list[float], fmt: str = ".3f") -> str:
    """``min-max`` of a list of numbers, e.g. ``0.912-0.998``."""
    return f"{min(values):{fmt}}-{max(values):{fmt}}"


__all__ = ["closing", "failed", "fill", "spread", "table"]
