"""The learner's status per exercise, known from files alone: the exercise's file in the folder (``NAME.py`` from
``attnlab exercises start``) and the last ``attnlab check`` of it, recorded beside it in ``.attnlab-status.json``
with the file's sha256 at that moment (so an edit since the last check shows)."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

from attnlab.exercises.result import Result
from attnlab.fileio import write_json

DEFAULT_DIR = Path("attnlab-exercises")
STATUS_FILE = ".attnlab-status.json"


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(path: Path, result: Result) -> None:
    """Remember this check of ``path`` beside it (best effort: a folder we cannot write keeps no status)."""
    data = read(path.parent)
    data[result.exercise] = {
        "file": path.name,
        "sha256": _hash(path),
        "passed": result.passed,
        "checks_passed": sum(c.passed for c in result.checks),
        "checks": len(result.checks),
        "error": result.error,
        "checked_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):
        write_json(path.parent / STATUS_FILE, data)


def status(name: str, directory: Path) -> str:
    """not started | started | edited since last check | passed | failing (n/m checks) | failing (does not run)."""
    rec = read(directory).get(name)
    path = directory / (rec["file"] if isinstance(rec, dict) and "file" in rec else f"{name}.py")
    if not path.is_file():
        return "not started"
    if not isinstance(rec, dict):
        return "started"
    if rec.get("sha256") != _hash(path):
        return "edited since last check"
    if rec.get("passed"):
        return "passed"
    if rec.get("error"):
        return "failing (does not run)"
    return f"failing ({rec.get('checks_passed', 0)}/{rec.get('checks', 0)} checks)"
