"""The rolling buffer (Mistral 7B's cache for a sliding window): decoding through it equals the full windowed
attention position by position, past the window and past every wrap of the buffer, in one-token steps and in
chunks of any size; its memory stays w + 1 positions; its errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from attnlab.functional import AttentionMask, scaled_dot_product_attention
from attnlab.nn.rolling_cache import RollingBuffer, RollingKVCache, check_cache_mask

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = {"rtol": 1e-10, "atol": 1e-12}


def randn(*shape: int, dtype=torch.float64, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def chunks_of(sizes, total):
    """Split ``total`` positions into the given chunk sizes, repeating the last size to the end."""
    out, start, i = [], 0, 0
    while start < total:
        n = min(sizes[min(i, len(sizes) - 1)], total - start)
        out.append((start, start + n))
        start, i = start + n, i + 1
    return out


SCHEDULES = {
    "one-by-one": [1],
    "prompt-then-ones": [5, 1],
    "chunks-of-3": [3],
    "chunk-longer-than-the-buffer": [2, 1, 1, 9, 1, 7],
}


@pytest.mark.parametrize("window", [1, 3, 4])
@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("impl", ["naive", "chunked", "torch"])
def test_decoding_equals_the_full_windowed_attention(window, schedule, impl, device):
    """Keys/values ``(B, Hkv, N, hs)`` fed to the cache in pieces; each piece's queries attend to what the cache
    returns under AttentionMask(lower_right, window): the outputs equal one windowed causal attention over all N
    positions, N = 4 (w + 1) + 3 so the buffer wraps several times. Heads grouped (8 query heads, 2 kv heads)."""
    B, Hq, Hkv, hs = 2, 8, 2, 8
    N = 4 * (window + 1) + 3
    q, k, v = randn(B, Hq, N, hs, seed=0), randn(B, Hkv, N, hs, seed=1), randn(B, Hkv, N, hs, seed=2)
    q, k, v = (x.to(device) for x in (q, k, v))
    mask = AttentionMask(causal="lower_right", window=window)
    full = scaled_dot_product_attention(q, k, v, mask, enable_gqa=True, impl=impl)
    cache = RollingKVCache(window)
    outs = []
    for a, b in chunks_of(SCHEDULES[schedule], N):
        k_all, v_all = cache.update(k[:, :, a:b], v[:, :, a:b])
        assert k_all.shape[2] <= window + (b - a)  # never more than the window before the piece, plus the piece
        outs.append(scaled_dot_product_attention(q[:, :, a:b], k_all, v_all, mask, enable_gqa=True, impl=impl))
        assert cache.length == b
    torch.testing.assert_close(torch.cat(outs, dim=2), full, **F64)


def test_memory_is_w_plus_one_positions_however_long():
    w, B, H, hs = 5, 2, 3, 4
    cache = RollingKVCache(w)
    for t in range(50):
        cache.update(randn(B, H, 1, hs, seed=t, dtype=torch.float32), randn(B, H, 1, hs, seed=t, dtype=torch.float32))
        assert cache.nbytes() == 2 * B * H * (w + 1) * hs * 4
    assert cache.length == 50


def test_buffer_slots_hold_positions_mod_w_plus_one():
    """A known-answer check of the layout: position p sits in slot p mod (w + 1)."""
    buf = RollingBuffer(3)
    for p in range(10):
        buf.update(torch.full((1, 1, 1), float(p)))
    assert buf._buf.flatten().tolist() == [8.0, 9.0, 6.0, 7.0]  # 8 % 4 = 0, 9 % 4 = 1, 6 % 4 = 2, 7 % 4 = 3
    # several new positions: the window before them in time order, then the new ones
    out = buf.update(torch.tensor([[[10.0], [11.0]]]))
    assert out.flatten().tolist() == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert buf._buf.flatten().tolist() == [8.0, 9.0, 10.0, 11.0]


def test_reset_starts_a_new_sequence():
    cache = RollingKVCache(2)
    cache.update(randn(1, 1, 4, 2), randn(1, 1, 4, 2))
    cache.reset()
    assert cache.length == 0 and cache.nbytes() == 0
    k, _ = cache.update(randn(1, 1, 3, 2, seed=5), randn(1, 1, 3, 2, seed=6))
    torch.testing.assert_close(k, randn(1, 1, 3, 2, seed=5), **F64)


def test_errors():
    with pytest.raises(ValueError, match="window: expected an integer >= 1, got 0"):
        RollingKVCache(0)
    cache = RollingKVCache(2)
    cache.update(randn(1, 2, 1, 4), randn(1, 2, 1, 4))
    with pytest.raises(ValueError, match=r"x: expected leading dims \(1, 2\) and 4 features"):
        cache.update(randn(1, 3, 1, 4), randn(1, 3, 1, 4))
    with pytest.raises(ValueError, match="v: expected the leading dims and length of k"):
        cache.update(randn(1, 2, 1, 4), randn(1, 2, 2, 4))
    for bad in (None, AttentionMask(causal="lower_right"), AttentionMask(causal="upper_left", window=2)):
        with pytest.raises(ValueError, match=r"attn_mask: a rolling cache of window 2 needs AttentionMask"):
            check_cache_mask(cache, bad)
    check_cache_mask(cache, AttentionMask(causal="lower_right", window=2))  # the one it serves
    check_cache_mask(object(), None)  # a cache without a window takes any mask
