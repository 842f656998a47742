"""Exercise 3.3 ``scaled_dot_product_attention``: checks against ``torch.nn.functional.scaled_dot_product_attention``
(the oracle), a float64 reference for low precision, and the properties of attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.exercises.engine import Check, Exercise
from attnlab.exercises.transformer.sdpa_mistakes import MISTAKES
from attnlab.exercises.trial import Trial
from attnlab.functional import sdpa as library
from attnlab.functional.masks import AttentionMask
from attnlab.functional.sdpa import scaled_dot_product_attention as _library_sdpa
from attnlab.functional.softmax import masked_softmax


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    """The library's naive implementation (it materializes the weights, as the exercise does)."""
    return _library_sdpa(query, key, value, attn_mask, is_causal=is_causal, scale=scale, impl="naive")


def _qkv(t: Trial, *batch: int, T: int, S: int, hs: int, hv: int, dtype=torch.float32, grad: bool = False):
    q, k, v = (
        t.randn(*batch, T, hs, dtype=dtype),
        t.randn(*batch, S, hs, dtype=dtype),
        t.randn(*batch, S, hv, dtype=dtype),
    )
    return tuple(x.requires_grad_(grad) for x in (q, k, v))


def _run(t: Trial, q: Tensor, k: Tensor, v: Tensor, **kw) -> Tensor:
    out = t.call(q, k, v, **kw)
    return t.tensor(out, (*torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]), q.shape[-2], v.shape[-1]), q.dtype)


def _torch(q: Tensor, k: Tensor, v: Tensor, **kw) -> Tensor:
    return F.scaled_dot_product_attention(q, k, v, **kw)


def _rows_mask(t: Trial, T: int, S: int, p: float = 0.6) -> Tensor:
    """A (T, S) bool mask with at least one allowed key per row."""
    mask = t.bools(T, S, p=p)
    mask[torch.arange(T), t.randint(0, S, T)] = True
    return mask


def _contract(t: Trial) -> None:
    q, k, v = _qkv(t, 2, 3, T=4, S=6, hs=8, hv=5)
    _run(t, q, k, v)


def _float32(t: Trial) -> None:
    q, k, v = _qkv(t, 2, 3, T=5, S=7, hs=16, hv=12)
    t.close(_run(t, q, k, v), _torch(q, k, v), "output against torch's scaled_dot_product_attention")


def _scale(t: Trial) -> None:
    q, k, v = _qkv(t, 2, T=4, S=6, hs=8, hv=8)
    scale = 0.2 + t.uniform(1).item()
    t.close(_run(t, q, k, v, scale=scale), _torch(q, k, v, scale=scale), f"output with scale={scale:.3f}")


def _bool_mask(t: Trial) -> None:
    q, k, v = _qkv(t, 2, 2, T=5, S=6, hs=8, hv=8)
    mask = _rows_mask(t, 5, 6)
    t.close(_run(t, q, k, v, attn_mask=mask), _torch(q, k, v, attn_mask=mask), "output with a (T, S) bool mask")


def _float_mask(t: Trial) -> None:
    q, k, v = _qkv(t, 2, 2, T=5, S=6, hs=8, hv=8)
    bias = t.randn(2, 1, 5, 6)
    bias[..., 1] = 0.0  # a float mask may hold zeros: they are added, not used to select
    t.close(_run(t, q, k, v, attn_mask=bias), _torch(q, k, v, attn_mask=bias), "output with a (B, 1, T, S) float mask")


def _causal(t: Trial) -> None:
    q, k, v = _qkv(t, 2, 2, T=6, S=6, hs=8, hv=8)
    t.close(_run(t, q, k, v, is_causal=True), _torch(q, k, v, is_causal=True), "output with is_causal=True")


def _fully_masked(t: Trial) -> None:
    q, k, v = _qkv(t, 2, 2, T=5, S=6, hs=8, hv=8)
    mask = _rows_mask(t, 5, 6)
    mask[1] = False
    mask[3] = False
    want = _torch(q, k, v, attn_mask=mask)
    want[..., [1, 3], :] = 0.0  # no allowed key: zeros
    t.close(_run(t, q, k, v, attn_mask=mask), want, "output with rows 1 and 3 fully masked (expected zeros there)")


def _large_scores(t: Trial) -> None:
    q, k, v = _qkv(t, 2, T=4, S=6, hs=8, hv=8)
    shift = torch.full((4, 6), 100.0) + t.randn(4, 6)  # every score + ~100: softmax is shift-invariant
    out = _run(t, q, k, v, attn_mask=shift)
    t.close(out, _torch(q, k, v, attn_mask=shift), "output with scores near 100", rtol=1e-4, atol=1e-4)


def _gradients(t: Trial) -> None:
    q, k, v = _qkv(t, 2, 2, T=5, S=7, hs=8, hv=6, grad=True)
    mask = _rows_mask(t, 5, 7)
    out = _run(t, q, k, v, attn_mask=mask)
    cot = t.randn(*out.shape)
    got = t.grad([out], t.args, [cot])
    want = torch.autograd.grad([_torch(q, k, v, attn_mask=mask)], [q, k, v], [cot])
    for name, g, w in zip(("query", "key", "value"), got, want, strict=True):
        t.close(g, w, f"gradient of {name}")


def _odd_shapes(t: Trial) -> None:
    for batch, T, S, hs, hv in (((1,), 1, 9, 59, 3), ((3,), 1, 1, 8, 8), ((1, 2), 7, 3, 59, 40)):
        q, k, v = _qkv(t, *batch, T=T, S=S, hs=hs, hv=hv)
        t.close(_run(t, q, k, v), _torch(q, k, v), f"output for batch {batch}, T={T}, S={S}, hs={hs}, hv={hv}")


def _low_precision(t: Trial) -> None:
    for dtype in (torch.bfloat16, torch.float16):
        q, k, v = (t.randn(2, 2, 33, 40, scale=s, dtype=torch.float64) for s in (2.0, 2.0, 1.0))
        mask = _rows_mask(t, 33, 33, p=0.7)
        ref = _torch(q, k, v, attn_mask=mask)  # float64
        lo = [x.to(dtype) for x in (q, k, v)]
        err_torch = (_torch(*lo, attn_mask=mask).double() - ref).abs()
        out = _run(t, *lo, attn_mask=mask)
        t.expect(bool(torch.isfinite(out).all()), f"{dtype}: the output holds NaN or inf")
        err = (out.double() - ref).abs()
        ratio_mean = (err.mean() / err_torch.mean()).item()
        ratio_max = (err.max() / err_torch.max()).item()
        t.expect(
            ratio_mean <= 1.25 and ratio_max <= 2.0,
            f"{dtype}: error against a float64 reference is {ratio_mean:.2f}x torch's on average and "
            f"{ratio_max:.2f}x at most (allowed: 1.25x and 2x)",
        )


def _rows_sum_to_one(t: Trial) -> None:
    q, k, _ = _qkv(t, 2, 2, T=5, S=6, hs=8, hv=1)
    eye = torch.eye(6).expand(2, 2, 6, 6)  # value = identity: the output rows are the weights themselves
    weights = _run(t, q, k, eye, attn_mask=_rows_mask(t, 5, 6))
    t.close(weights.sum(-1), torch.ones(2, 2, 5), "sum of each row of weights (value = identity, so output = weights)")
    t.expect(bool((weights >= -1e-6).all()), "weights: negative values (value = identity, so output = weights)")


def _causal_future(t: Trial) -> None:
    q, k, v = _qkv(t, 2, 2, T=6, S=6, hs=8, hv=8)
    cut = t.integer(1, 5)
    k2, v2 = k.clone(), v.clone()
    k2[..., cut:, :] = t.randn(2, 2, 6 - cut, 8, scale=3.0)  # change the future of query cut-1
    v2[..., cut:, :] = t.randn(2, 2, 6 - cut, 8, scale=3.0)
    before = _run(t, q, k, v, is_causal=True)
    after = _run(t, q, k2, v2, is_causal=True)
    t.close(after[..., :cut, :], before[..., :cut, :], f"causal outputs 0..{cut - 1} after changing keys {cut}..5")


def _padding(t: Trial) -> None:
    q, k, v = _qkv(t, 2, 2, T=4, S=7, hs=8, hv=8)
    real = t.integer(1, 6)
    pad = (torch.arange(7) < real).view(1, 1, 1, 7)  # (B, nh, T, S) broadcast: the last keys are padding
    k2, v2 = k.clone(), v.clone()
    k2[..., real:, :] = t.randn(2, 2, 7 - real, 8, scale=5.0)
    v2[..., real:, :] = t.randn(2, 2, 7 - real, 8, scale=5.0)
    out = _run(t, q, k2, v2, attn_mask=pad)
    t.close(out, _torch(q, k[..., :real, :], v[..., :real, :]), f"output with keys {real}..6 masked as padding")


def _batched(t: Trial) -> None:
    q, k, v = _qkv(t, 3, T=4, S=5, hs=8, hv=8)
    mask = _rows_mask(t, 4, 5)
    whole = _run(t, q, k, v, attn_mask=mask)
    for b in range(3):
        one = _run(t, q[b : b + 1], k[b : b + 1], v[b : b + 1], attn_mask=mask)
        t.close(one[0], whole[b], f"example {b} alone against the batch")


CHECKS = (
    Check("shape and dtype", "(2, 3, 4, 8) queries over 6 keys give (2, 3, 4, 5)", "", _contract),
    Check("float32 against torch", "T=5 != S=7, hs 16, hv 12, no mask; torch's function", "", _float32),
    Check("scale argument", "an explicit scale replaces 1/sqrt(d_k)", "use scale when it is given", _scale),
    Check("bool mask", "a (T, S) bool mask, True = may attend", "True means allowed", _bool_mask),
    Check("float mask", "a (B, 1, T, S) float mask added to the scores", "add a float mask", _float_mask),
    Check("is_causal", "T == S, query i sees keys j <= i", "mask the keys after each query", _causal),
    Check(
        "fully masked rows",
        "rows with no allowed key give zeros, not NaN",
        "detect rows with no allowed key and return zeros there",
        _fully_masked,
    ),
    Check(
        "large scores",
        "every score shifted by ~100 (a float mask): softmax does not overflow",
        "subtract the row max before exp (torch.softmax does)",
        _large_scores,
    ),
    Check("gradients", "dQ, dK, dV against torch's autograd, with a bool mask", "", _gradients),
    Check("odd shapes", "T = 1, S = 1, batch 1, head size 59, hv != hs, 3-D inputs", "", _odd_shapes),
    Check(
        "low precision",
        "bfloat16 and float16: error against float64 at most 1.25x torch's on average, 2x at most",
        "compute in float32 inside and cast the result back",
        _low_precision,
    ),
    Check("rows sum to 1", "with value = identity the output is the weights: rows sum to 1", "", _rows_sum_to_one),
    Check(
        "causal: future ignored", "changing keys and values after position i leaves outputs <= i", "", _causal_future
    ),
    Check("padded keys ignored", "masked padding keys change nothing", "", _padding),
    Check("batched = one by one", "each example alone gives its row of the batch", "", _batched),
)

EXERCISE = Exercise(
    name="scaled_dot_product_attention",
    section="3.3",
    title="Scaled dot-product attention with masks",
    task=(
        "Compute attention from first principles: the scores Q K^T times the scale (1/sqrt(d_k) unless `scale` is "
        "given), then the mask: a bool attn_mask is True where a query may attend a key (fill the others with "
        "-inf), a float attn_mask is added to the scores; is_causal=True lets query i attend keys j <= i (T == S). "
        "Softmax over the keys, then the weighted sum of the values. A query with no allowed key returns zeros, "
        "not NaN. In float16/bfloat16, compute in float32 inside and return the input's dtype. Do not call "
        "torch's scaled_dot_product_attention."
    ),
    equation="Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V    (Vaswani et al. 2017, eq. 1)",
    shapes="query (..., T, hs), key (..., S, hs), value (..., S, hv); attn_mask broadcastable to (..., T, S)",
    returns="the output (..., T, hv), in the dtype of query",
    reference=scaled_dot_product_attention,
    solution=(library._naive, library._scores, masked_softmax, AttentionMask.bias),
    checks=CHECKS,
    mistakes=MISTAKES,
    forbidden=("torch.nn.functional.scaled_dot_product_attention", "attnlab.functional.scaled_dot_product_attention"),
)
