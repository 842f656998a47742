r"""Multi-head latent attention (MLA; DeepSeek-V2, DeepSeek-AI 2024, section 2.1): the KV cache as one small
latent per token.

For the hidden state h_t ``(C,)``, n_h heads of size d_h, a KV latent of size d_c, a query latent of size d_c'
and a decoupled rotary part of size d_h^R (equation numbers of the paper):

.. math::
    c^{KV}_t = W^{DKV} h_t \ (9) \qquad k^C_t = W^{UK} c^{KV}_t \ (10) \qquad v^C_t = W^{UV} c^{KV}_t \ (11) \\
    c^Q_t = W^{DQ} h_t \ (12) \qquad q^C_t = W^{UQ} c^Q_t \ (13) \qquad
    q^R_t = \mathrm{RoPE}(W^{QR} c^Q_t) \ (14) \qquad k^R_t = \mathrm{RoPE}(W^{KR} h_t) \ (15) \\
    q_{t,i} = [q^C_{t,i}; q^R_{t,i}] \ (16) \qquad k_{t,i} = [k^C_{t,i}; k^R_t] \ (17) \\
    o_{t,i} = \sum_j \mathrm{softmax}_j\Big(\frac{q_{t,i}^\top k_{j,i}}{\sqrt{d_h + d_h^R}}\Big) v^C_{j,i} \ (18)
    \qquad u_t = W^O [o_{t,1}; \dots; o_{t,n_h}] \ (19)

The rotary key k^R is shared by all heads (one ``(d_h^R,)`` per token, as in multi-query attention), and, as the
paper adds, an RMSNorm follows each latent (``q_norm`` on c^Q, ``kv_norm`` on c^KV). Everything a later token
needs from token j is ``[c^KV_j; k^R_j]``: the cache holds ``d_c + d_h^R`` numbers per token per layer
(:class:`LatentCache`), against ``2 n_h d_h`` for multi-head attention (DeepSeek-V2: 512 + 64 = 576 against
32768).

Two computations of one function (``absorb``):

- plain: up-project every cached latent to keys ``k^C = W^{UK} c`` and values ``v^C = W^{UV} c``, then attend
  per head with the one SDPA (the form of eq. 16-19; the cheaper one when queries are as many as keys).
- absorbed: ``q_i^T k^C_{j,i} = (W^{UK\top}_i q^C_i)^T c_j``, so the query absorbs W^UK and every head attends
  straight over the cached latents, ``[W^{UK\top}_i q^C_i; q^R_i] \cdot [c_j; k^R_j]``: one shared key/value
  "head" (grouped-query attention with one key/value head, ``enable_gqa``), values ``c_j`` themselves; the
  output ``sum_j p_j c_j`` then goes through W^UV_i and W^O (W^UV absorbed on the output side, by
  associativity). Decoding one token never up-projects the cache. The RoPE part is why the key is split: a
  position-dependent rotation between W^UQ and W^UK would block the absorption (section 2.1.3).

Parameters (``nn.Linear`` layouts, named after the matrices): ``w_dq`` (d_c', C), ``w_uq`` (n_h d_h, d_c'),
``w_qr`` (n_h d_h^R, d_c'), ``w_dkv`` (d_c, C), ``w_kr`` (d_h^R, C), ``w_uk`` and ``w_uv`` (n_h d_h, d_c),
``out_proj`` (C, n_h d_h), ``q_norm`` and ``kv_norm``. ``bias`` puts biases on all but W^UK and W^UV (none in
DeepSeek-V2); those two never have one (absorbed, a key bias would only shift each row of scores).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnlab._checks import check_float, check_ndim, check_positive_int, check_tensor, shape_str
from attnlab.functional.masks import AttentionMask, as_mask
from attnlab.functional.sdpa import IMPLS, AttentionOutput, scaled_dot_product_attention
from attnlab.nn.norms import RMSNorm
from attnlab.nn.positional import apply_rotary
from attnlab.nn.rolling_cache import RollingBuffer, check_cache_mask


class LatentCache:
    """The latent ``[c^KV; k^R]`` of every position seen, ``(B, 1, S, d_c + d_h^R)``, for decoding with MLA.

    ``window=None``: grows with the positions (``capacity`` allocated at the first update, doubled past it);
    ``window=w``: a :class:`~attnlab.nn.rolling_cache.RollingBuffer` of the last ``w + 1`` positions, for use
    with ``AttentionMask(causal="lower_right", window=w)``. ``length``: positions seen.
    """

    def __init__(self, capacity: int | None = None, window: int | None = None) -> None:
        self.capacity = 16 if capacity is None else check_positive_int("capacity", capacity)
        self.window = None if window is None else check_positive_int("window", window)
        self._ring = None if window is None else RollingBuffer(window)
        self._buf: Tensor | None = None
        self._length = 0

    @property
    def length(self) -> int:
        return self._ring.length if self._ring is not None else self._length

    @property
    def offset(self) -> int:
        """The position of the next query."""
        return self.length

    def adapt(self, mask: AttentionMask | None, T: int) -> AttentionMask | None:
        """The caller's mask over the cached positions: a rolling cache takes only its own window (causal,
        bottom-right); a growing one refuses top-left causal once earlier positions are cached."""
        if self._ring is not None:
            check_cache_mask(self, mask)
        elif mask is not None and mask.causal == "upper_left" and self.length != T:
            raise ValueError("attn_mask: queries that follow cached positions need AttentionMask(causal='lower_right')")
        return mask

    def update(self, latent: Tensor) -> Tensor:
        """Append ``(B, 1, n, d)`` new positions; returns what the new queries attend to (see RollingBuffer)."""
        if self._ring is not None:
            return self._ring.update(latent)
        n = latent.shape[2]
        if self._buf is None:
            self._buf = latent.new_empty(*latent.shape[:2], max(self.capacity, n), latent.shape[3])
        elif self._buf.shape[:2] != latent.shape[:2] or self._buf.shape[3] != latent.shape[3]:
            raise ValueError(f"latent: expected shape (B, 1, n, d) = {tuple(self._buf.shape[:2])} and "
                             f"d = {self._buf.shape[3]} (the cache's), got {shape_str(latent)}")  # fmt: skip
        if self._length + n > self._buf.shape[2]:
            grown = self._buf.new_empty(*self._buf.shape[:2], max(2 * self._buf.shape[2], self._length + n),
                                        self._buf.shape[3])  # fmt: skip
            grown.narrow(2, 0, self._length).copy_(self._buf.narrow(2, 0, self._length))
            self._buf = grown
        self._buf.narrow(2, self._length, n).copy_(latent)
        self._length += n
        return self._buf.narrow(2, 0, self._length)

    def nbytes(self) -> int:
        """Bytes of cache tensors held (allocated capacity included)."""
        if self._ring is not None:
            return self._ring.nbytes()
        return 0 if self._buf is None else self._buf.numel() * self._buf.element_size()

    def reset(self) -> None:
        self._buf, self._length = None, 0
        if self._ring is not None:
            self._ring.reset()


class MultiHeadLatentAttention(nn.Module):
    """MLA self-attention, batch first: x ``(B, T, C)`` -> ``AttentionOutput(output (B, T, C), weights)``.

    Args:
        embed_dim: C.
        num_heads: n_h; C must be divisible by it (d_h = C / n_h).
        d_latent: d_c, the KV latent (the cache holds it).
        d_rope: d_h^R, the decoupled rotary part of queries and keys (even).
        d_latent_q: d_c', the query latent (default d_c).
        dropout: on the attention weights, in training only.
        bias: biases on the projections other than W^UK and W^UV.
        impl: the SDPA implementation.
        absorb: None (default): absorbed for one new query (decoding), plain otherwise; True/False forces one.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        d_latent: int,
        d_rope: int,
        d_latent_q: int | None = None,
        *,
        dropout: float = 0.0,
        bias: bool = False,
        impl: str = "auto",
        absorb: bool | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("embed_dim", embed_dim), ("num_heads", num_heads), ("d_latent", d_latent)):
            check_positive_int(name, value)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim: expected a multiple of num_heads={num_heads}, got {embed_dim}")
        if isinstance(d_rope, bool) or not isinstance(d_rope, int) or d_rope < 2 or d_rope % 2:
            raise ValueError(f"d_rope: expected an even integer >= 2 (rotary pairs), got {d_rope!r}")
        d_latent_q = d_latent if d_latent_q is None else check_positive_int("d_latent_q", d_latent_q)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        if impl not in IMPLS:
            raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
        if absorb not in (None, True, False):
            raise ValueError(f"absorb: expected None, True or False, got {absorb!r}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.d_latent, self.d_rope, self.d_latent_q = d_latent, d_rope, d_latent_q
        self.dropout, self.impl, self.absorb = float(dropout), impl, absorb
        C, nh, hs, dc, dq, dr = embed_dim, num_heads, self.head_dim, d_latent, d_latent_q, d_rope
        kw = {"device": device, "dtype": dtype}
        self.w_dq = nn.Linear(C, dq, bias=bias, **kw)  # W^DQ (12)
        self.q_norm = RMSNorm(dq, **kw)
        self.w_uq = nn.Linear(dq, nh * hs, bias=bias, **kw)  # W^UQ (13)
        self.w_qr = nn.Linear(dq, nh * dr, bias=bias, **kw)  # W^QR (14)
        self.w_dkv = nn.Linear(C, dc, bias=bias, **kw)  # W^DKV (9)
        self.kv_norm = RMSNorm(dc, **kw)
        self.w_kr = nn.Linear(C, dr, bias=bias, **kw)  # W^KR (15)
        self.w_uk = nn.Linear(dc, nh * hs, bias=False, **kw)  # W^UK (10)
        self.w_uv = nn.Linear(dc, nh * hs, bias=False, **kw)  # W^UV (11)
        self.out_proj = nn.Linear(nh * hs, C, bias=bias, **kw)  # W^O (19)

    def new_cache(self, capacity: int | None = None, window: int | None = None) -> LatentCache:
        return LatentCache(capacity, window)

    def forward(
        self,
        x: Tensor,
        *,
        attn_mask: AttentionMask | Tensor | None = None,
        cache: LatentCache | None = None,
        absorb: bool | None = None,
        need_weights: bool = False,
    ) -> AttentionOutput:
        """x ``(B, T, C)``; ``attn_mask`` over ``(T, S)`` as in :class:`~attnlab.nn.MultiHeadAttention` (causal
        decoding: ``AttentionMask(causal="lower_right")``); ``cache`` appends this call's latents to the earlier
        ones; ``absorb`` overrides the module's choice for this call."""
        check_tensor("x", x)
        check_float("x", x)
        check_ndim("x", x, (3,), "(batch, length, embed_dim)")
        if x.shape[-1] != self.embed_dim:
            raise ValueError(f"x: expected last dimension {self.embed_dim}, got shape {shape_str(x)}")
        B, T, _ = x.shape
        nh, hs, dc, dr = self.num_heads, self.head_dim, self.d_latent, self.d_rope
        offset = 0 if cache is None else cache.offset  # position of the first new token
        c_q = self.q_norm(self.w_dq(x))  # c^Q (12): (B, T, d_c')
        q_c = self.w_uq(c_q).view(B, T, nh, hs).transpose(1, 2)  # q^C (13): (B, nh, T, hs)
        q_r = apply_rotary(self.w_qr(c_q).view(B, T, nh, dr).transpose(1, 2), offset)  # q^R (14): (B, nh, T, dr)
        c_kv = self.kv_norm(self.w_dkv(x))  # c^KV (9): (B, T, d_c)
        k_r = apply_rotary(self.w_kr(x).unsqueeze(1), offset)  # k^R (15), shared by the heads: (B, 1, T, dr)
        latent = torch.cat([c_kv.unsqueeze(1), k_r], dim=-1)  # [c^KV; k^R]: (B, 1, T, d_c + dr)
        mask = as_mask(attn_mask, False)  # one AttentionMask (or None), as the SDPA takes it
        if cache is not None:
            latent = cache.update(latent)  # (B, 1, S, d_c + dr): all the past a query needs
            mask = cache.adapt(mask, T)  # the mask over the cached positions
        S = latent.shape[2]
        absorb = (self.absorb if self.absorb is not None else T == 1) if absorb is None else absorb
        sdpa = {
            "attn_mask": mask,
            "dropout_p": self.dropout if self.training else 0.0,
            "scale": 1.0 / math.sqrt(hs + dr),  # eq. (18): the query/key size is d_h + d_h^R
            "impl": self.impl,
            "return_weights": need_weights,
        }
        c, k_r = latent[..., :dc], latent[..., dc:]  # views: (B, 1, S, d_c), (B, 1, S, dr)
        if absorb:
            w_uk = self.w_uk.weight.view(nh, hs, dc)  # W^UK_i: (nh, hs, d_c)
            q_lat = q_c @ w_uk  # W^UK_i^T q^C_i: (B, nh, T, hs) @ (nh, hs, d_c) -> (B, nh, T, d_c)
            q = torch.cat([q_lat, q_r], dim=-1)  # (B, nh, T, d_c + dr)
            out = scaled_dot_product_attention(q, latent, c, enable_gqa=True, **sdpa)  # one shared latent "head"
            o_lat, weights = out if need_weights else (out, None)  # sum_j p_j c_j: (B, nh, T, d_c)
            w_uv = self.w_uv.weight.view(nh, hs, dc)  # W^UV_i: (nh, hs, d_c)
            o = o_lat @ w_uv.transpose(1, 2)  # W^UV_i o_lat: (B, nh, T, d_c) @ (nh, d_c, hs) -> (B, nh, T, hs)
        else:
            k_c = self.w_uk(c).view(B, S, nh, hs).transpose(1, 2)  # k^C (10): (B, 1, S, d_c) -> (B, nh, S, hs)
            v_c = self.w_uv(c).view(B, S, nh, hs).transpose(1, 2)  # v^C (11): (B, nh, S, hs)
            k = torch.cat([k_c, k_r.expand(B, nh, S, dr)], dim=-1)  # k_{j,i} = [k^C; k^R] (17): (B, nh, S, hs+dr)
            q = torch.cat([q_c, q_r], dim=-1)  # q_{t,i} = [q^C; q^R] (16): (B, nh, T, hs + dr)
            out = scaled_dot_product_attention(q, k, v_c, **sdpa)  # eq. (18)
            o, weights = out if need_weights else (out, None)  # (B, nh, T, hs)
        u = self.out_proj(o.transpose(1, 2).reshape(B, T, nh * hs))  # u_t = W^O [o_1; ...; o_nh] (19): (B, T, C)
        return AttentionOutput(u, weights)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, d_latent={self.d_latent}, "
            f"d_latent_q={self.d_latent_q}, d_rope={self.d_rope}"
        )
