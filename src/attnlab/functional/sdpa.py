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
scores). ``is_causal``: query i attends keys j <= i (top-left aligned, as torch). A query row with no allowed
key returns zeros (not NaN), in every implementation, and passes no gradient. In float16/bfloat16 the
from-scratch implementations compute in float32 and return the input's dtype, as torch's kernels do.

Implementations (``impl``):

- ``"naive"``: materializes the ``(T, S)`` weights; autograd differentiates it; can return the weights.
- ``"manual"``: the naive forward with the hand-derived backward (:class:`_ManualSDPA`), per row:
  ``dV = P^T dO``, ``dP = dO V^T``, ``dS = P * (dP - rowsum(dP * P))``, ``dQ = dS K s``, ``dK = dS^T Q s``.
- ``"chunked"``: FlashAttention-style tiling with the online softmax (:mod:`attnlab.functional.chunked`):
  O(T + S) extra memory per head, forward and backward.
- ``"torch"``: ``torch.nn.functional.scaled_dot_product_attention`` (the fused kernel).
- ``"triton"``: FlashAttention-2 in Triton (:mod:`attnlab.functional.flash_triton`): CUDA, or the CPU through
  Triton's interpreter; float16/bfloat16/float32, ``is_causal`` or a bool key-padding mask ``(..., 1, S)``.
- ``"auto"``: torch's kernel, unless the weights are asked for (then naive).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab._checks import check_float, check_tensor, shape_str

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
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
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
    batch = check_sdpa_args(query, key, value, attn_mask, dropout_p, is_causal, scale, impl)
    s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    if impl == "auto":
        impl = "naive" if return_weights else "torch"
    if return_weights and impl not in ("naive", "manual"):
        raise ValueError(f"return_weights: only impl='naive' or 'manual' materialize the weights, got impl={impl!r}")
    if impl == "triton":  # Triton is optional: imported only when asked for
        from attnlab.functional import flash_triton

        return flash_triton.from_sdpa(query, key, value, attn_mask, dropout_p, is_causal, s, batch)
    if impl in ("naive", "manual") and query.dtype in LOW_PRECISION:
        # Scores, softmax and accumulators in float32, as torch's kernels do; the result in the input's dtype.
        mask32 = attn_mask if attn_mask is None or attn_mask.dtype == torch.bool else attn_mask.float()
        out = scaled_dot_product_attention(
            query.float(),
            key.float(),
            value.float(),
            mask32,
            dropout_p,
            is_causal,
            s,
            impl=impl,
            return_weights=return_weights,
        )
        if return_weights:
            return AttentionOutput(out.output.to(query.dtype), out.weights.to(query.dtype))
        return out.to(query.dtype)
    mask = attention_bias(attn_mask, is_causal, query.shape[-2], key.shape[-2], query)  # (..., T, S) or None
    if impl == "torch":
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=s
        )
        return out
    if impl == "chunked":
        from attnlab.functional.chunked import chunked_attention

        return chunked_attention(query, key, value, attn_mask, is_causal, s, dropout_p, batch)
    q, k, v = (x.expand(*batch, *x.shape[-2:]) for x in (query, key, value))
    if impl == "manual":
        out, weights = _ManualSDPA.apply(q, k, v, mask, s, dropout_p)
    else:
        out, weights = _naive(q, k, v, mask, s, dropout_p)
    return AttentionOutput(out, weights) if return_weights else out


def _naive(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, s: float, dropout_p: float):
    scores = _scores(q, k, mask, s)  # (..., T, S)
    weights = masked_softmax(scores)  # rows with no allowed key -> 0
    if dropout_p > 0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return weights @ v, weights  # (..., T, S) @ (..., S, hv) -> (..., T, hv)


def _scores(q: Tensor, k: Tensor, mask: Tensor | None, s: float) -> Tensor:
    """``Q K^T s + M``, with one ``(..., T, S)`` matrix: scale and mask are applied in place (their backward
    needs neither operand), so the naive path holds the scores and the weights, never more."""
    scores = q @ k.transpose(-2, -1)  # (..., T, hs) @ (..., hs, S) -> (..., T, S)
    scores.mul_(s)
    if mask is not None:
        scores.add_(mask)
    return scores


def masked_softmax(scores: Tensor) -> Tensor:
    """softmax over the last dim, with rows whose scores are all -inf giving zeros instead of NaN."""
    empty = torch.isneginf(scores.amax(-1, keepdim=True))  # (..., T, 1): no allowed key in the row
    if not bool(empty.any()):
        return torch.softmax(scores, -1)
    return torch.softmax(scores.masked_fill(empty, 0.0), -1).masked_fill(empty, 0.0)


class _ManualSDPA(torch.autograd.Function):
    """The naive forward with the backward written out (Vaswani attention, softmax Jacobian by hand)."""

    @staticmethod
    def forward(ctx, q, k, v, mask, s, dropout_p):
        p = masked_softmax(_scores(q, k, mask, s))  # (..., T, S)
        if dropout_p > 0:
            keep = torch.rand_like(p) >= dropout_p
            p_drop = p * keep / (1 - dropout_p)
        else:
            keep, p_drop = None, p
        out = p_drop @ v  # (..., T, S) @ (..., S, hv) -> (..., T, hv)
        ctx.save_for_backward(q, k, v, p, keep)
        ctx.s, ctx.dropout_p = s, dropout_p
        ctx.mask_shape = None if mask is None or not mask.requires_grad else mask.shape
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
        d_scores = p * (d_p - (d_p * p).sum(-1, keepdim=True))  # softmax backward: dS = P (dP - rowsum(dP P))
        d_q = (d_scores @ k) * s  # (..., T, S) @ (..., S, hs)
        d_k = (d_scores.transpose(-2, -1) @ q) * s  # (..., S, T) @ (..., T, hs)
        d_mask = None if ctx.mask_shape is None else d_scores.sum_to_size(ctx.mask_shape)
        return d_q, d_k, d_v, d_mask, None, None


def attention_bias(attn_mask: Tensor | None, is_causal: bool, T: int, S: int, like: Tensor) -> Tensor | None:
    """The additive form of a mask: 0 where attention is allowed, -inf where not (float masks as given)."""
    if is_causal:
        return additive_mask(torch.ones(T, S, dtype=torch.bool, device=like.device).tril(), like)  # key j <= query i
    return None if attn_mask is None else additive_mask(attn_mask, like)


def additive_mask(mask: Tensor, like: Tensor) -> Tensor:
    """A bool mask (True = may attend) as 0 / -inf in ``like``'s dtype; a float mask is returned as it is."""
    if mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=like.dtype, device=mask.device).masked_fill(~mask, float("-inf"))


def check_sdpa_args(query, key, value, attn_mask, dropout_p, is_causal, scale, impl) -> tuple[int, ...]:
    """Validate the arguments; return the broadcast batch shape (the leading dims of the output)."""
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
    try:
        batch = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"query/key/value: batch dims do not broadcast: {shape_str(query)}, {shape_str(key)}, {shape_str(value)}"
        ) from None
    if impl not in IMPLS:
        raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
    if not isinstance(dropout_p, (int, float)) or isinstance(dropout_p, bool) or not 0 <= dropout_p < 1:
        raise ValueError(f"dropout_p: expected a probability in [0, 1), got {dropout_p!r}")
    if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale)):
        raise ValueError(f"scale: expected a finite number or None, got {scale!r}")
    if attn_mask is not None:
        check_tensor("attn_mask", attn_mask)
        if is_causal:
            raise ValueError("attn_mask: expected None when is_causal=True (give one or the other)")
        if attn_mask.dtype != torch.bool and attn_mask.dtype != query.dtype:
            raise TypeError(f"attn_mask: expected dtype torch.bool or {query.dtype} (query's), got {attn_mask.dtype}")
        T, S = query.shape[-2], key.shape[-2]
        try:
            full = torch.broadcast_shapes(attn_mask.shape, (*batch, T, S))
        except RuntimeError:
            full = None
        if full != (*batch, T, S):
            raise ValueError(
                f"attn_mask: expected a shape that broadcasts to {(*batch, T, S)} (batch..., T, S), "
                f"got {shape_str(attn_mask)}"
            )
    return tuple(batch)
