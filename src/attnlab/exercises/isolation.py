"""``attnlab check``'s parent side: run the learner's file in a child process with a time limit, read back what
it reported, and turn every way it can end (passed, failed, hung, crashed, exited) into a :class:`Result`.

Nothing here imports torch: only the child (:mod:`attnlab.exercises.runner`) does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attnlab
from attnlab.exercises.result import CheckResult, Result

DEFAULT_TIMEOUT = 60.0
STARTUP = 120.0  # seconds for the child to import torch and the checks, before the learner's time starts


def check_file(name: str, path: str | Path, timeout: float = DEFAULT_TIMEOUT, seed: int | None = None) -> Result:
    """Every check of exercise ``name`` on the function of that name in the file at ``path``, in a child process
    killed after ``timeout`` seconds. The learner's file is only read."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="attnlab-check-") as tmp:
        events, output = Path(tmp) / "events.jsonl", Path(tmp) / "output.txt"
        cmd = [sys.executable, "-m", "attnlab.exercises.runner", name, str(path), str(events)]
        if seed is not None:
            cmd.append(str(int(seed)))
        with open(output, "wb") as out:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True
            )
            timed_out = not _wait(proc, events, timeout)
            status = proc.wait()
        result = _outcome(name, path, _read(events), status, timed_out, timeout, _tail(output))
    result.extra["file"] = str(path)
    return result


def _wait(proc: subprocess.Popen, events: Path, timeout: float) -> bool:
    """Wait for the child: up to STARTUP seconds to import torch and the checks (its "ready" event), then up to
    ``timeout`` for the learner's code. False (and the child killed) when a limit passed."""
    deadline = time.monotonic() + STARTUP
    ready = False
    while proc.poll() is None:
        if not ready and events.exists() and events.stat().st_size > 0:
            ready, deadline = True, time.monotonic() + timeout
        if time.monotonic() > deadline:
            _kill(proc)
            return False
        time.sleep(0.02)
    return True


def _env() -> dict[str, str]:
    """The child imports this very attnlab (a worktree's, say), whatever the installed one is."""
    env = dict(os.environ)
    root = str(Path(attnlab.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    return env


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the child and anything it started


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by the kill
            break
    return events


def _tail(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").strip() if path.exists() else ""
    return text.splitlines()[-1][:300] if text else ""


def _outcome(
    name: str, path: Path, events: list[dict[str, Any]], status: int, timed_out: bool, timeout: float, tail: str
) -> Result:
    for e in events:
        if e["event"] == "result":
            return result_from_json(e["result"])
        if e["event"] == "error":
            return Result(name, [], e["message"])
    started = [e["check"] for e in events if e["event"] == "start"]
    if timed_out:
        if not events:
            return Result(name, [], f"{name}: the check process did not import torch within {STARTUP:g} s")
        if not started:
            return Result(
                name, [], f"{path}: loading the file did not finish within {timeout:g} s (a loop at import time?)"
            )
        return Result(
            name,
            [],
            f"{name}: the check '{started[-1]}' did not finish within {timeout:g} s: an infinite loop, or a solution "
            "far too slow (--timeout raises the limit)",
        )
    how = f"was killed by signal {-status}" if status < 0 else f"ended with exit status {status}"
    during = f" during the check '{started[-1]}'" if started else " while loading the file"
    last = f"; its last output: {tail}" if tail else ""
    return Result(
        name,
        [],
        f"{name}: the check process {how}{during} before reporting: os._exit or a crash in the code under test{last}",
    )


def result_from_json(data: dict[str, Any]) -> Result:
    contract = data.get("contract")
    return Result(
        data["exercise"],
        [CheckResult(**c) for c in data["checks"]],
        data["error"],
        data["seed"],
        None if contract is None else CheckResult(**contract),
    )
