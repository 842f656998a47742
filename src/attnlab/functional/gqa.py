r"""Grouped-query attention in the one SDPA (``enable_gqa=True``, torch's argument and semantics).

Grouped-query attention (Ainslie et al. 2023) gives ``Hq`` query heads only ``Hkv`` key/value heads, ``Hq`` a
multiple of ``Hkv``: query head h uses key/value head ``h // G`` with ``G = Hq / Hkv`` (multi-query attention,
Shazeer 2019, is ``Hkv = 1``; ``Hkv = Hq`` is multi-head attention). torch's documentation defines it by
copying: ``key.repeat_interleave(G, -3)``, the same for value, then plain attention. A KV cache then holds
``Hkv`` heads instead of ``Hq``: ``G`` times less memory, and ``G`` times fewer bytes read per decoded token.

How each implementation serves it, without that copy where it can:

- ``"torch"``: torch's own ``enable_gqa=True`` (its kernels index the shared head; torch >= 2.5, else the
  documented ``repeat_interleave``).
- ``"naive"``, ``"manual"``, ``"chunked"``: the query heads are regrouped as ``(..., Hkv, G, T, hs)`` against
  keys/values ``(..., Hkv, 1, S, hs)``, an extra broadcast dim that every implementation already takes (the
  mask's head dim is regrouped the same way). When no mask applies (one new token after a cache, the decoding
  case, or no mask at all), the G query heads of a group are folded into the query length instead,
  ``(..., Hkv, G T, hs)``: one ``(G T, hs) @ (hs, S)`` product per key/value head, which reads each key once.
  (With a mask the broadcast product lets torch's matmul expand the keys of a group internally: transient, and
  no larger than the keys of plain multi-head attention.)
- any other implementation: the ``repeat_interleave`` definition.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from attnlab._checks import shape_str
from attnlab.functional.masks import AttentionMask

TORCH_HAS_GQA = "enable_gqa" in (F.scaled_dot_product_attention.__doc__ or "")
REGROUPED_IMPLS = ("naive", "manual", "chunked")


def check_gqa_heads(query: Tensor, key: Tensor, value: Tensor) -> tuple[int, int]:
    """``(Hq, Hkv)`` from dim -3 of query and key/value; raises unless ``Hkv`` divides ``Hq``."""
    for name, x in (("query", query), ("key", key), ("value", value)):
        if x.dim() < 3:
            raise ValueError(
                f"{name}: enable_gqa needs a heads dim: expected (..., heads, length, head_size), got {shape_str(x)}"
            )
    Hq, Hkv = query.shape[-3], key.shape[-3]
    if value.shape[-3] != Hkv:
        raise ValueError(f"value: expected {Hkv} heads (key's, dim -3), got {shape_str(value)}")
    if Hq % Hkv:
        raise ValueError(
            f"key: expected a number of heads (dim -3) that divides query's {Hq} (enable_gqa), got {shape_str(key)}"
        )
    return Hq, Hkv


def repeat_kv(key: Tensor, value: Tensor, groups: int) -> tuple[Tensor, Tensor]:
    """torch's definition: each key/value head repeated for the ``groups`` query heads that share it."""
    return key.repeat_interleave(groups, dim=-3), value.repeat_interleave(groups, dim=-3)


def regroup(query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask | None, Hkv: int):
    """Query heads as groups over shared key/value heads (module docstring). Returns ``(q, k, v, mask, ungroup)``
    where ``ungroup`` maps an output (or weights) ``(..., Hkv, [G,] rows, X)`` back to ``(..., Hq, T, X)``."""
    *lead, Hq, T, hs = query.shape
    G = Hq // Hkv
    if mask is None:  # fold the group into the query length: (..., Hkv, G T, hs) against (..., Hkv, S, hs)
        q = query.reshape(*lead, Hkv, G * T, hs)  # heads h = kv * G + g, rows g * T + t
        return q, key, value, None, lambda y: y.reshape(*lead, Hq, T, y.shape[-1])
    q = query.unflatten(-3, (Hkv, G))  # (..., Hkv, G, T, hs)
    k, v = key.unsqueeze(-3), value.unsqueeze(-3)  # (..., Hkv, 1, S, hs|hv): broadcast over the group
    mask = AttentionMask(
        causal=mask.causal,
        window=mask.window,
        key_padding=_regroup_heads(mask.key_padding, -2, Hkv, G),
        dense=_regroup_heads(mask.dense, -3, Hkv, G),
    )
    return q, k, v, mask, lambda y: y.flatten(-4, -3)  # (..., Hkv, G, T, X) -> (..., Hq, T, X)


def _regroup_heads(m: Tensor | None, dim: int, Hkv: int, G: int) -> Tensor | None:
    """A mask's heads dim (``dim``; broadcastable to Hq) split as ``(Hkv, G)``, or given a size-1 group dim."""
    if m is None or m.dim() < -dim:
        return m  # no heads dim: it broadcasts over both new dims as it is
    if m.shape[dim] == 1:
        return m.unsqueeze(dim)  # (..., 1, 1, ...)
    return m.unflatten(dim, (Hkv, G))  # (..., Hkv, G, ...)


def torch_gqa(query, key, value, attn_mask, dropout_p, is_causal, scale) -> Tensor:
    """torch's kernel with its ``enable_gqa``, or its documented definition on a torch without it."""
    if TORCH_HAS_GQA:
        return F.scaled_dot_product_attention(
            query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale,
            enable_gqa=True,
        )  # fmt: skip
    key, value = repeat_kv(key, value, query.shape[-3] // key.shape[-3])
    return F.scaled_dot_product_attention(
        query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale
    )
