"""Measuring helpers shared by benchmarks and experiments: median times, peak memory, the machine.

Peak memory on the CPU is the process's real resident memory: the kernel's high-water mark (``VmHWM``) is reset
through ``/proc/self/clear_refs`` before the call; glibc is told to serve every block of 64 KiB or more with
``mmap`` (``mallopt(M_MMAP_THRESHOLD)``) and to return its heap's free pages (``malloc_trim``) first, so memory
freed earlier cannot be reused without counting (and afterwards set back to glibc's own steady state, see
``_counting_malloc``); the peak is ``VmHWM`` after the call minus ``VmRSS`` before it.
On CUDA it is the allocator's peak.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import platform
import statistics
from collections.abc import Callable
from typing import Any

import torch
from torch.utils import benchmark


def median_seconds(fn: Callable[[], Any], min_run_time: float) -> float:
    """Median time of one call of ``fn`` (``blocked_autorange``: repeats until ``min_run_time`` is spent)."""
    fn()  # warm-up outside the measurement
    # Timer defaults to one thread; measure with the threads the process actually uses.
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def side_by_side(
    ours: Callable[[], Any], theirs: Callable[[], Any], min_run_time: float, rounds: int = 2
) -> tuple[float, float]:
    """Medians of both, interleaved over ``rounds`` so drift on a shared machine hits both alike: each round
    takes one median per side, and the result is the median of the rounds (the mean of the middle two for an
    even count)."""
    a, b = [], []
    for _ in range(rounds):
        a.append(median_seconds(ours, min_run_time))
        b.append(median_seconds(theirs, min_run_time))
    return statistics.median(a), statistics.median(b)


def timing_row(t_ours: float, t_torch: float, **keys: Any) -> dict[str, Any]:
    """A benchmark table row: ``keys`` and the two medians in ms with their ratio ours / torch."""
    return {
        **keys,
        "ours_ms": round(t_ours * 1e3, 3),
        "torch_ms": round(t_torch * 1e3, 3),
        "ratio": round(t_ours / t_torch, 3),
    }


def machine() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
    }


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc's own ceiling for its dynamic mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit), and the trim
# threshold it pairs with it (twice the mmap threshold): the state a process reaches by itself after freeing a
# few large blocks.
_GLIBC_MMAP_MAX = 32 << 20
_libc = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.mallopt, _libc.malloc_trim  # noqa: B018 (glibc only)
        except (OSError, AttributeError):  # not glibc: the measure may then under-count reused heap memory
            _libc = False
    return _libc


@contextlib.contextmanager
def _counting_malloc():
    """While measuring: serve blocks >= 64 KiB with mmap and hand the heap's free pages back to the system
    (``malloc_trim``) first, so that memory freed before the call cannot be reused without counting again.

    Setting a threshold turns glibc's dynamic one off for good, and a 64 KiB threshold left in place makes every
    later large allocation of the process fresh memory, page-faulted at first use: one measure used to slow the
    LSTM training step of ``bench rnn`` that followed from 57 to 67 ms (torch.nn's from 47 to 59 ms). On exit the
    thresholds go to :data:`_GLIBC_MMAP_MAX` and twice it, the state the dynamic threshold settles in by itself
    (three runs after the change: 46 -> 46, 52 -> 49 and 48 -> 47 ms)."""
    libc = _glibc()
    if libc:
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 16)
        libc.malloc_trim(0)
    try:
        yield
    finally:
        if libc:
            libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_MMAP_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, 2 * _GLIBC_MMAP_MAX)


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_memory_bytes(fn: Callable[[], Any], device: str = "cpu", repeats: int = 2) -> int:
    """Extra memory at the peak of ``fn()`` above what was in use before it (the smallest of ``repeats``)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    if not os.path.exists("/proc/self/clear_refs"):
        raise RuntimeError("peak memory on the CPU needs Linux's /proc/self/clear_refs")
    peaks = []
    for _ in range(repeats):
        gc.collect()
        with _counting_malloc():
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak resident set size (VmHWM) to the current one
            base = _status_bytes("VmRSS:")
            fn()
            peaks.append(_status_bytes("VmHWM:") - base)
    return max(0, min(peaks))
