"""``attnlab bench exercises``: the seconds ``attnlab check NAME FILE`` takes for each exercise, run as a learner
runs it (a fresh ``python -m attnlab check`` process, which checks the file in its own child process), on a file
holding the reference solution. The bar: at most 10 s per exercise on 2 cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attnlab
from attnlab import exercises
from attnlab._checks import resolve_device
from attnlab.measure import machine

BAR_SECONDS = 10.0
QUICK = ("causal_mask", "scaled_dot_product_attention")


def _solution_file(name: str, folder: Path) -> Path:
    """A learner's file whose function is the reference solution (imported from the package)."""
    ref = exercises.get(name).reference
    path = folder / f"{name}.py"
    path.write_text(f"from {ref.__module__} import {ref.__name__} as {name}  # noqa: F401\n", encoding="utf-8")
    return path


def time_check(name: str, folder: Path) -> dict[str, Any]:
    path = _solution_file(name, folder)
    env = dict(os.environ)
    root = str(Path(attnlab.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "attnlab", "check", name, str(path), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
    )
    seconds = time.perf_counter() - start
    result = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {"passed": False, "checks": []}
    return {
        "exercise": name,
        "seconds": seconds,
        "checks": len(result["checks"]),
        "passed": bool(result["passed"]) and proc.returncode == 0,
    }


def run(*, quick: bool = False, device: str = "cpu", names: list[str] | None = None) -> dict[str, Any]:
    """``device``: the checks run on the CPU (a learner's laptop); any other device is refused."""
    if resolve_device(device) != "cpu":
        raise ValueError(f"--device: the exercise checks run on the CPU; use cpu, got {device!r}")
    selected = list(names) if names else (list(QUICK) if quick else exercises.names())
    with tempfile.TemporaryDirectory(prefix="attnlab-bench-exercises-") as tmp:
        rows = [time_check(name, Path(tmp)) for name in selected]
    return {"quick": quick, "bar_seconds": BAR_SECONDS, "machine": machine(), "rows": rows}


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        "`attnlab check NAME FILE` on the reference solution, one fresh process each "
        f"(bar: {result['bar_seconds']:g} s)",
        "",
        "| exercise | checks | passed | seconds | within the bar |",
        "|---|---:|---|---:|---|",
    ]
    for r in result["rows"]:
        within = "yes" if r["seconds"] <= result["bar_seconds"] else "NO"
        lines.append(
            f"| {r['exercise']} | {r['checks']} | {'yes' if r['passed'] else 'NO'} | {r['seconds']:.2f} | {within} |"
        )
    return "\n".join(lines)
