"""Benchmarks run by ``attnlab bench``: our modules against the PyTorch built-ins, side by side in one process.

Each benchmark reports medians and the ratio ours / torch (below 1 means we are faster). Speed never goes
into tests; the figures are recorded in ``docs/benchmarks.md`` with the command and the machine.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {"rnn": "rnn"}


def names() -> list[str]:
    return list(_MODULES)


def _module(name: str):
    if name not in _MODULES:
        raise ValueError(f"benchmark: expected one of {', '.join(_MODULES)}; got {name!r}")
    return importlib.import_module(f"attnlab.bench.{_MODULES[name]}")


def run(name: str, *, quick: bool = False) -> dict[str, Any]:
    """Run one benchmark; ``quick`` trims sizes and repeats (a smoke run, not for recorded figures)."""
    return _module(name).run(quick=quick)


def to_markdown(name: str, result: dict[str, Any]) -> str:
    return _module(name).to_markdown(result)
