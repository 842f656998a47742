"""Grouped-query attention in the one SDPA (``enable_gqa=True``): every implementation against torch's
``scaled_dot_product_attention(..., enable_gqa=True)`` and against the definition in its documentation (key and
value ``repeat_interleave``-d over the query heads of their group), forward and backward.

Shapes: B batch, Hq query heads, Hkv key/value heads (a divisor of Hq), T queries, S keys, hs head size.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.functional import AttentionMask, AttentionOutput, scaled_dot_product_attention
from attnlab.measure import peak_memory_bytes

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = {"rtol": 1e-10, "atol": 1e-12}
IMPLS = ["naive", "manual", "chunked", "torch", "auto"]
HEADS = [(6, 2), (4, 1), (3, 3), (8, 4)]  # (Hq, Hkv): GQA, MQA, MHA, GQA with pairs
SHAPES = {"T5-S9-hs40": (5, 9, 40), "T1-S7-hs16": (1, 7, 16), "T8-S8-hs24": (8, 8, 24)}


def randn(*shape: int, dtype=torch.float64, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def masks(kind: str, B: int, Hq: int, T: int, S: int, device="cpu"):
    """``(ours, torch's)``: an AttentionMask or tensor for us, the equivalent bool/None for torch."""
    pad = torch.rand(B, 1, S, generator=torch.Generator().manual_seed(3)) > 0.3
    pad[..., -1] = True  # every query keeps its last key (no empty rows: torch would give NaN)
    pad = pad.to(device)
    rows = torch.arange(T, device=device).unsqueeze(1) + S - T  # (T, 1): positions, bottom-right
    cols = torch.arange(S, device=device)
    if kind == "none":
        return None, None
    if kind == "causal":
        m = AttentionMask(causal="lower_right")
        return m, cols <= rows
    if kind == "window":
        m = AttentionMask(causal="lower_right", window=2)
        return m, (cols <= rows) & (cols >= rows - 2)
    if kind == "padding":
        return AttentionMask(key_padding=pad), pad.unsqueeze(-2)
    if kind == "dense-per-head":  # a bool (B, Hq, T, S) mask: every query head its own
        dense = torch.rand(B, Hq, T, S, generator=torch.Generator().manual_seed(4)) > 0.4
        dense[..., -1] = True
        dense = dense.to(device)
        return dense, dense
    raise AssertionError(kind)


def run(fn, q, k, v, g):
    out = fn(q, k, v)
    return (out, *torch.autograd.grad(out, (q, k, v), g))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("Hq", "Hkv"), HEADS, ids=[f"{a}q-{b}kv" for a, b in HEADS])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("mask", ["none", "causal", "window", "padding", "dense-per-head"])
def test_float64_equals_torch_gqa_and_the_repeat_definition(impl, Hq, Hkv, shape, mask, device):
    T, S, hs = SHAPES[shape]
    B = 2
    q = randn(B, Hq, T, hs, seed=0, device=device).requires_grad_()
    k = randn(B, Hkv, S, hs, seed=1, device=device).requires_grad_()
    v = randn(B, Hkv, S, hs + 3, seed=2, device=device).requires_grad_()
    g = randn(B, Hq, T, hs + 3, seed=5, device=device)
    ours_mask, torch_mask = masks(mask, B, Hq, T, S, device)
    G = Hq // Hkv
    ours = run(lambda q, k, v: scaled_dot_product_attention(q, k, v, ours_mask, enable_gqa=True, impl=impl), q, k, v, g)
    gqa = run(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, torch_mask, enable_gqa=True), q, k, v, g)
    repeat = run(  # torch's documented definition
        lambda q, k, v: F.scaled_dot_product_attention(
            q, k.repeat_interleave(G, -3), v.repeat_interleave(G, -3), torch_mask
        ),
        q, k, v, g,
    )  # fmt: skip
    for a, b, c in zip(ours, gqa, repeat, strict=True):
        torch.testing.assert_close(a, b, **F64)
        torch.testing.assert_close(a, c, **F64)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("mask", ["none", "causal", "window"])
def test_float32_equals_torch_gqa(impl, mask, device):
    B, Hq, Hkv, T, S, hs = 2, 8, 2, 13, 21, 40
    q = randn(B, Hq, T, hs, dtype=torch.float32, seed=0, device=device).requires_grad_()
    k = randn(B, Hkv, S, hs, dtype=torch.float32, seed=1, device=device).requires_grad_()
    v = randn(B, Hkv, S, hs, dtype=torch.float32, seed=2, device=device).requires_grad_()
    g = randn(B, Hq, T, hs, dtype=torch.float32, seed=5, device=device)
    ours_mask, torch_mask = masks(mask, B, Hq, T, S, device)
    ours = run(lambda q, k, v: scaled_dot_product_attention(q, k, v, ours_mask, enable_gqa=True, impl=impl), q, k, v, g)
    theirs = run(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, torch_mask, enable_gqa=True), q, k, v, g)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("impl", ["naive", "manual"])
@pytest.mark.parametrize("mask", ["none", "window", "dense-per-head"])
def test_weights_are_per_query_head(impl, mask):
    """The returned weights ``(B, Hq, T, S)`` are those of the repeated keys, query head by query head."""
    B, Hq, Hkv, T, S, hs = 2, 6, 2, 4, 6, 8
    q, k, v = randn(B, Hq, T, hs, seed=0), randn(B, Hkv, S, hs, seed=1), randn(B, Hkv, S, hs, seed=2)
    ours_mask, torch_mask = masks(mask, B, Hq, T, S)
    out = scaled_dot_product_attention(q, k, v, ours_mask, enable_gqa=True, impl=impl, return_weights=True)
    assert isinstance(out, AttentionOutput) and out.weights.shape == (B, Hq, T, S)
    scores = (q @ k.repeat_interleave(3, -3).transpose(-2, -1)) / hs**0.5  # (B, Hq, T, S)
    if torch_mask is not None:
        scores = scores.masked_fill(~torch_mask, float("-inf"))
    torch.testing.assert_close(out.weights, torch.softmax(scores, -1), **F64)


def test_decoding_reads_the_shared_keys_without_copying_them():
    """One query per head after a long cache (the decoding case, no mask): the G query heads of a group are folded
    into one matmul over their shared keys, so the call holds far less than the repeated keys and values would
    take (torch's definition materialises 2 * Hq * S * hs floats)."""
    Hq, Hkv, S, hs = 16, 1, 4096, 64
    q, k, v = (
        randn(1, Hq, 1, hs, dtype=torch.float32),
        randn(1, Hkv, S, hs, dtype=torch.float32),
        randn(1, Hkv, S, hs, dtype=torch.float32),
    )
    repeated_bytes = 2 * Hq * S * hs * 4
    for impl in ("naive", "chunked"):
        peak = peak_memory_bytes(lambda impl=impl: scaled_dot_product_attention(q, k, v, enable_gqa=True, impl=impl))
        assert peak < repeated_bytes / 8, (impl, peak, repeated_bytes)
    with torch.no_grad():
        ref = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        torch.testing.assert_close(scaled_dot_product_attention(q, k, v, enable_gqa=True, impl="naive"), ref)


def test_equal_heads_is_plain_attention():
    q, k, v = randn(2, 4, 3, 8, seed=0), randn(2, 4, 5, 8, seed=1), randn(2, 4, 5, 8, seed=2)
    for impl in IMPLS:
        torch.testing.assert_close(
            scaled_dot_product_attention(q, k, v, enable_gqa=True, impl=impl),
            scaled_dot_product_attention(q, k, v, impl=impl),
            **F64,
        )


def test_error_heads_that_do_not_divide():
    q, k, v = randn(1, 6, 3, 8), randn(1, 4, 5, 8), randn(1, 4, 5, 8)
    with pytest.raises(ValueError, match=r"key: expected a number of heads \(dim -3\) that divides query's 6"):
        scaled_dot_product_attention(q, k, v, enable_gqa=True)
    with pytest.raises(ValueError, match=r"value: expected 2 heads \(key's, dim -3\), got \(1, 3, 5, 8\)"):
        scaled_dot_product_attention(q, randn(1, 2, 5, 8), randn(1, 3, 5, 8), enable_gqa=True)
    with pytest.raises(ValueError, match=r"query: enable_gqa needs a heads dim"):
        scaled_dot_product_attention(randn(3, 8), randn(5, 8), randn(5, 8), enable_gqa=True)
    with pytest.raises(ValueError, match="batch dims do not broadcast"):  # without enable_gqa: as torch
        scaled_dot_product_attention(q, randn(1, 2, 5, 8), randn(1, 2, 5, 8))
