"""Measuring helpers shared by benchmarks and experiments: median times, peak memory, the machine.

Peak memory is tensor memory, on the CPU as on CUDA: the most bytes that tensors allocated during a call hold at
once (see :func:`peak_memory_bytes`).
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
from collections.abc import Callable
from typing import Any

import torch
from torch._C._profiler import ProfilerActivity, ProfilerConfig, ProfilerState, RecordScope, _ExperimentalConfig
from torch.autograd import _disable_profiler, _enable_profiler, _prepare_profiler
from torch.utils import benchmark

# Kineto prints a line on stderr at every profiler start and stop (levels below 6 keep them); the peak-memory
# measure starts one per call. A level set by the user is kept.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")


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


def _cpu_allocation_events(fn: Callable[[], Any]) -> list[int]:
    """The signed sizes of every CPU tensor allocation (+) and free (-) during ``fn()``, in order.

    The profiler is enabled for the user scope only, so it records no operator events, just the allocator's
    reports (``profile_memory``): ~10% overhead on chunked attention, against ~70% with operator events."""
    config = ProfilerConfig(
        ProfilerState.KINETO,
        False,  # report_input_shapes
        True,  # profile_memory
        False,  # with_stack
        False,  # with_flops
        False,  # with_modules
        _ExperimentalConfig(),
    )
    activities = {ProfilerActivity.CPU}
    _prepare_profiler(config, activities)
    _enable_profiler(config, activities, {RecordScope.USER_SCOPE})
    try:
        fn()
    finally:
        events = _disable_profiler().events()
    memory = sorted((e for e in events if e.name() == "[memory]"), key=lambda e: e.start_ns())
    return [e.nbytes() for e in memory]


def peak_memory_bytes(fn: Callable[[], Any], device: str = "cpu") -> int:
    """Extra tensor memory at the peak of ``fn()``: the most bytes held at once by tensors it allocated, above
    what was held before the call.

    On CUDA this is the caching allocator's peak. On the CPU it is the same quantity, summed from the allocator's
    allocation and free reports (``torch.profiler``'s ``profile_memory``), so it is exact and does not depend on
    what the process did before. (It used to be the process's resident memory, ``VmHWM``, which counts every page
    touched: after earlier work had fragmented glibc's heap, successive blocks landed on different free pages and
    chunked attention's ~1.5 MiB read anywhere from 1.4 to 4.8 MiB.) Memory that libraries take outside torch's
    allocator (oneDNN and MKL scratch, Python objects) is not counted."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    if not torch.autograd.kineto_available():
        raise RuntimeError("peak memory on the CPU needs a torch built with the Kineto profiler (USE_KINETO)")
    held = peak = 0
    for nbytes in _cpu_allocation_events(fn):
        held += nbytes
        peak = max(peak, held)
    return peak
