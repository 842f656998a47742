"""attnlab.measure.peak_memory_bytes: the most tensor bytes held at once during a call, whatever came before."""

import pytest
import torch

from attnlab.functional import scaled_dot_product_attention
from attnlab.measure import peak_memory_bytes

MIB = 2**20


def test_a_fresh_block_counts_its_bytes():
    assert peak_memory_bytes(lambda: torch.ones(16 * MIB // 4)) == 16 * MIB


def test_blocks_held_together_add_up_and_blocks_in_turn_do_not():
    def together():
        a = torch.ones(MIB // 4)
        b = torch.ones(MIB // 4)
        return a + b  # three 1 MiB blocks live at once

    def in_turn():
        for _ in range(5):
            torch.ones(MIB // 4)  # each freed before the next: RSS would count every page any of them touched

    assert peak_memory_bytes(together) == 3 * MIB
    assert peak_memory_bytes(in_turn) == MIB


def test_memory_freed_before_the_call_counts_again_when_reused():
    x = torch.ones(8 * MIB // 4)
    del x  # glibc keeps this block for reuse; reusing it must still count
    assert peak_memory_bytes(lambda: torch.ones(8 * MIB // 4)) == 8 * MIB


def test_freeing_what_existed_before_never_reads_below_zero():
    held = [torch.ones(MIB // 4)]
    assert peak_memory_bytes(held.clear) == 0


def test_the_backward_is_counted():
    w = torch.randn(256, 256, requires_grad=True)
    x = torch.randn(1024, 256)

    def step():
        (x @ w).square().sum().backward()

    # at least the (1024, 256) product saved for the backward and its gradient: 1 MiB each
    assert peak_memory_bytes(step) >= 2 * MIB


def test_the_same_call_reads_the_same_after_other_work():
    """The CI failure this replaced: RSS-based readings of chunked attention moved by megabytes once a training
    step had fragmented the heap (slope 1.5 where the memory is linear)."""
    q, k, v = (torch.randn(1, 1, 2048, 16, requires_grad=True) for _ in range(3))

    def forward():
        with torch.no_grad():
            return scaled_dot_product_attention(q, k, v, impl="chunked")

    def train():
        out = scaled_dot_product_attention(q, k, v, impl="chunked")
        torch.autograd.grad(out, (q, k, v), torch.ones_like(out))

    first = peak_memory_bytes(forward)
    for _ in range(3):
        train()
    assert peak_memory_bytes(forward) == first


def test_an_error_in_the_call_propagates_and_stops_the_profiler():
    def boom():
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        peak_memory_bytes(boom)
    assert not torch._C._autograd._profiler_enabled()
    assert peak_memory_bytes(lambda: torch.ones(MIB // 4)) == MIB  # and the next measure works
