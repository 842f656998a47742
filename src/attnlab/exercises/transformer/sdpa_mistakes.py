"""Known wrong scaled dot-product attentions, each one mistake away from the contract (kept as code: the diagnosis
runs them on the learner's inputs). Each has the exercise's signature; everything but its one mistake is right."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attnlab.exercises.engine import Mistake


def _attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None,
    is_causal: bool,
    scale: float | None,
    *,
    scale_rule: str = "sqrt_dk",
    axis: int = -1,
    polarity: bool = True,
    float_as_bool: bool = False,
    fill: float = float("-inf"),
    zero_empty: bool = True,
    causal_diagonal: int = 1,
    causal_upper: bool = False,
    upcast: bool = True,
    softmax: str = "torch",
) -> Tensor:
    """A correct attention with knobs; each mistake below turns exactly one."""
    dtype = q.dtype
    if upcast and dtype in (torch.float16, torch.bfloat16):
        q, k, v = q.float(), k.float(), v.float()
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            attn_mask = attn_mask.float()
    d = q.shape[-1]
    rules = {"sqrt_dk": 1 / math.sqrt(d), "dk": 1 / d, "none": 1.0, "sqrt_dv": 1 / math.sqrt(v.shape[-1])}
    s = rules["sqrt_dk"] if scale_rule == "ignore_scale" else (rules[scale_rule] if scale is None else scale)
    scores = q @ k.transpose(-2, -1) * s  # (..., T, S)
    T, S = scores.shape[-2:]
    if is_causal:
        future = torch.ones(T, S, dtype=torch.bool).triu(causal_diagonal)  # key j > i (diagonal 1)
        scores = scores.masked_fill(future.tril(-1) if causal_upper else future, fill)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool or float_as_bool:
            allowed = attn_mask.bool() if polarity else ~attn_mask.bool()
            scores = scores.masked_fill(~allowed, fill)
        else:
            scores = scores + attn_mask
    if softmax == "no_max":
        e = torch.exp(scores)
        weights = e / e.sum(axis, keepdim=True)
    else:
        empty = torch.isneginf(scores).all(-1, keepdim=True)  # (..., T, 1)
        weights = torch.softmax(scores.masked_fill(empty, 0.0) if zero_empty else scores, dim=axis)
        if zero_empty:
            weights = weights.masked_fill(empty, 0.0)
    return (weights @ v).to(dtype)  # (..., T, S) @ (..., S, hv)


def _variant(**knobs):
    def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
        return _attention(query, key, value, attn_mask, is_causal, scale, **knobs)

    return scaled_dot_product_attention


def _inplace_zeroing(query, key, value, attn_mask=None, is_causal=False, scale=None):
    """Zeroes the weights of fully masked rows in place, on the softmax's own output."""
    s = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = query @ key.transpose(-2, -1) * s
    T, S = scores.shape[-2:]
    if is_causal:
        scores = scores.masked_fill(torch.ones(T, S, dtype=torch.bool).triu(1), float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
    empty = torch.isneginf(scores).all(-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1)
    weights.masked_fill_(empty, 0.0)  # in place: softmax saved this tensor for its backward
    return weights @ value


INPLACE = (
    "an in-place operation on a tensor autograd saved",
    "you modified a tensor in place (x.masked_fill_(...), x[...] = 0, x *= ...) that the backward needs (the "
    "softmax saves its output). Use the out-of-place form: weights = weights.masked_fill(empty, 0.0)",
)

MISTAKES = (
    Mistake(
        "sdpa.scale_dk",
        "scale 1/d_k instead of 1/sqrt(d_k)",
        "divide the scores by sqrt(d_k) (query.shape[-1] ** 0.5), not by d_k: the dot product of two random "
        "d_k-vectors has variance d_k, so its standard deviation is sqrt(d_k)",
        _variant(scale_rule="dk"),
    ),
    Mistake(
        "sdpa.no_scale",
        "scores not scaled",
        "multiply Q K^T by 1/sqrt(d_k) before the softmax; unscaled scores grow with the head size and saturate it",
        _variant(scale_rule="none"),
    ),
    Mistake(
        "sdpa.scale_dv",
        "scaled by the value size",
        "the scale is 1/sqrt(d_k) with d_k the size of queries and keys (query.shape[-1]), not of the values",
        _variant(scale_rule="sqrt_dv"),
    ),
    Mistake(
        "sdpa.scale_ignored",
        "the scale argument is ignored",
        "when scale is given, use it instead of 1/sqrt(d_k): scale = 1 / math.sqrt(d_k) if scale is None else scale",
        _variant(scale_rule="ignore_scale"),
    ),
    Mistake(
        "sdpa.softmax_axis",
        "softmax over the wrong axis",
        "each query's weights are a distribution over the keys: softmax over the last dim (dim=-1, the S axis), "
        "not over the queries (dim=-2)",
        _variant(axis=-2),
    ),
    Mistake(
        "sdpa.mask_polarity",
        "mask polarity inverted",
        "a boolean attn_mask is True where attention is ALLOWED (torch's convention): fill the scores where the "
        "mask is False, scores.masked_fill(~attn_mask, float('-inf'))",
        _variant(polarity=False),
    ),
    Mistake(
        "sdpa.float_mask_as_bool",
        "a float mask treated as a boolean one",
        "a float attn_mask is ADDED to the scores (scores + attn_mask); only a torch.bool mask selects keys",
        _variant(float_as_bool=True),
    ),
    Mistake(
        "sdpa.fill_1e9",
        "a finite fill (-1e9, -1e4) for masked scores",
        "fill with float('-inf'), not -1e9: -1e9 overflows float16 (its largest value is 65504), and a row with "
        "every key masked then averages all the values instead of returning zeros",
        _variant(fill=-1e9),
        error=r"cannot be converted to type .* without overflow",
    ),
    Mistake(
        "sdpa.nan_fully_masked",
        "NaN on a fully masked row",
        "a query row with no allowed key is all -inf, and softmax of it is 0/0 = NaN. Detect those rows "
        "(torch.isneginf(scores).all(-1, keepdim=True)), softmax with them set to 0, then zero their weights",
        _variant(zero_empty=False),
    ),
    Mistake(
        "sdpa.causal_diagonal",
        "the causal mask hides the diagonal",
        "query i may attend keys j <= i, itself included: mask torch.ones(T, S).triu(1) (strictly above the "
        "diagonal), not triu(0)",
        _variant(causal_diagonal=0),
    ),
    Mistake(
        "sdpa.causal_future",
        "the causal mask hides the past instead of the future",
        "is_causal hides the keys AFTER each query (j > i, above the diagonal); keep j <= i (the lower triangle)",
        _variant(causal_upper=True),
    ),
    Mistake(
        "sdpa.softmax_no_max",
        "softmax by hand without subtracting the row max",
        "exp(scores) overflows to inf for scores above ~88 (float32) or ~11 (float16), and inf/inf is NaN: "
        "use torch.softmax, or subtract scores.amax(-1, keepdim=True) before exp",
        _variant(softmax="no_max"),
    ),
    Mistake(
        "sdpa.half_precision",
        "everything computed in float16/bfloat16",
        "in low precision, compute the scores, the softmax and the weighted sum in float32 (query.float() ...) and "
        "cast the result back to the input's dtype, as torch's kernels do",
        _variant(upcast=False),
    ),
    Mistake("sdpa.inplace", *INPLACE, _inplace_zeroing, error=r"modified by an inplace operation"),
)
