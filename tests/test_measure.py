"""attnlab.measure: the peak-memory measure counts what a call allocates and leaves malloc as it found it."""

import os
import resource

import pytest
import torch

from attnlab.measure import peak_memory_bytes

linux = pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="peak memory needs Linux")


@linux
def test_peak_counts_a_fresh_block():
    mib = 2**20
    peak = peak_memory_bytes(lambda: torch.ones(16 * mib // 4))  # 16 MiB, touched
    assert 15 * mib <= peak <= 20 * mib


@linux
def test_after_a_measure_freed_blocks_are_reused_not_page_faulted_again():
    """A 1 MiB block freed and allocated again 20 times, twice: with the measure's 64 KiB mmap threshold left in
    place, each would be fresh memory every time (256 page faults each, 5120 per round)."""
    peak_memory_bytes(lambda: None)

    def touch():
        torch.empty(2**18).fill_(1.0)  # 1 MiB

    faults = []
    for _ in range(2):  # the first round may refault the heap that malloc_trim handed back; the second reuses
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            touch()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    assert faults[1] < 20 * 256 // 4, faults
