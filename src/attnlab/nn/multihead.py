r"""Multi-head attention (Vaswani et al. 2017, section 3.2.2), batch first, over the one shared SDPA.

.. math::
    \mathrm{MultiHead}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h) W^O, \quad
    \mathrm{head}_i = \mathrm{Attention}(Q W_i^Q, K W_i^K, V W_i^V)

Each head works in ``hs = embed_dim / num_heads`` dimensions, so h heads cost about what one full-width head
does, but can attend to h different places at once.

Parameters have ``torch.nn.MultiheadAttention``'s names and shapes (``in_proj_weight (3E, E)`` and
``in_proj_bias`` when kdim = vdim = E, else ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight``;
``out_proj``), so its ``state_dict`` loads directly (:meth:`MultiHeadAttention.from_torch`).

Grouped-query and multi-query attention (Ainslie et al. 2023; Shazeer 2019): ``num_kv_heads`` key/value heads
(a divisor of ``num_heads``; 1 = MQA, ``num_heads`` or None = MHA), each shared by ``num_heads / num_kv_heads``
query heads (query head h uses kv head ``h // G``, torch's ``enable_gqa`` order). Keys and values are projected
to ``num_kv_heads * hs`` features only, and a KV cache holds only those heads: ``G`` times less than MHA. With
fewer kv heads than query heads the projections are separate, ``q_proj_weight (E, E)``, ``k_proj_weight
(n_kv hs, kdim)``, ``v_proj_weight (n_kv hs, vdim)``, and ``in_proj_bias`` is ``(E + 2 n_kv hs,)``
(W^Q's part, then W^K's, then W^V's); ``num_kv_heads=None`` keeps torch's layout.

Mask convention (differs from ``nn.MultiheadAttention``, follows ``scaled_dot_product_attention``): a bool
``attn_mask`` is True where attention is **allowed**; a float one is added to the scores; it broadcasts to
``(B, nh, T, S)``; an :class:`~attnlab.functional.AttentionMask` works too. ``key_mask`` ``(B, S)`` is True at
real (non-padding) keys. ``is_causal`` means what it means in the SDPA (and in torch): query i attends keys
``j <= i``, top-left. Queries that follow cached keys need the other alignment, spelled explicitly:
``attn_mask=AttentionMask(causal="lower_right")`` (query i is position ``S - T + i``); ``is_causal=True`` with a
non-empty cache is refused. For one new query that mask is empty, and none is built.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import (
    autocast_enabled,
    broadcast_shapes,
    check_float,
    check_heads,
    check_ndim,
    check_positive_int,
    check_tensor,
    shape_str,
)
from attnlab.functional.masks import AttentionMask
from attnlab.functional.sdpa import IMPLS, AttentionOutput, dispatch, scaled_dot_product_attention
from attnlab.nn.caches import KVCache, StaticKVCache
from attnlab.nn.positional import apply_rotary


class MultiHeadAttention(nn.Module):
    """Multi-head attention, batch first. ``forward`` returns ``AttentionOutput(output (B, T, E),
    weights (B, nh, T, S) per head or None)``.

    Args:
        embed_dim: E, the model width (queries and outputs).
        num_heads: nh; E must be divisible by it.
        dropout: dropout on the attention weights, in training mode only.
        bias: biases on the input and output projections.
        kdim, vdim: feature sizes of keys and values (cross-attention); default E.
        impl: the SDPA implementation (``"auto"`` uses torch's fused kernel unless weights are asked for).
        rotary: rotate queries and keys by their positions (RoPE) before scoring; with a cache, new positions
            continue from the cached length.
        num_kv_heads: key/value heads for grouped-query attention (module docstring); None: num_heads.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
        *,
        impl: str = "auto",
        rotary: bool = False,
        num_kv_heads: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_heads(embed_dim, num_heads)
        n_kv = num_heads if num_kv_heads is None else num_kv_heads
        if isinstance(n_kv, bool) or not isinstance(n_kv, int) or n_kv < 1 or num_heads % n_kv:
            raise ValueError(f"num_kv_heads: expected None or a divisor of num_heads={num_heads}, got {num_kv_heads!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        if impl not in IMPLS:
            raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.num_kv_heads, kv_dim = n_kv, n_kv * self.head_dim
        self.kdim = embed_dim if kdim is None else check_positive_int("kdim", kdim)
        self.vdim = embed_dim if vdim is None else check_positive_int("vdim", vdim)
        self.dropout, self.impl, self.rotary = float(dropout), impl, bool(rotary)
        if rotary and self.head_dim % 2:
            raise ValueError(f"rotary: needs an even head size, got embed_dim/num_heads = {self.head_dim}")
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self._packed = self._qkv_same_embed_dim and n_kv == num_heads  # torch's one in_proj_weight
        kw = {"device": device, "dtype": dtype}
        if self._packed:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **kw))  # W^Q|W^K|W^V
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **kw))  # W^Q
            self.k_proj_weight = nn.Parameter(torch.empty(kv_dim, self.kdim, **kw))  # W^K: n_kv heads only
            self.v_proj_weight = nn.Parameter(torch.empty(kv_dim, self.vdim, **kw))  # W^V: n_kv heads only
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(embed_dim + 2 * kv_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)  # W^O
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Xavier-uniform projections and zero biases, as torch initialises its MultiheadAttention."""
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                nn.init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention, *, impl: str = "auto") -> MultiHeadAttention:
        """The same layer from a ``torch.nn.MultiheadAttention`` (batch_first or not: ours is batch first)."""
        if not isinstance(m, nn.MultiheadAttention):
            raise TypeError(f"m: expected a torch.nn.MultiheadAttention, got {type(m).__name__}")
        if m.bias_k is not None or m.add_zero_attn:
            raise ValueError("m: add_bias_kv and add_zero_attn are not supported")
        w = m.out_proj.weight
        ours = cls(
            m.embed_dim,
            m.num_heads,
            m.dropout,
            bias=m.in_proj_bias is not None,
            kdim=m.kdim,
            vdim=m.vdim,
            impl=impl,
            device=w.device,
            dtype=w.dtype,
        )
        ours.load_state_dict(m.state_dict())
        return ours

    def _projections(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._packed:
            return self.in_proj_weight.chunk(3, 0)  # each (E, E)
        return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight

    def _biases(self) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        if self.in_proj_bias is None:
            return None, None, None
        kv_dim = self.num_kv_heads * self.head_dim
        return self.in_proj_bias.split([self.embed_dim, kv_dim, kv_dim])  # b^Q, b^K, b^V

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        attn_mask: Tensor | AttentionMask | None = None,
        key_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | StaticKVCache | None = None,
    ) -> AttentionOutput:
        """query ``(B, T, E)``, key ``(B, S, kdim)``, value ``(B, S, vdim)`` (default: query, i.e. self-attention);
        unbatched ``(T, E)`` inputs work too. ``cache`` appends this call's keys/values to earlier ones."""
        self_attention = key is None and value is None
        key = query if key is None else key
        value = key if value is None else value
        query, key, value, batched = self._check_inputs(query, key, value)
        B, T, E = query.shape
        nh, n_kv, hs = self.num_heads, self.num_kv_heads, self.head_dim
        if self_attention and self._packed:
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)  # (B, T, 3E): one matmul for Q, K, V
            q, k, v = qkv.split(E, dim=2)
        else:
            w_q, w_k, w_v = self._projections()
            b_q, b_k, b_v = self._biases()
            q, k, v = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)
        S_new = k.shape[1]
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, S_new, n_kv, hs).transpose(1, 2)  # (B, n_kv, S, hs)
        v = v.view(B, S_new, n_kv, hs).transpose(1, 2)  # (B, n_kv, S, hs)
        if self.rotary:
            offset = 0 if cache is None else cache.offset  # new positions continue after the cached ones
            q, k = apply_rotary(q, offset), apply_rotary(k, offset)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, n_kv, S_past + S_new, hs): the cache holds the kv heads only
        S = k.shape[2]
        mask = self._mask(attn_mask, key_mask, is_causal, B, T, S, query)
        if cache is not None:
            mask = cache.adapt(mask, T)  # the mask over the cache's keys
        dropout_p = self.dropout if self.training else 0.0
        gqa = n_kv != nh  # query head h attends with kv head h // (nh / n_kv)
        if T == 1 and (mask is None or mask.allows_all(T, S)) and not need_weights and not autocast_enabled(q):
            # one decoded token (after a cache every key is allowed): q, k, v are this layer's own projections
            # (one dtype, agreeing shapes), so the SDPA's argument checks cannot fail; they would be per-token cost
            out = dispatch(q, k, v, None, dropout_p, None, gqa, self.impl, False, (B, nh))
        else:
            out = scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, enable_gqa=gqa, impl=self.impl,
                return_weights=need_weights,
            )  # fmt: skip
        y, weights = out if need_weights else (out, None)
        y = y.transpose(1, 2).reshape(B, T, E)  # (B, nh, T, hs) -> (B, T, nh*hs): concat the heads
        y = self.out_proj(y)  # (B, T, E) @ W^O
        if not batched:
            y = y.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        return AttentionOutput(y, weights)

    def _check_inputs(self, query, key, value):
        inputs = (("query", query, self.embed_dim), ("key", key, self.kdim), ("value", value, self.vdim))
        same = key is query and value is query and self._qkv_same_embed_dim  # self-attention, one width: once
        for name, x, width in inputs[:1] if same else inputs:
            check_tensor(name, x)
            check_float(name, x)
            check_ndim(name, x, (2, 3), "(batch, length, features) or unbatched (length, features)")
            if x.shape[-1] != width:
                raise ValueError(f"{name}: expected last dimension {width}, got shape {shape_str(x)}")
        if not query.dim() == key.dim() == value.dim():
            raise ValueError(
                f"query/key/value: expected the same rank, got {shape_str(query)}, {shape_str(key)}, {shape_str(value)}"
            )
        batched = query.dim() == 3
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        if key.shape[:2] != value.shape[:2]:
            raise ValueError(f"value: expected batch and length {tuple(key.shape[:2])} (key's), got {shape_str(value)}")
        if key.shape[0] != query.shape[0]:
            raise ValueError(f"key: expected batch size {query.shape[0]} (query's), got {shape_str(key)}")
        return query, key, value, batched

    def _mask(self, attn_mask, key_mask, is_causal, B, T, S, like) -> AttentionMask | None:
        """One :class:`AttentionMask` for the SDPA (or None): the user's mask, the key padding ``(B, 1, S)`` over
        the heads, and ``is_causal`` (top-left); nothing here is materialized as a ``(T, S)`` matrix."""
        if attn_mask is not None and is_causal:
            raise ValueError("attn_mask: expected None when is_causal=True (give one or the other)")
        if attn_mask is None:
            mask = AttentionMask(causal="upper_left") if is_causal else None
        elif isinstance(attn_mask, AttentionMask):
            mask = attn_mask
        else:
            check_tensor("attn_mask", attn_mask)
            if attn_mask.dtype != torch.bool and attn_mask.dtype != like.dtype:
                raise TypeError(f"attn_mask: expected dtype torch.bool or {like.dtype}, got {attn_mask.dtype}")
            try:
                broadcast_shapes(attn_mask.shape, (B, self.num_heads, T, S))
            except ValueError:
                raise ValueError(
                    f"attn_mask: expected a shape broadcastable to (B, nh, T, S) = {(B, self.num_heads, T, S)}, "
                    f"got {shape_str(attn_mask)}"
                ) from None
            mask = AttentionMask(dense=attn_mask)
        if key_mask is not None:
            check_tensor("key_mask", key_mask)
            if key_mask.dim() == 1 and B == 1:
                key_mask = key_mask.unsqueeze(0)  # unbatched input: (S,)
            if key_mask.dtype != torch.bool:
                raise TypeError(f"key_mask: expected a bool tensor (True at real keys), got dtype {key_mask.dtype}")
            if tuple(key_mask.shape) != (B, S):
                raise ValueError(f"key_mask: expected shape (B, S) = {(B, S)}, got {shape_str(key_mask)}")
            pad = key_mask[:, None, :]  # (B, 1, S): the same padding for every head
            if mask is None:
                mask = AttentionMask(key_padding=pad)
            else:
                both = pad if mask.key_padding is None else mask.key_padding & pad
                mask = dataclasses.replace(mask, key_padding=both)
        return mask
