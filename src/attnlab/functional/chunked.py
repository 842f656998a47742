r"""Memory-efficient attention: FlashAttention-style tiles with the online softmax (Dao et al. 2022).

Forward, per query block, over key blocks b with scores ``S_b = Q K_b^T s + M_b``:

.. math::
    m' = \max(m, \mathrm{rowmax}\, S_b), \quad
    \ell' = e^{m - m'} \ell + \mathrm{rowsum}\, e^{S_b - m'}, \quad
    O' = e^{m - m'} O + e^{S_b - m'} V_b, \qquad \text{output} = O / \ell

so no ``(T, S)`` matrix is ever held: the extra memory is one ``(block_q, block_k)`` tile per head plus the
running ``m`` and ``l`` (O(T + S)). The backward saves only the output and the log-sum-exp
``L = m + log l`` per row, and recomputes each tile's probabilities ``P_b = exp(S_b - L)``:

.. math::
    D = \mathrm{rowsum}(dO \circ O), \quad dV_b \mathrel{+}= P_b^\top dO, \quad dP_b = dO V_b^\top, \quad
    dS_b = P_b \circ (dP_b - D), \quad dQ \mathrel{+}= dS_b K_b s, \quad dK_b \mathrel{+}= dS_b^\top Q s

(``D`` replaces ``rowsum(dP * P)``: both equal ``rowsum(dO * O)``.) The mask is an
:class:`~attnlab.functional.masks.AttentionMask` asked for one tile at a time: key blocks a query block cannot
see (above a causal diagonal in either alignment, left of a sliding window) are skipped, so causal, windowed and
key-padded attention keep the O(T + S) extra memory; only a user's dense ``(T, S)`` mask is an O(T S) input.
Rows with no allowed key: ``l = 0`` gives a zero output and ``L = +inf`` gives ``P = 0`` in the backward.
Dropout regenerates each tile's keep-mask in the backward from a per-tile seed.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from attnlab.functional.masks import AttentionMask
from attnlab.functional.softmax import softmax_backward

BLOCK_Q = 256
BLOCK_K = 512


def chunked_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: AttentionMask | None,
    scale: float,
    dropout_p: float,
    batch: tuple[int, ...],
    block_q: int = BLOCK_Q,
    block_k: int = BLOCK_K,
) -> Tensor:
    """Arguments as checked by :func:`attnlab.functional.scaled_dot_product_attention`; returns ``(..., T, hv)``."""
    if mask is not None and mask.dense is not None and mask.dense.requires_grad:
        raise ValueError("attn_mask: impl='chunked' does not differentiate the mask; use impl='naive' or 'manual'")
    if query.dtype in (torch.float16, torch.bfloat16):  # tiles and running sums in float32, as torch's kernels
        mask32 = None if mask is None else mask.to_float()
        with torch.autocast(query.device.type, enabled=False):  # float32 tiles even under autocast
            out = chunked_attention(
                query.float(), key.float(), value.float(), mask32, scale, dropout_p, batch, block_q, block_k
            )
        return out.to(query.dtype)
    q, k, v = (x.expand(*batch, *x.shape[-2:]) for x in (query, key, value))  # views, no copy
    seed = int(torch.randint(0, 2**62, (1,)).item()) if dropout_p > 0 else 0
    return _ChunkedSDPA.apply(q, k, v, mask, scale, dropout_p, seed, block_q, block_k)


class _Tiles:
    """The tile geometry, the masking of one tile, and its dropout keep-mask (regenerated from its seed)."""

    def __init__(self, T, S, mask, block_q, block_k, dropout_p, seed, like):
        self.T, self.S, self.mask = T, S, mask
        self.bq, self.bk, self.p, self.seed, self.like = block_q, block_k, dropout_p, seed, like
        self.n_k = -(-S // block_k)

    def q_blocks(self):
        return [(i0, min(i0 + self.bq, self.T)) for i0 in range(0, self.T, self.bq)]

    def k_blocks(self, i0: int, i1: int):
        """The key blocks some query of ``[i0, i1)`` may see; the others are skipped entirely."""
        lo, hi = (0, self.S) if self.mask is None else self.mask.key_range(i0, i1, self.T, self.S)
        for j0 in range(lo - lo % self.bk, hi, self.bk):
            yield j0, min(j0 + self.bk, self.S)

    def scores(self, qi: Tensor, kj: Tensor, i0, i1, j0, j1, scale: float) -> Tensor:
        s = (qi @ kj.transpose(-2, -1)) * scale  # (..., bq, hs) @ (..., hs, bk) -> (..., bq, bk)
        if self.mask is not None:
            allowed, bias = self.mask.tile(i0, i1, j0, j1, self.T, self.S, s.device)
            if allowed is not None:
                s = s.masked_fill(~allowed, float("-inf"))
            if bias is not None:
                s = s + bias
        return s

    def keep(self, shape, i0: int, j0: int) -> Tensor:
        g = torch.Generator(device=self.like.device)
        g.manual_seed(self.seed + (i0 // self.bq) * self.n_k + j0 // self.bk)
        return torch.rand(shape, generator=g, device=self.like.device, dtype=self.like.dtype) >= self.p


class _ChunkedSDPA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, scale, dropout_p, seed, block_q, block_k):
        T, S = q.shape[-2], k.shape[-2]
        tiles = _Tiles(T, S, mask, block_q, block_k, dropout_p, seed, q)
        out = q.new_empty(*q.shape[:-1], v.shape[-1])  # (..., T, hv)
        lse = q.new_empty(*q.shape[:-1], 1)  # (..., T, 1): log-sum-exp of each row's scores
        for i0, i1 in tiles.q_blocks():
            qi = q[..., i0:i1, :]  # (..., bq, hs)
            m = q.new_full((*q.shape[:-2], i1 - i0, 1), float("-inf"))  # running row max
            l = q.new_zeros(m.shape)  # running row sum of exp(s - m)
            acc = q.new_zeros(*q.shape[:-2], i1 - i0, v.shape[-1])  # (..., bq, hv)
            for j0, j1 in tiles.k_blocks(i0, i1):
                s = tiles.scores(qi, k[..., j0:j1, :], i0, i1, j0, j1, scale)  # (..., bq, bk)
                m_new = torch.maximum(m, s.amax(-1, keepdim=True))
                m_safe = torch.where(torch.isneginf(m_new), 0.0, m_new)  # rows with nothing allowed yet
                p = s.sub_(m_safe).exp_()  # (..., bq, bk), in place: no autograd inside forward
                alpha = torch.exp(m - m_safe)  # rescales what was accumulated under the old max
                l.mul_(alpha).add_(p.sum(-1, keepdim=True))
                if dropout_p > 0:
                    p.mul_(tiles.keep(p.shape, i0, j0)).div_(1 - dropout_p)
                acc.mul_(alpha).add_(p @ v[..., j0:j1, :])  # (..., bq, bk) @ (..., bk, hv)
                m = m_new
            empty = l == 0  # no allowed key in the row: output 0, L = +inf
            out[..., i0:i1, :] = acc / torch.where(empty, 1.0, l)
            m_safe = torch.where(torch.isneginf(m), 0.0, m)
            lse[..., i0:i1, :] = torch.where(empty, float("inf"), m_safe + torch.log(torch.where(empty, 1.0, l)))
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.tiles, ctx.scale = tiles, scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        q, k, v, out, lse = ctx.saved_tensors
        tiles: _Tiles = ctx.tiles
        scale, p_drop = ctx.scale, tiles.p
        d_q = torch.zeros_like(q)
        d_k = torch.zeros_like(k)
        d_v = torch.zeros_like(v)
        D = (d_out * out).sum(-1, keepdim=True)  # (..., T, 1): rowsum(dO * O) = rowsum(dP * P)
        for i0, i1 in tiles.q_blocks():
            qi, d_oi, lse_i, D_i = (x[..., i0:i1, :] for x in (q, d_out, lse, D))
            for j0, j1 in tiles.k_blocks(i0, i1):
                kj, vj = k[..., j0:j1, :], v[..., j0:j1, :]
                p = torch.exp(tiles.scores(qi, kj, i0, i1, j0, j1, scale) - lse_i)  # (..., bq, bk), recomputed
                d_p = d_oi @ vj.transpose(-2, -1)  # (..., bq, hv) @ (..., hv, bk)
                if p_drop > 0:
                    keep = tiles.keep(p.shape, i0, j0)
                    d_v[..., j0:j1, :] += (p * keep / (1 - p_drop)).transpose(-2, -1) @ d_oi
                    d_p = d_p * keep / (1 - p_drop)
                else:
                    d_v[..., j0:j1, :] += p.transpose(-2, -1) @ d_oi  # (..., bk, bq) @ (..., bq, hv)
                d_s = softmax_backward(p, d_p, D_i)  # (..., bq, bk): P * (dP - D)
                d_q[..., i0:i1, :] += (d_s @ kj) * scale  # (..., bq, bk) @ (..., bk, hs)
                d_k[..., j0:j1, :] += (d_s.transpose(-2, -1) @ qi) * scale  # (..., bk, bq) @ (..., bq, hs)
        return d_q, d_k, d_v, None, None, None, None, None, None
