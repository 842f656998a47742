"""AttentionMask: causal in both alignments, sliding windows, key padding and dense masks, in every implementation.

The reference builds the boolean ``(..., T, S)`` matrix straight from the definitions (query i at position
``p_i = i`` top-left or ``i + S - T`` bottom-right; key j allowed iff ``j <= p_i``, ``j >= p_i - w`` with a window,
``key_padding[..., j]``, and the dense mask) and runs the float64 ``attention_ref`` of test_sdpa on it.

The comparisons run on every device of the ``device`` fixture (inputs, padding and the reference's matrix are built
on the CPU and moved; the reference runs on the same device); gradcheck and the memory test run on the CPU.
"""

from __future__ import annotations

import pytest
import torch
from test_sdpa import attention_ref, forward_backward, randn
from torch.autograd import gradcheck

from attnlab.functional import AttentionMask, scaled_dot_product_attention
from attnlab.functional.chunked import chunked_attention
from attnlab.measure import peak_memory_bytes

pytestmark = pytest.mark.usefixtures("one_thread")

IMPLS = ["naive", "manual", "chunked", "chunked:4x5", "torch", "auto"]
CASES = {  # name: (T, S, causal, window, padding?)
    "lower_right-T<S": (5, 11, "lower_right", None, False),
    "lower_right-T>S": (9, 4, "lower_right", None, False),
    "upper_left-T<S": (6, 10, "upper_left", None, False),
    "window2-lower_right": (7, 12, "lower_right", 2, False),
    "window3-upper_left": (12, 12, "upper_left", 3, False),
    "padding": (6, 9, None, None, True),
    "padding-lower_right": (4, 9, "lower_right", None, True),
    "padding-window1": (9, 9, "upper_left", 1, True),
    "one-query-after-cache": (1, 13, "lower_right", None, False),
    "one-query-window": (1, 13, "lower_right", 4, False),
}


def reference_allowed(T, S, causal, window, padding):
    """The bool (B, 1, T, S) matrix from the definitions."""
    allowed = torch.ones(1, 1, T, S, dtype=torch.bool)
    if causal is not None:
        off = S - T if causal == "lower_right" else 0
        pos = torch.arange(T).unsqueeze(1) + off  # (T, 1)
        cols = torch.arange(S)
        allowed = allowed & (cols <= pos)
        if window is not None:
            allowed = allowed & (cols >= pos - window)
    if padding is not None:
        allowed = allowed & padding[:, :, None, :]  # (B, 1, 1, S)
    return allowed


def case_inputs(name, dtype=torch.float64, device="cpu"):
    T, S, causal, window, pad = CASES[name]
    q, k, v = (
        randn(2, 3, T, 16, dtype=dtype, seed=1, device=device),
        randn(2, 3, S, 16, dtype=dtype, seed=2, device=device),
        randn(2, 3, S, 8, dtype=dtype, seed=3, device=device),
    )
    padding = None
    if pad:
        padding = torch.ones(2, 1, S, dtype=torch.bool)
        padding[0, 0, S - 3 :] = False  # three padded keys in the first sequence
        padding[1, 0, :2] = False  # and two at the start of the second
    allowed = reference_allowed(T, S, causal, window, padding).to(device)
    padding = None if padding is None else padding.to(device)
    mask = AttentionMask(causal=causal, window=window, key_padding=padding)
    return (q, k, v), mask, allowed


def call(impl, q, k, v, mask):
    if impl.startswith("chunked:"):
        bq, bk = (int(n) for n in impl.split(":")[1].split("x"))
        return chunked_attention(q, k, v, mask, q.shape[-1] ** -0.5, 0.0, (2, 3), block_q=bq, block_k=bk)
    return scaled_dot_product_attention(q, k, v, mask, impl=impl)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", IMPLS)
def test_every_impl_matches_the_reference_forward_and_backward(impl, case, device):
    (q, k, v), mask, allowed = case_inputs(case, device=device)
    out, grads, g = forward_backward(lambda q, k, v: call(impl, q, k, v, mask), (q, k, v))
    ref, grads_ref, _ = forward_backward(lambda q, k, v: attention_ref(q, k, v, allowed)[0], (q, k, v), g)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    for got, want in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("impl", ["naive", "chunked", "torch"])
def test_float32_low_precision_paths_follow_the_same_mask(impl, device):
    (q, k, v), mask, allowed = case_inputs("padding-window1", torch.float32, device=device)
    ref = attention_ref(q, k, v, allowed)[0]
    for dtype in (torch.float32, torch.bfloat16):
        out = scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), mask, impl=impl)
        assert out.dtype == dtype
        tol = 1e-5 if dtype == torch.float32 else 3e-2
        torch.testing.assert_close(out.double(), ref, rtol=tol, atol=tol)


def test_gradcheck_chunked_lower_right_window_and_padding():
    (q, k, v), mask, _ = case_inputs("padding-lower_right")
    mask = AttentionMask(causal="lower_right", window=2, key_padding=mask.key_padding)
    leaves = [x[:1, :1].detach().requires_grad_() for x in (q, k, v)]
    mask1 = AttentionMask(causal="lower_right", window=2, key_padding=mask.key_padding[:1])
    assert gradcheck(lambda q, k, v: chunked_attention(q, k, v, mask1, 0.3, 0.0, (1, 1), 2, 3), leaves)


def test_one_query_after_a_cache_builds_no_mask():
    """Bottom-right, one query sees every cached key: nothing to mask (torch's kernel runs unmasked)."""
    mask = AttentionMask(causal="lower_right")
    assert mask.allows_all(1, 50)
    assert not mask.allows_all(2, 50)
    assert not AttentionMask(causal="upper_left").allows_all(1, 50)  # top-left: query 0 sees key 0 only
    assert not AttentionMask(causal="lower_right", window=3).allows_all(1, 50)
    assert AttentionMask(causal="lower_right", window=49).allows_all(1, 50)
    assert mask.dense_for_torch(1, 50, torch.zeros(1)) == (None, False)
    assert AttentionMask(causal="lower_right").dense_for_torch(7, 7, torch.zeros(1)) == (None, True)


def test_key_range_skips_what_no_query_sees():
    m = AttentionMask(causal="lower_right", window=4)
    assert m.key_range(0, 3, 3, 20) == (13, 20)  # queries at positions 17..19 see keys 13..19
    assert AttentionMask(causal="upper_left").key_range(4, 8, 16, 16) == (0, 8)
    assert AttentionMask(causal="lower_right").key_range(0, 2, 9, 4) == (0, 0)  # positions -5, -4: nothing


@pytest.mark.parametrize(
    "mask_kind", ["causal", "lower_right", "padding", "window"], ids=["causal", "lower_right", "padding", "window"]
)
def test_chunked_extra_memory_is_linear_for_structured_masks(mask_kind):
    """The forward's tensor peak at n and 4n: linear in n (slope <= 1.2; a (T, S) mask alone would be 2)."""

    def peak(n):
        q = k = v = randn(1, 2, n, 16)
        pad = torch.ones(1, 1, n, dtype=torch.bool)
        pad[..., -n // 8 :] = False
        mask = {
            "causal": AttentionMask(causal="upper_left"),
            "lower_right": AttentionMask(causal="lower_right"),
            "padding": AttentionMask(key_padding=pad),
            "window": AttentionMask(causal="upper_left", window=64),
        }[mask_kind]
        with torch.no_grad():
            return peak_memory_bytes(lambda: scaled_dot_product_attention(q, k, v, mask, impl="chunked"))

    small, large = peak(1024), peak(4096)
    slope = torch.tensor(large / small).log().item() / torch.tensor(4.0).log().item()
    assert slope <= 1.2, f"{mask_kind}: peak {small} -> {large} bytes, slope {slope:.2f}"


def test_errors_name_the_field():
    with pytest.raises(ValueError, match=r"^causal: expected None or one of \('upper_left', 'lower_right'\)"):
        AttentionMask(causal="bottom_right")
    with pytest.raises(ValueError, match=r"^window: expected None or an integer >= 1, got 0"):
        AttentionMask(causal="upper_left", window=0)
    with pytest.raises(ValueError, match=r"^window: a sliding window needs causal="):
        AttentionMask(window=3)
    with pytest.raises(TypeError, match=r"^key_padding: expected a bool tensor"):
        AttentionMask(key_padding=torch.ones(2, 5))
    q = k = v = randn(2, 3, 4, 8)
    with pytest.raises(ValueError, match=r"^key_padding: expected a shape that broadcasts to \(2, 3, 4\)"):
        scaled_dot_product_attention(q, k, v, AttentionMask(key_padding=torch.ones(2, 5, dtype=torch.bool)))
    with pytest.raises(ValueError, match=r"^attn_mask: expected None when is_causal=True"):
        scaled_dot_product_attention(q, k, v, AttentionMask(causal="lower_right"), is_causal=True)
