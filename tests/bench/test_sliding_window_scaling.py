"""Sliding-window attention through the chunked SDPA grows linearly in n: its peak memory (measured, the bench's
measure) and its work (floating-point operations counted by torch's FlopCounterMode, the machine-independent
stand-in for time: tests never assert wall-clock). Beside each, the quadratic alternative at the same sizes, so
the measure is seen to tell them apart. The bench (``attnlab bench attention-memory``) runs the same function at
n = 32768 and 65536 with w = 1024 and reports memory and time slopes."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from attnlab.bench.attention_memory import window_markdown, window_scaling
from attnlab.functional import AttentionMask, scaled_dot_product_attention
from attnlab.measure import peak_memory_bytes

pytestmark = pytest.mark.usefixtures("one_thread")


def train_step(n: int, mask: AttentionMask, impl: str, heads: int = 2, hs: int = 16):
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, heads, n, hs, requires_grad=True) for _ in range(3))

    def step():
        out = scaled_dot_product_attention(q, k, v, mask, impl=impl)
        torch.autograd.grad(out, (q, k, v), torch.ones_like(out))

    return step


def slope(a: float, b: float, n1: int, n2: int) -> float:
    return math.log(b / a) / math.log(n2 / n1)


def test_memory_slope_of_chunked_sliding_window_is_at_most_linear():
    result = window_scaling((1024, 2048), 64, heads=2, head_size=16)
    assert result["memory_slope"] <= 1.1
    naive = [
        peak_memory_bytes(train_step(n, AttentionMask(causal="upper_left", window=64), "naive")) for n in (1024, 2048)
    ]
    assert slope(*naive, 1024, 2048) >= 1.8  # the (T, S) matrices of the naive form: quadratic
    assert "| 2048 |" in window_markdown(result)


def test_work_of_chunked_sliding_window_is_linear_and_full_causal_is_not():
    """Key tiles left of every query's window are skipped: the FLOPs (forward + backward) grow as n w, not n^2."""

    def flops(n: int, window: int | None) -> int:
        with FlopCounterMode(display=False) as counter:
            train_step(n, AttentionMask(causal="upper_left", window=window), "chunked", heads=1)()
        return counter.get_total_flops()

    window = [flops(n, 64) for n in (2048, 4096)]
    full = [flops(n, None) for n in (2048, 4096)]
    assert slope(*window, 2048, 4096) <= 1.2
    assert slope(*full, 2048, 4096) >= 1.8
