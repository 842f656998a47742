r"""Scaled dot-product attention, one function with five implementations behind torch's contract.

.. math::
    \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right) V
    \qquad \text{(Vaswani et al. 2017, eq. 1)}

Why ``1/sqrt(d_k)``: if the components of q and k are independent with mean 0 and variance 1, then
``q . k = sum_i q_i k_i`` has mean 0 and variance ``d_k`` (Vaswani et al., footnote 4). Unscaled, the scores
spread as ``sqrt(d_k)`` grows, the softmax saturates onto one key, and its gradient vanishes. Dividing by
``sqrt(d_k)`` keeps the scores at unit variance whatever the head size; ``scale`` overrides it (a softmax
temperature: ``scale = 1 / (tau sqrt(d_k))``).

Shapes: query ``(..., T, hs)``, key ``(..., S, hs)``, value ``(..., S, hv)`` with broadcastable leading dims;
``attn_mask`` broadcastable to ``(..., T, S)``: bool (True = may attend, as in torch) or float (added to the
scores), or an :class:`~attnlab.functional.masks.AttentionMask` (causal in either alignment, a sliding window,
key padding) that is materialized only by the implementations that hold the scores. ``is_causal``: query i
attends keys j <= i (top-left aligned, as torch; bottom-right is ``AttentionMask(causal="lower_right")``). A
query row with no allowed key returns zeros (not NaN), in every implementation, and passes no gradient. In
float16/bfloat16 the from-scratch implementations compute in float32 and return the input's dtype, as torch's
kernels do.

Implementations (``impl``):

- ``"naive"``: materializes the ``(T, S)`` weights; autograd differentiates it; can return the weights.
- ``"manual"``: the naive forward with the hand-derived backward (:class:`_ManualSDPA`), per row:
  ``dV = P^T dO``, ``dP = dO V^T``, ``dS = P * (dP - rowsum(dP * P))`` (:func:`~attnlab.functional.softmax.
  softmax_backward`), ``dQ = dS K s``, ``dK = dS^T Q s``.
- ``"chunked"``: FlashAttention-style tiling with the online softmax (:mod:`attnlab.functional.chunked`):
  O(T + S) extra memory per head, forward and backward.
- ``"torch"``: ``torch.nn.functional.scaled_dot_product_attention`` (the fused kernel).
- ``"triton"``: FlashAttention-2 in Triton (:mod:`attnlab.functional.flash_triton`): CUDA, or the CPU through
  Triton's interpreter; float16/bfloat16/float32; causal in either alignment and key padding, no other mask.
- ``"auto"``: torch's kernel, unless the weights are asked for (then naive).

``enable_gqa`` (torch's argument): key/value may have fewer heads (dim -3) than query, a divisor of them; query
head h then uses key/value head ``h // (Hq / Hkv)`` (grouped-query attention; :mod:`attnlab.functional.gqa`
says how each implementation serves it without copying the keys).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab._checks import autocast_enabled, broadcast_shapes, check_float, check_tensor, shape_str
from attnlab.functional import gqa
from attnlab.functional.masks import AttentionMask, as_mask
from attnlab.functional.softmax import masked_softmax, softmax_backward

IMPLS = ("naive", "chunked", "manual", "torch", "triton", "auto")
LOW_PRECISION = (torch.float16, torch.bfloat16)


class AttentionOutput(NamedTuple):
    """``output`` ``(..., T, hv)``; ``weights`` ``(..., T, S)`` after softmax (and dropout), or None."""

    output: Tensor
    weights: Tensor | None


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | AttentionMask | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    impl: str = "auto",
    return_weights: bool = False,
) -> Tensor | AttentionOutput:
    """Scaled dot-product attention with torch's semantics (see the module docstring).

    Returns the output ``(..., T, hv)``; with ``return_weights=True`` an :class:`AttentionOutput` whose
    ``weights`` are the ``(..., T, S)`` attention probabilities (only the naive and manual implementations
    materialize them; ``auto`` then picks naive). ``dropout_p`` is applied whenever it is > 0, as in torch's
    function: pass 0 in evaluation.
    """
    if isinstance(query, Tensor) and autocast_enabled(query):  # as torch's function does under autocast
        query, key, value, attn_mask = _autocast(query, key, value, attn_mask)
    mask, batch = check_sdpa_args(query, key, value, attn_mask, dropout_p, is_causal, scale, impl, enable_gqa)
    return dispatch(query, key, value, mask, dropout_p, scale, enable_gqa, impl, return_weights, batch)


def dispatch(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: AttentionMask | None,
    dropout_p: float,
    scale: float | None,
    enable_gqa: bool,
    impl: str,
    return_weights: bool,
    batch: tuple[int, ...],
) -> Tensor | AttentionOutput:
    """The SDPA after :func:`check_sdpa_args`: ``mask`` a checked :class:`AttentionMask` or None, ``batch`` the
    output's leading dims. Called directly only where the checks cannot fail by construction (a layer's one decoded
    token: its own projections, of one dtype and matching shapes, and no mask), where they are per-token overhead."""
    s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    if impl == "auto":
        impl = "naive" if return_weights else "torch"
    if return_weights and impl not in ("naive", "manual"):
        raise ValueError(f"return_weights: only impl='naive' or 'manual' materialize the weights, got impl={impl!r}")
    T, S = query.shape[-2], key.shape[-2]
    if mask is not None and mask.allows_all(T, S):
        mask = None  # e.g. one query after a cache, bottom-right: every key is allowed, no mask is built
    if enable_gqa and key.shape[-3] != query.shape[-3]:
        return _grouped(query, key, value, mask, dropout_p, s, impl, return_weights)
    if impl == "triton":  # Triton is optional: imported only when asked for
        from attnlab.functional import flash_triton

        return flash_triton.from_sdpa(query, key, value, mask, dropout_p, s, batch)
    if impl == "torch":
        dense, causal = (None, False) if mask is None else mask.dense_for_torch(T, S, query)
        return F.scaled_dot_product_attention(
            query, key, value, attn_mask=dense, dropout_p=dropout_p, is_causal=causal, scale=s
        )
    if impl == "chunked":
        from attnlab.functional.chunked import chunked_attention

        return chunked_attention(query, key, value, mask, s, dropout_p, batch)
    if query.dtype in LOW_PRECISION:
        # Scores, softmax and accumulators in float32, as torch's kernels do; the result in the input's dtype.
        with torch.autocast(query.device.type, enabled=False):
            out = scaled_dot_product_attention(
                query.float(),
                key.float(),
                value.float(),
                None if mask is None else mask.to_float(),
                dropout_p,
                False,
                s,
                impl=impl,
                return_weights=return_weights,
            )
        if return_weights:
            return AttentionOutput(out.output.to(query.dtype), out.weights.to(query.dtype))
        return out.to(query.dtype)
    bias = None if mask is None else mask.bias(T, S, query)  # (..., T, S) additive, or None
    q, k, v = (x.expand(*batch, *x.shape[-2:]) for x in (query, key, value))
    if impl == "manual":
        out, weights = _ManualSDPA.apply(q, k, v, bias, s, dropout_p)
    else:
        out, weights = _naive(q, k, v, bias, s, dropout_p)
    return AttentionOutput(out, weights) if return_weights else out


def _grouped(query, key, value, mask, dropout_p, s, impl, return_weights):
    """Grouped-query attention (key/value heads fewer than query heads): :mod:`attnlab.functional.gqa`."""
    if impl == "torch":
        T, S = query.shape[-2], key.shape[-2]
        dense, causal = (None, False) if mask is None else mask.dense_for_torch(T, S, query)
        return gqa.torch_gqa(query, key, value, dense, dropout_p, causal, s)
    if impl not in gqa.REGROUPED_IMPLS:
        key, value = gqa.repeat_kv(key, value, query.shape[-3] // key.shape[-3])  # torch's definition
        return scaled_dot_product_attention(query, key, value, mask, dropout_p, False, s, impl=impl)
    q, k, v, mask, ungroup = gqa.regroup(query, key, value, mask, key.shape[-3])
    out = scaled_dot_product_attention(q, k, v, mask, dropout_p, False, s, impl=impl, return_weights=return_weights)
    return AttentionOutput(ungroup(out.output), ungroup(out.weights)) if return_weights else ungroup(out)


def _autocast(query: Tensor, key, value, attn_mask) -> tuple:
    """Under ``torch.autocast`` the operands (and a float mask) in its low-precision dtype (torch's SDPA is on
    autocast's lower-precision list); non-tensors pass through to the argument checks."""
    dtype = torch.get_autocast_dtype(query.device.type)
    return tuple(
        x.to(dtype) if isinstance(x, Tensor) and x.is_floating_point() else x for x in (query, key, value, attn_mask)
    )


def _naive(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, s: float, dropout_p: float):
    weights = _softmax(_scores(q, k, bias, s), bias)  # (..., T, S); rows with no allowed key -> 0
    if dropout_p > 0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return weights @ v, weights  # (..., T, S) @ (..., S, hv) -> (..., T, hv)


def _scores(q: Tensor, k: Tensor, bias: Tensor | None, s: float) -> Tensor:
    """``Q K^T s + M``, with one ``(..., T, S)`` matrix: scale and mask are applied in place (their backward
    needs neither operand), so the naive path holds the scores and the weights, never more."""
    scores = q @ k.transpose(-2, -1)  # (..., T, hs) @ (..., hs, S) -> (..., T, S)
    scores.mul_(s)
    if bias is not None:
        scores.add_(bias)
    return scores


def _softmax(scores: Tensor, bias: Tensor | None) -> Tensor:
    """Without a mask no row can be empty: the plain softmax; with one, the empty-row-safe form."""
    return torch.softmax(scores, -1) if bias is None else masked_softmax(scores)


class _ManualSDPA(torch.autograd.Function):
    """The naive forward with the backward written out (Vaswani attention, softmax Jacobian by hand)."""

    @staticmethod
    def forward(ctx, q, k, v, bias, s, dropout_p):
        p = _softmax(_scores(q, k, bias, s), bias)  # (..., T, S)
        if dropout_p > 0:
            keep = torch.rand_like(p) >= dropout_p
            p_drop = p * keep / (1 - dropout_p)
        else:
            keep, p_drop = None, p
        out = p_drop @ v  # (..., T, S) @ (..., S, hv) -> (..., T, hv)
        ctx.save_for_backward(q, k, v, p, keep)
        ctx.s, ctx.dropout_p = s, dropout_p
        ctx.bias_shape = None if bias is None or not bias.requires_grad else bias.shape
        ctx.mark_non_differentiable(p_drop)
        return out, p_drop

    @staticmethod
    def backward(ctx, d_out, _d_weights):
        q, k, v, p, keep = ctx.saved_tensors
        s, dp_ = ctx.s, ctx.dropout_p
        p_drop = p if keep is None else p * keep / (1 - dp_)
        d_v = p_drop.transpose(-2, -1) @ d_out  # (..., S, T) @ (..., T, hv) -> (..., S, hv)
        d_p = d_out @ v.transpose(-2, -1)  # (..., T, hv) @ (..., hv, S) -> (..., T, S)
        if keep is not None:
            d_p = d_p * keep / (1 - dp_)
        d_scores = softmax_backward(p, d_p)  # dS = P (dP - rowsum(dP P))
        d_q = (d_scores @ k) * s  # (..., T, S) @ (..., S, hs)
        d_k = (d_scores.transpose(-2, -1) @ q) * s  # (..., S, T) @ (..., T, hs)
        d_bias = None if ctx.bias_shape is None else d_scores.sum_to_size(ctx.bias_shape)
        return d_q, d_k, d_v, d_bias, None, None


def check_sdpa_args(
    query, key, value, attn_mask, dropout_p, is_causal, scale, impl, enable_gqa=False
) -> tuple[AttentionMask | None, tuple[int, ...]]:
    """Validate the arguments; return the mask as one :class:`AttentionMask` (or None) and the broadcast batch
    shape (the leading dims of the output; with ``enable_gqa``, query's heads)."""
    for name, x in (("query", query), ("key", key), ("value", value)):
        check_tensor(name, x)
        check_float(name, x)
        if x.dim() < 2:
            raise ValueError(
                f"{name}: expected a tensor of at least 2 dims (..., length, head_size), got {shape_str(x)}"
            )
    for name, x in (("key", key), ("value", value)):
        if x.dtype != query.dtype:
            raise TypeError(f"{name}: expected dtype {query.dtype} (that of query), got {x.dtype}")
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(
            f"key: expected head size {query.shape[-1]} (query's last dim), got key shape {shape_str(key)}"
        )
    if value.shape[-2] != key.shape[-2]:
        raise ValueError(
            f"value: expected {key.shape[-2]} positions (key's length S), got value shape {shape_str(value)}"
        )
    kv_lead = key.shape[:-2], value.shape[:-2]
    if enable_gqa:
        Hq, _ = gqa.check_gqa_heads(query, key, value)
        kv_lead = (*key.shape[:-3], Hq), (*value.shape[:-3], Hq)  # checked as if repeated to query's heads
    try:
        batch = broadcast_shapes(query.shape[:-2], *kv_lead)
    except ValueError:
        raise ValueError(
            f"query/key/value: batch dims do not broadcast: {shape_str(query)}, {shape_str(key)}, {shape_str(value)}"
        ) from None
    if impl not in IMPLS:
        raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
    if not isinstance(dropout_p, (int, float)) or isinstance(dropout_p, bool) or not 0 <= dropout_p < 1:
        raise ValueError(f"dropout_p: expected a probability in [0, 1), got {dropout_p!r}")
    if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale)):
        raise ValueError(f"scale: expected a finite number or None, got {scale!r}")
    mask = as_mask(attn_mask, is_causal)
    if mask is not None:
        mask.check(tuple(batch), query.shape[-2], key.shape[-2], query.dtype)
    return mask, tuple(batch)
