"""Files written atomically: a temp file in the target's folder, flushed to disk, then ``os.replace`` over the
target, so a reader (or a run killed mid-write) sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temp path beside ``path`` to write; on success it replaces ``path``, on failure it is removed.
    Temp files left by a process killed during an earlier write are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results and checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_file_path(path: str | os.PathLike[str], name: str = "--out", example: str = "out.html") -> Path:
    """A path a file may be written to (an existing file is replaced); a folder there, or a file in the way of
    its folder, is a ValueError naming ``name``: nothing a user made is replaced by a file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{name}: {path} is a folder; expected a file path such as {path / example}")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{name}: {parent} is a file, not a folder; cannot write {path}")
    return path


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON atomically (NaN and infinity are refused: JSON has neither)."""
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, allow_nan=False)
        f.write("\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
