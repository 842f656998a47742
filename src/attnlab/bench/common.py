"""Timing helpers shared by the benchmarks: medians from ``torch.utils.benchmark``, and the machine."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from typing import Any

import torch
from torch.utils import benchmark


def median_seconds(fn: Callable[[], Any], min_run_time: float) -> float:
    """Median time of one call of ``fn`` (``blocked_autorange``: repeats until ``min_run_time`` is spent)."""
    fn()  # warm-up outside the measurement
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def side_by_side(
    ours: Callable[[], Any], theirs: Callable[[], Any], min_run_time: float, rounds: int = 2
) -> tuple[float, float]:
    """Medians of both, interleaved over ``rounds`` so drift on a shared machine hits both alike."""
    a, b = [], []
    for _ in range(rounds):
        a.append(median_seconds(ours, min_run_time))
        b.append(median_seconds(theirs, min_run_time))
    return sorted(a)[len(a) // 2], sorted(b)[len(b) // 2]


def machine() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
    }
