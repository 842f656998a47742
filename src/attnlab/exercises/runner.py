"""The child process of ``attnlab check``: load the learner's file, run the checks, and stream what happens.

``python -m attnlab.exercises.runner NAME FILE EVENTS [SEED]`` appends one JSON object per line to EVENTS:
``{"event": "ready"}`` once torch and the checks are imported (the time limit counts from there),
``{"event": "start", "check": ...}`` before each check, then either ``{"event": "result", "result": {...}}`` or
``{"event": "error", "message": ...}`` (a file that does not load). The parent (:mod:`attnlab.exercises.isolation`)
reads them after the process ends or is killed at the time limit, so the last "start" without a result names
the check that hung. The learner's prints go to the process's stdout, never into EVENTS.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


class LoadError(Exception):
    """The learner's file cannot give the function: the message is the one line to show."""


def load(name: str, path: str | Path) -> Callable[..., Any]:
    """The function ``name`` from the file at ``path``; a :class:`LoadError` names file and line otherwise."""
    path = Path(path)
    source = path.read_text(encoding="utf-8", errors="replace")
    try:
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise LoadError(f"{path}:{exc.lineno}: SyntaxError: {exc.msg}") from None
    spec = importlib.util.spec_from_file_location(f"attnlab_learner_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))  # as `python FILE` would: helpers beside it import
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        raise LoadError(f"{_line(exc, path)}: the file called sys.exit({exc.code!r}) while being imported") from None
    except Exception as exc:
        raise LoadError(f"{_line(exc, path)}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    fn = getattr(module, name, None)
    if fn is None:
        defined = sorted(
            k for k, v in vars(module).items() if callable(v) and getattr(v, "__module__", "") == module.__name__
        )
        found = f"it defines {', '.join(defined)}" if defined else "it defines no function"
        raise LoadError(f"{path}: no function named {name} ({found})")
    if not callable(fn):
        raise LoadError(f"{path}: {name} is a {type(fn).__name__}, not a function")
    return fn


def _line(exc: BaseException, path: Path) -> str:
    """``path:LINE`` of the last traceback frame inside the learner's file (else just the path)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return f"{path}:{frames[-1].lineno}" if frames else str(path)


def main(argv: list[str]) -> None:
    name, path, events_path = argv[:3]
    seed = int(argv[3]) if len(argv) > 3 else None
    with open(events_path, "a", encoding="utf-8") as events:

        def emit(**event: Any) -> None:
            events.write(json.dumps(event) + "\n")
            events.flush()

        import torch

        torch.set_num_threads(1)  # tiny tensors: threads only add synchronisation
        from attnlab import exercises
        from attnlab.exercises.engine import run_checks

        exercises.get(name)
        emit(event="ready")  # the time limit starts here: importing torch is not the learner's time
        try:
            fn = load(name, path)
        except LoadError as exc:
            emit(event="error", message=str(exc))
        else:
            try:
                result = run_checks(exercises.get(name), fn, seed, on_start=lambda c: emit(event="start", check=c))
            except Exception as exc:  # a check that breaks on its own is attnlab's bug, not the learner's
                emit(
                    event="error",
                    message=f"{name}: internal error in a check ({type(exc).__name__}: {exc}); please report it",
                )
            else:
                emit(event="result", result=result.to_json())
    sys.stdout.flush()
    os._exit(0)  # threads the learner left running must not keep the process alive


if __name__ == "__main__":
    main(sys.argv[1:])
