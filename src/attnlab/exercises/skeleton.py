"""The text of an exercise's skeleton file (task, equation, shapes, signature, a body that raises
NotImplementedError) and of its reference solution (the library's own code, by file and line)."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnlab.exercises.engine import Exercise

_WIDTH = 100


def _block(title: str, text: str) -> str:
    return f"{title}:\n" + textwrap.fill(text, _WIDTH, initial_indent="    ", subsequent_indent="    ")


def skeleton(ex: Exercise, path: str | Path) -> str:
    """The file ``attnlab exercises start`` writes: a docstring with the contract, then the empty function."""
    doc = "\n\n".join(
        [
            f"Exercise {ex.section} {ex.name}: {ex.title}",
            _block("Task", ex.task),
            _block("Equation", ex.equation),
            _block("Shapes", ex.shapes),
            _block("Returns", ex.returns),
            f"Check it:     attnlab check {ex.name} {path}\nSolution:     attnlab exercises solution {ex.name}",
        ]
    )
    body = f'    raise NotImplementedError("{ex.name}: not implemented yet")'
    return f'"""{doc}\n"""\n\n' + "\n".join(ex.imports) + f"\n\n\ndef {ex.signature}:\n{body}\n"


def _where(fn: Callable[..., Any]) -> str:
    """``attnlab/functional/sdpa.py:112``: the file (from the package root) and the first line of ``fn``."""
    file = Path(inspect.getsourcefile(fn) or "?")
    parts = file.parts
    shown = Path(*parts[parts.index("attnlab") :]) if "attnlab" in parts else file
    return f"{shown}:{inspect.getsourcelines(fn)[1]}"


def solution(ex: Exercise) -> str:
    """The reference solution: the function the checks hold correct (with the exercise's signature), then the
    library code it runs, each with its file and line."""
    lines = [f"{ex.name} ({ex.section}): {ex.title}", f"Equation: {ex.equation}", ""]
    shown: list[Callable[..., Any]] = [ex.reference, *(f for f in ex.solution if f is not ex.reference)]
    for fn in shown:
        module = getattr(fn, "__module__", "") or ""
        if fn is ex.reference:
            label = "the reference solution, with the exercise's signature"
        elif module.startswith("attnlab.exercises"):
            label = "the package's solution"
        else:
            label = "the library's implementation"
        lines.append(f"# --- {label}: {_where(fn)}")
        lines.append(textwrap.dedent(inspect.getsource(fn)).rstrip())
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
