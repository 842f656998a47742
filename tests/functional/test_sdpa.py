"""scaled_dot_product_attention, every implementation, against torch's function and a float64 reference.

In the habit of flash-attention's ``tests/test_flash_attn.py``: one :func:`attention_ref` written straight from
the equation, and the rule that our error against the float64 reference stays within 2x torch's own error at
the same precision (outputs) and 3x (gradients): in float32 (on top of assert_close's default tolerances against
torch) and in bfloat16/float16 (DESIGN.md's low-precision rule).

Devices: the comparisons run on every device of the ``device`` fixture (the CPU, and CUDA where present, TF32 off):
inputs and masks are drawn on the CPU and moved, and torch's function and the float64 reference run on the same
device as ours. Gradcheck, the hypothesis properties and the argument errors run on the CPU.

``"chunked:4x5"`` means :func:`chunked_attention` called with ``block_q=4, block_k=5``: small tiles so that a few
positions already make many tiles, skipped causal tiles and tiles straddling the diagonal.

Shapes: T query length, S key length, hs head size of query/key, hv head size of value, ``...`` leading
(batch, head) dims.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor
from torch.autograd import gradcheck

from attnlab.functional import AttentionOutput, scaled_dot_product_attention
from attnlab.functional.chunked import _ChunkedSDPA, chunked_attention
from attnlab.functional.masks import as_mask
from attnlab.functional.sdpa import _ManualSDPA

# float64: the same equation in (nearly) the same order on both sides; differences are a few ulps.
F64 = {"rtol": 1e-10, "atol": 1e-12}
EPS32 = torch.finfo(torch.float32).eps

IMPLS = ["naive", "manual", "chunked", "chunked:4x5", "chunked:16x3", "torch", "auto"]
WEIGHT_IMPLS = ["naive", "manual", "auto"]  # those that can return the weights
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None)


pytestmark = pytest.mark.usefixtures("one_thread")


def attention_ref(q: Tensor, k: Tensor, v: Tensor, attn_mask=None, is_causal=False, scale=None):
    """softmax(Q K^T scale + M) V in float64 (Vaswani et al. 2017, eq. 1), for the tests' eyes only.

    Args:
        q: ``(..., T, hs)``; k: ``(..., S, hs)``; v: ``(..., S, hv)``; leading dims broadcast.
        attn_mask: broadcastable to ``(..., T, S)``; bool (True = may attend) or float (added to the scores).
        is_causal: query i may attend key j iff j <= i (top-left aligned).
        scale: the factor on the scores, default ``1 / sqrt(hs)``.

    Returns:
        ``(output (..., T, hv), weights (..., T, S))`` in float64, differentiable in q, k, v. A row with no allowed
        key has zero weights and a zero output (it does not depend on q, k or v, so its gradients are 0).
    """
    q, k, v = (x.double() for x in (q, k, v))
    T, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., T, hs) @ (..., hs, S) -> (..., T, S)
    if is_causal:
        attn_mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril()
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, -math.inf)
        else:
            scores = scores + attn_mask.double()
    dead = torch.isneginf(scores).all(-1, keepdim=True)  # (..., T, 1): no allowed key
    weights = torch.softmax(scores.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)
    return weights @ v, weights  # (..., T, S) @ (..., S, hv) -> (..., T, hv)


def sdpa(impl: str, q, k, v, attn_mask=None, is_causal=False, scale=None, dropout_p=0.0, return_weights=False):
    """Our function with ``impl``; ``"chunked:BQxBK"`` calls the tiled kernel with those block sizes."""
    if impl.startswith("chunked:"):
        block_q, block_k = (int(n) for n in impl.split(":")[1].split("x"))
        batch = tuple(torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2]))
        s = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        mask = as_mask(attn_mask, is_causal)
        return chunked_attention(q, k, v, mask, s, dropout_p, batch, block_q=block_q, block_k=block_k)
    return scaled_dot_product_attention(
        q, k, v, attn_mask, dropout_p, is_causal, scale, impl=impl, return_weights=return_weights
    )


def randn(*shape: int, dtype=torch.float32, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def forward_backward(fn, inputs, grad_out=None):
    """``fn(*inputs)`` on fresh leaves, and the gradients of ``<output, grad_out>`` for each input (``grad_out``
    is moved to the output's device and dtype)."""
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    out = fn(*leaves)
    if grad_out is None:
        grad_out = randn(*out.shape, dtype=out.dtype, seed=99, device=out.device)
    grads = torch.autograd.grad(out, leaves, grad_out.to(out.device, out.dtype))
    return out.detach(), [g.detach() for g in grads], grad_out


# --- the inputs: shapes and masks ---------------------------------------------------------------------------

SHAPES = {  # name: (query, key, value) shapes
    "hs40-T<S": ((2, 3, 7, 40), (2, 3, 12, 40), (2, 3, 12, 40)),
    "hs59-T>S-hv24": ((2, 2, 13, 59), (2, 2, 6, 59), (2, 2, 6, 24)),
    "T1": ((2, 2, 1, 40), (2, 2, 9, 40), (2, 2, 9, 40)),
    "kv-shared-by-heads-hv17": ((2, 4, 6, 40), (2, 1, 10, 40), (2, 1, 10, 17)),
    "broadcast-both-ways": ((3, 1, 5, 16), (1, 2, 7, 16), (1, 2, 7, 16)),
    "3-D-hs59": ((3, 8, 59), (3, 8, 59), (3, 8, 59)),
    "2-D-T>S": ((9, 40), (5, 40), (5, 40)),
}

# name: (dtype kind, shape kind, dead rows); shapes: "TS" (T, S), "11TS" (1, ..., T, S), "full" (..., T, S),
# "keypad" (B, 1, ..., 1, S), a key-padding mask. Dead: "rows" = queries 0 and T-1 see no key; "batch" = the
# first batch entry sees no key at all.
MASKS = {
    "none": None,
    "causal": None,
    "bool-TS": ("bool", "TS", None),
    "bool-11TS": ("bool", "11TS", None),
    "bool-keypad": ("bool", "keypad", None),
    "float-TS": ("float", "TS", None),
    "float-full": ("float", "full", None),
    "bool-dead-rows": ("bool", "TS", "rows"),
    "float-dead-rows": ("float", "11TS", "rows"),
    "bool-keypad-dead-batch": ("bool", "keypad", "batch"),
}


def make_inputs(shape_name: str, dtype=torch.float32, seed: int = 0, device="cpu"):
    return [randn(*shape, dtype=dtype, seed=seed + i, device=device) for i, shape in enumerate(SHAPES[shape_name])]


def make_mask(mask_name: str, q: Tensor, k: Tensor, v: Tensor, seed: int = 7) -> tuple[Tensor | None, bool]:
    """``(attn_mask, is_causal)`` for the inputs: random allowed keys, at least one per row unless dead (drawn on
    the CPU, returned on the inputs' device)."""
    if MASKS[mask_name] is None:
        return None, mask_name == "causal"
    kind, shape_kind, dead = MASKS[mask_name]
    batch = tuple(torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2]))
    T, S = q.shape[-2], k.shape[-2]
    shape = {
        "TS": (T, S),
        "11TS": (*(1,) * len(batch), T, S),
        "full": (*batch, T, S),
        "keypad": (*batch[:1], *(1,) * max(len(batch) - 1, 0), 1, S),
    }[shape_kind]
    g = torch.Generator().manual_seed(seed)
    allowed = torch.rand(shape, generator=g) > 0.4
    one = torch.randint(0, S, (*shape[:-1], 1), generator=g)
    allowed = allowed.scatter(-1, one, True)  # every row keeps at least one key
    if dead == "rows":
        allowed[..., 0, :] = False
        allowed[..., -1, :] = False
    elif dead == "batch":
        allowed[:1] = False
    if kind == "bool":
        return allowed.to(q.device), False
    values = torch.randn(shape, generator=g, dtype=q.dtype)
    return values.masked_fill(~allowed, -math.inf).to(q.device), False


def assert_within_torch_error(ours: Tensor, theirs: Tensor, ref: Tensor, factor: float, what: str):
    """flash-attention's rule: |ours - ref| <= factor |torch - ref| + a floor of a few float32 ulps."""
    floor = 4 * EPS32 * max(ref.abs().max().item(), 1.0)
    err_ours = (ours.double() - ref).abs().max().item()
    err_torch = (theirs.double() - ref).abs().max().item()
    assert err_ours <= factor * err_torch + floor, f"{what}: our error {err_ours:.3g}, torch's {err_torch:.3g}"


# --- against torch and the float64 reference -----------------------------------------------------------------


@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("impl", IMPLS)
def test_float32_matches_torch_and_reference(impl, shape_name, mask_name, device):
    inputs = make_inputs(shape_name, device=device)
    mask, causal = make_mask(mask_name, *inputs)
    out, grads, g = forward_backward(lambda q, k, v: sdpa(impl, q, k, v, mask, causal), inputs)
    out_pt, grads_pt, _ = forward_backward(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal), inputs, g
    )
    out_ref, grads_ref, _ = forward_backward(
        lambda q, k, v: attention_ref(q, k, v, mask, causal)[0], [x.double() for x in inputs], g
    )
    torch.testing.assert_close(out, out_pt)
    assert_within_torch_error(out, out_pt, out_ref, 2.0, "output")
    for name, ours, theirs, ref in zip("qkv", grads, grads_pt, grads_ref, strict=True):
        torch.testing.assert_close(ours, theirs, msg=lambda m, name=name: f"d{name}: {m}")
        assert_within_torch_error(ours, theirs, ref, 3.0, f"d{name}")


@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("shape_name", ["hs59-T>S-hv24", "kv-shared-by-heads-hv17", "3-D-hs59", "2-D-T>S"])
@pytest.mark.parametrize("impl", IMPLS)
def test_float64_matches_reference(impl, shape_name, mask_name, device):
    inputs = make_inputs(shape_name, dtype=torch.float64, device=device)
    mask, causal = make_mask(mask_name, *inputs)
    out, grads, g = forward_backward(lambda q, k, v: sdpa(impl, q, k, v, mask, causal), inputs)
    out_ref, grads_ref, _ = forward_backward(lambda q, k, v: attention_ref(q, k, v, mask, causal)[0], inputs, g)
    torch.testing.assert_close(out, out_ref, **F64)
    for name, ours, ref in zip("qkv", grads, grads_ref, strict=True):
        torch.testing.assert_close(ours, ref, **F64, msg=lambda m, name=name: f"d{name}: {m}")


@pytest.mark.parametrize("mask_name", ["causal", "bool-dead-rows"])
@pytest.mark.parametrize("shape_name", ["hs59-T>S-hv24"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("impl", IMPLS)
def test_low_precision_within_torch_error(impl, dtype, shape_name, mask_name, device):
    """DESIGN.md's rule for low precision: against the float64 reference, our error is at most 2x (outputs) and
    3x (gradients) the error of torch's own function on the same bfloat16/float16 inputs."""
    inputs = [x.to(dtype) for x in make_inputs(shape_name, device=device)]
    mask, causal = make_mask(mask_name, *inputs)
    out, grads, g = forward_backward(lambda q, k, v: sdpa(impl, q, k, v, mask, causal), inputs)
    out_pt, grads_pt, _ = forward_backward(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal), inputs, g
    )
    out_ref, grads_ref, _ = forward_backward(
        lambda q, k, v: attention_ref(q, k, v, mask, causal)[0], [x.double() for x in inputs], g
    )
    assert out.dtype == dtype
    assert_within_torch_error(out, out_pt, out_ref, 2.0, "output")
    for name, ours, theirs, ref in zip("qkv", grads, grads_pt, grads_ref, strict=True):
        assert ours.dtype == dtype
        assert_within_torch_error(ours, theirs, ref, 3.0, f"d{name}")


@pytest.mark.parametrize("scale", [0.37, 1.0, -0.2, 2.5])
@pytest.mark.parametrize("mask_name", ["none", "causal", "float-TS"])
@pytest.mark.parametrize("impl", IMPLS)
def test_explicit_scale(impl, mask_name, scale, device):
    """A scale of 2.5 (19x the default for hs=59) makes a sharp, ill-conditioned softmax: torch's own float32
    error in dk then reaches ~1e-4, beyond assert_close's defaults, so there the float64 reference is the judge."""
    inputs = make_inputs("hs59-T>S-hv24", device=device)
    mask, causal = make_mask(mask_name, *inputs)
    out, grads, g = forward_backward(lambda q, k, v: sdpa(impl, q, k, v, mask, causal, scale=scale), inputs)
    out_pt, grads_pt, _ = forward_backward(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale),
        inputs,
        g,
    )
    out_ref, grads_ref, _ = forward_backward(
        lambda q, k, v: attention_ref(q, k, v, mask, causal, scale)[0], [x.double() for x in inputs], g
    )
    assert_within_torch_error(out, out_pt, out_ref, 2.0, "output")
    for name, ours, theirs, ref in zip("qkv", grads, grads_pt, grads_ref, strict=True):
        assert_within_torch_error(ours, theirs, ref, 3.0, f"d{name}")
    if abs(scale) <= 1:
        torch.testing.assert_close(out, out_pt)
        for ours, theirs in zip(grads, grads_pt, strict=True):
            torch.testing.assert_close(ours, theirs)
    # the scale really is used: the default one gives another answer
    assert not torch.allclose(out, sdpa(impl, *inputs, mask, causal), atol=1e-3)


@pytest.mark.parametrize("impl", IMPLS)
def test_auto_and_every_impl_give_the_same_numbers(impl, device):
    inputs = make_inputs("hs40-T<S", dtype=torch.float64, device=device)
    mask, _ = make_mask("bool-keypad-dead-batch", *inputs)
    torch.testing.assert_close(sdpa(impl, *inputs, mask), sdpa("naive", *inputs, mask), **F64)


# --- rows with no allowed key -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("impl", IMPLS)
def test_fully_masked_rows_are_zero_with_zero_finite_gradients(impl, dtype, kind, device):
    B, nh, T, S = 2, 2, 6, 7
    inputs = [randn(B, nh, n, 40, dtype=dtype, seed=i + 1, device=device) for i, n in enumerate((T, S, S))]
    allowed = torch.rand(B, 1, T, S, generator=torch.Generator().manual_seed(4)) > 0.3
    allowed[..., 0] = True
    allowed[:, :, [1, 4]] = False  # queries 1 and 4 of every batch see nothing
    allowed[1] = False  # the second batch entry sees nothing at all
    allowed = allowed.to(device)
    mask = allowed if kind == "bool" else torch.zeros_like(allowed, dtype=dtype).masked_fill(~allowed, -math.inf)
    out, (dq, dk, dv), _ = forward_backward(lambda q, k, v: sdpa(impl, q, k, v, mask), inputs)
    dead = ~allowed.any(-1).expand(B, nh, T)  # (B, nh, T)
    assert torch.all(out[dead] == 0)
    assert torch.all(out[~dead].abs().sum(-1) > 0)
    for grad in (dq, dk, dv):
        assert torch.isfinite(grad).all()
    assert torch.all(dq[dead] == 0)
    assert torch.all(dk[1] == 0) and torch.all(dv[1] == 0)  # keys seen by no query get no gradient
    out_ref, grads_ref, _ = forward_backward(
        lambda q, k, v: attention_ref(q, k, v, mask)[0],
        [x.double() for x in inputs],
        randn(*out.shape, dtype=dtype, seed=99),
    )
    tol = F64 if dtype == torch.float64 else {}
    torch.testing.assert_close(out, out_ref.to(dtype), **tol)
    for ours, ref in zip((dq, dk, dv), grads_ref, strict=True):
        torch.testing.assert_close(ours, ref.to(dtype), **tol)


# --- gradcheck ----------------------------------------------------------------------------------------------


GRADCHECK_MASKS = ["none", "causal", "bool-TS", "float-full", "bool-dead-rows"]


@pytest.mark.parametrize("mask_name", GRADCHECK_MASKS)
@pytest.mark.parametrize(("T", "S"), [(5, 7), (7, 4)], ids=["T<S", "T>S"])
@pytest.mark.parametrize("impl", ["manual", "chunked:2x3"])
def test_gradcheck(impl, T, S, mask_name):
    q, k, v = (randn(*shape, dtype=torch.float64, seed=i) for i, shape in enumerate([(2, T, 4), (2, S, 4), (2, S, 3)]))
    mask, causal = make_mask(mask_name, q, k, v)
    leaves = [x.requires_grad_() for x in (q, k, v)]
    assert gradcheck(lambda q, k, v: sdpa(impl, q, k, v, mask, causal), leaves)


def test_gradcheck_manual_through_a_float_mask():
    q, k = randn(2, 5, 6, dtype=torch.float64, seed=1), randn(2, 7, 6, dtype=torch.float64, seed=2)
    v = randn(2, 7, 3, dtype=torch.float64, seed=3)
    mask = randn(5, 7, dtype=torch.float64, seed=4)  # broadcast over the batch: its gradient is summed over it
    leaves = [x.requires_grad_() for x in (q, k, v, mask)]
    assert gradcheck(lambda q, k, v, m: _ManualSDPA.apply(q, k, v, m, 0.4, 0.0)[0], leaves)
    # and the mask's gradient equals the reference's
    _, grads, g = forward_backward(lambda q, k, v, m: sdpa("manual", q, k, v, m), leaves)
    _, grads_ref, _ = forward_backward(lambda q, k, v, m: attention_ref(q, k, v, m)[0], leaves, g)
    torch.testing.assert_close(grads[3], grads_ref[3], **F64)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_gradcheck_chunked_with_dropout_fixed_seed(causal):
    q, k, v = (randn(*shape, dtype=torch.float64, seed=i) for i, shape in enumerate([(2, 5, 6), (2, 7, 6), (2, 7, 4)]))
    leaves = [x.requires_grad_() for x in (q, k, v)]

    mask = as_mask(None, causal)

    def f(q, k, v):
        return _ChunkedSDPA.apply(q, k, v, mask, 0.4, 0.3, 1234, 2, 3)

    torch.testing.assert_close(f(*leaves), f(*leaves), rtol=0, atol=0)  # the seed fixes the keep-mask
    assert not torch.allclose(f(*leaves), _ChunkedSDPA.apply(q, k, v, mask, 0.4, 0.0, 0, 2, 3))
    assert gradcheck(f, leaves)


def test_gradcheck_manual_with_dropout_fixed_seed():
    q, k, v = (randn(*shape, dtype=torch.float64, seed=i) for i, shape in enumerate([(2, 5, 6), (2, 7, 6), (2, 7, 4)]))
    leaves = [x.requires_grad_() for x in (q, k, v)]

    def f(q, k, v):
        with torch.random.fork_rng():
            torch.manual_seed(5)
            return _ManualSDPA.apply(q, k, v, None, 0.4, 0.3)[0]

    assert gradcheck(f, leaves)


# --- the weights ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask_name", ["none", "causal", "float-full", "bool-dead-rows", "bool-keypad-dead-batch"])
@pytest.mark.parametrize("impl", WEIGHT_IMPLS)
def test_return_weights(impl, mask_name, device):
    inputs = make_inputs("hs59-T>S-hv24", dtype=torch.float64, device=device)
    mask, causal = make_mask(mask_name, *inputs)
    res = sdpa(impl, *inputs, mask, causal, return_weights=True)
    assert isinstance(res, AttentionOutput)
    out_ref, weights_ref = attention_ref(*inputs, mask, causal)
    torch.testing.assert_close(res.weights, weights_ref, **F64)
    torch.testing.assert_close(res.output, out_ref, **F64)
    torch.testing.assert_close(res.output, sdpa(impl, *inputs, mask, causal), **F64)  # auto: naive vs torch
    sums = res.weights.sum(-1)
    has_key = weights_ref.sum(-1) > 0
    torch.testing.assert_close(sums[has_key], torch.ones_like(sums[has_key]), **F64)
    assert torch.all(sums[~has_key] == 0)
    assert torch.all(res.weights >= 0)


@pytest.mark.parametrize("impl", ["chunked", "torch"])
def test_return_weights_not_served(impl):
    q, k, v = make_inputs("hs40-T<S")
    with pytest.raises(ValueError, match=r"^return_weights"):
        scaled_dot_product_attention(q, k, v, impl=impl, return_weights=True)


# --- dropout --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["naive", "manual", "chunked", "chunked:2x3", "torch", "auto"])
def test_dropout_is_unbiased_with_the_right_spread(impl, device):
    """N independent draws in one call (the query repeated N times): each output element is a sum over keys of
    W_tj b_j / (1 - p) V_jc with b_j ~ Bernoulli(1 - p), so its mean is (W V)_tc and its variance
    sum_j W_tj^2 V_jc^2 p / (1 - p). The mean of N draws must be within 5 standard errors of (W V)_tc (an
    unscaled dropout misses by p (W V)_tc, about 30 standard errors here), and the spread within 15% of the
    predicted one."""
    N, T, S, hs, hv, p = 4000, 3, 6, 8, 3, 0.3
    q0, k, v = (
        randn(1, T, hs, seed=1, device=device),
        randn(1, S, hs, seed=2, device=device),
        randn(1, S, hv, seed=3, device=device),
    )
    q = q0.expand(N, T, hs)
    torch.manual_seed(0)
    draws = sdpa(impl, q, k, v, dropout_p=p)  # (N, T, hv)
    expected, w = attention_ref(q0, k, v)  # (1, T, hv), (1, T, S)
    var = ((w**2).unsqueeze(-1) * (v.double() ** 2).unsqueeze(-3)).sum(-2) * p / (1 - p)  # (1, T, hv)
    std = var.sqrt()
    err = (draws.double().mean(0, keepdim=True) - expected).abs()
    assert torch.all(err <= 5 * std / math.sqrt(N)), f"max error in standard errors: {(err / std).max() * N**0.5}"
    ratio = draws.double().std(0, keepdim=True) / std
    assert torch.all((ratio > 0.85) & (ratio < 1.15)), f"spread / predicted: {ratio}"


@pytest.mark.parametrize("impl", ["naive", "manual", "chunked", "chunked:2x3", "torch"])
def test_dropout_same_seed_same_draw(impl, device):
    q, k, v = make_inputs("hs40-T<S", device=device)
    torch.manual_seed(3)
    a = sdpa(impl, q, k, v, dropout_p=0.2)
    torch.manual_seed(3)
    b = sdpa(impl, q, k, v, dropout_p=0.2)
    c = sdpa(impl, q, k, v, dropout_p=0.2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a, sdpa(impl, q, k, v))


@pytest.mark.parametrize("impl", ["naive", "manual"])
def test_dropout_weights_are_zero_or_rescaled(impl, device):
    p = 0.25
    q, k, v = make_inputs("hs40-T<S", dtype=torch.float64, device=device)
    mask, _ = make_mask("bool-TS", q, k, v)
    w = sdpa(impl, q, k, v, mask, return_weights=True).weights
    torch.manual_seed(0)
    out, w_drop = sdpa(impl, q, k, v, mask, dropout_p=p, return_weights=True)
    dropped = w_drop == 0
    torch.testing.assert_close(w_drop[~dropped], w[~dropped] / (1 - p), **F64)
    torch.testing.assert_close(out, w_drop @ v, **F64)
    # among the allowed entries, the fraction dropped is p within 5 binomial standard errors
    n = int(mask.expand_as(w).sum())
    frac = (dropped & mask).sum().item() / n
    assert abs(frac - p) <= 5 * math.sqrt(p * (1 - p) / n), f"dropped fraction {frac}"


# --- properties -------------------------------------------------------------------------------------------------


@SETTINGS
@given(T=st.integers(1, 9), S=st.integers(1, 9), hs=st.integers(1, 12), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("impl", ["naive", "manual"])
def test_property_weight_rows_sum_to_one(impl, T, S, hs, seed):
    q, k, v = randn(2, T, hs, seed=seed), randn(2, S, hs, seed=seed + 1), randn(2, S, 3, seed=seed + 2)
    mask = torch.rand(2, T, S, generator=torch.Generator().manual_seed(seed)) > 0.5
    weights = sdpa(impl, q, k, v, mask, return_weights=True).weights
    sums = weights.sum(-1)  # (2, T)
    has_key = mask.any(-1)
    torch.testing.assert_close(sums[has_key], torch.ones_like(sums[has_key]))
    assert torch.all(sums[~has_key] == 0)


@SETTINGS
@given(data=st.data(), T=st.integers(2, 12), hs=st.integers(1, 10), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("impl", IMPLS)
def test_property_causal_outputs_ignore_the_future(impl, data, T, hs, seed):
    cut = data.draw(st.integers(1, T - 1), label="cut")
    x = randn(2, 3, T, hs, seed=seed)
    y = x.clone()
    y[..., cut:, :] = randn(2, 3, T - cut, hs, seed=seed + 1) * 10  # the future changes, the past does not
    out_x = sdpa(impl, x, x, x, is_causal=True)
    out_y = sdpa(impl, y, y, y, is_causal=True)
    torch.testing.assert_close(out_x[..., :cut, :], out_y[..., :cut, :], rtol=0, atol=0)
    assert not torch.allclose(out_x[..., cut:, :], out_y[..., cut:, :])


@SETTINGS
@given(S=st.integers(2, 12), T=st.integers(1, 6), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("impl", IMPLS)
def test_property_padded_keys_change_nothing(impl, S, T, seed):
    g = torch.Generator().manual_seed(seed)
    key_mask = torch.rand(2, S, generator=g) > 0.4  # (B, S): True at real keys
    key_mask[:, 0] = True
    pad = ~key_mask[:, None, :, None]  # (B, 1, S, 1)
    q, k, v = randn(2, 2, T, 8, seed=seed), randn(2, 2, S, 8, seed=seed + 1), randn(2, 2, S, 5, seed=seed + 2)
    k2 = torch.where(pad, randn(2, 2, S, 8, seed=seed + 3) * 30, k)  # whatever the padded keys and values are
    v2 = torch.where(pad, randn(2, 2, S, 5, seed=seed + 4) * 30, v)
    mask = key_mask[:, None, None, :]  # (B, 1, 1, S)
    out, (dq, dk, dv), g_out = forward_backward(lambda q, k, v: sdpa(impl, q, k, v, mask), [q, k, v])
    out2, (dq2, _, _), _ = forward_backward(lambda q, k, v: sdpa(impl, q, k, v, mask), [q, k2, v2], g_out)
    torch.testing.assert_close(out, out2, rtol=0, atol=0)
    torch.testing.assert_close(dq, dq2, rtol=0, atol=0)
    padded = pad.expand_as(dk)[..., 0]  # (B, nh, S)
    assert torch.all(dk[padded] == 0) and torch.all(dv[padded] == 0)


@SETTINGS
@given(
    B=st.integers(1, 4),
    T=st.integers(1, 7),
    S=st.integers(1, 7),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
@pytest.mark.parametrize("impl", IMPLS)
def test_property_batched_equals_one_by_one(impl, B, T, S, causal, seed):
    q, k, v = randn(B, 2, T, 6, seed=seed), randn(B, 2, S, 6, seed=seed + 1), randn(B, 2, S, 4, seed=seed + 2)
    mask = None
    if not causal:
        mask = torch.rand(B, 1, T, S, generator=torch.Generator().manual_seed(seed)) > 0.5  # some rows dead
    out = sdpa(impl, q, k, v, mask, causal)
    for b in range(B):
        one = sdpa(impl, q[b], k[b], v[b], None if mask is None else mask[b], causal)
        torch.testing.assert_close(out[b], one)


# --- errors ---------------------------------------------------------------------------------------------------


def _qkv(T=4, S=5, hs=8, hv=8, lead=(2, 3)):
    return randn(*lead, T, hs, seed=1), randn(*lead, S, hs, seed=2), randn(*lead, S, hv, seed=3)


def test_error_head_size_mismatch():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"^key: expected head size 8"):
        scaled_dot_product_attention(q, k[..., :7], v)


def test_error_batch_dims_do_not_broadcast():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"^query/key/value: batch dims do not broadcast"):
        scaled_dot_product_attention(q, k[:, :2], v[:, :2])


def test_error_key_value_length_mismatch():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"^value: expected 5 positions"):
        scaled_dot_product_attention(q, k, v[..., :4, :])


@pytest.mark.parametrize("shape", [(4, 6), (2, 4, 5), (2, 2, 4, 5), (1, 1, 1, 4, 5)], ids=str)
def test_error_mask_does_not_broadcast(shape):
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"^attn_mask: expected a shape that broadcasts to \(2, 3, 4, 5\)"):
        scaled_dot_product_attention(q, k, v, torch.ones(shape, dtype=torch.bool))


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.float64], ids=str)
def test_error_mask_dtype(dtype):
    q, k, v = _qkv()
    with pytest.raises(TypeError, match=r"^attn_mask: expected dtype torch.bool or torch.float32"):
        scaled_dot_product_attention(q, k, v, torch.ones(4, 5, dtype=dtype))


def test_error_mask_with_is_causal():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"^attn_mask: expected None when is_causal=True"):
        scaled_dot_product_attention(q, k, v, torch.ones(4, 5, dtype=torch.bool), is_causal=True)


@pytest.mark.parametrize("impl", ["Naive", "flash", ""])
def test_error_bad_impl(impl):
    with pytest.raises(ValueError, match=r"^impl: expected one of"):
        scaled_dot_product_attention(*_qkv(), impl=impl)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), True])
def test_error_dropout_out_of_range(p):
    with pytest.raises(ValueError, match=r"^dropout_p: expected a probability in \[0, 1\)"):
        scaled_dot_product_attention(*_qkv(), dropout_p=p)


def test_error_dtype_mismatch_and_non_float():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match=r"^key: expected dtype torch.float32"):
        scaled_dot_product_attention(q, k.double(), v)
    with pytest.raises(TypeError, match=r"^value: expected a floating-point tensor"):
        scaled_dot_product_attention(q, k, v.long())
    with pytest.raises(ValueError, match=r"^query: expected a tensor of at least 2 dims"):
        scaled_dot_product_attention(q[0, 0, 0], k, v)


def test_error_scale_not_finite():
    with pytest.raises(ValueError, match=r"^scale: expected a finite number"):
        scaled_dot_product_attention(*_qkv(), scale=math.inf)


def test_error_chunked_with_a_mask_that_requires_grad():
    q, k, v = _qkv()
    mask = torch.zeros(4, 5, requires_grad=True)
    with pytest.raises(ValueError, match=r"^attn_mask: impl='chunked' does not differentiate the mask"):
        scaled_dot_product_attention(q, k, v, mask, impl="chunked")
