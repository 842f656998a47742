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

(``D`` replaces ``rowsum(dP * P)``: both equal ``rowsum(dO * O)``.) Causal tiles entirely above the diagonal are
skipped. Rows with no allowed key: ``l = 0`` gives a zero output and ``L = +inf`` gives ``P = 0`` in the backward.
Dropout regenerates each tile's keep-mask in the backward from a per-tile seed.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

BLOCK_Q = 256
BLOCK_K = 512


def chunked_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None,
    is_causal: bool,
    scale: float,
    dropout_p: float,
    batch: tuple[int, ...],
    block_q: int = BLOCK_Q,
    block_k: int = BLOCK_K,
) -> Tensor:
    """Arguments as checked by :func:`attnlab.functional.scaled_dot_product_attention`; returns ``(..., T, hv)``."""
    if attn_mask is not None and attn_mask.requires_grad:
        raise ValueError("attn_mask: impl='chunked' does not differentiate the mask; use impl='naive' or 'manual'")
    if query.dtype in (torch.float16, torch.bfloat16):  # tiles and running sums in float32, as torch's kernels
        mask32 = attn_mask if attn_mask is None or attn_mask.dtype == torch.bool else attn_mask.float()
        out = chunked_attention(
            query.float(), key.float(), value.float(), mask32, is_causal, scale, dropout_p, batch, block_q, block_k
        )
        return out.to(query.dtype)
    q, k, v = (x.expand(*batch, *x.shape[-2:]) for x in (query, key, value))  # views, no copy
    mask = None if attn_mask is None else attn_mask.expand(*batch, q.shape[-2], k.shape[-2])  # (..., T, S) view
    seed = int(torch.randint(0, 2**62, (1,)).item()) if dropout_p > 0 else 0
    return _ChunkedSDPA.apply(q, k, v, mask, is_causal, scale, dropout_p, seed, block_q, block_k)


class _Tiles:
    """The tile geometry, the masking of one tile, and its dropout keep-mask (regenerated from its seed)."""

    def __init__(self, T, S, mask, is_causal, block_q, block_k, dropout_p, seed, like):
        self.T, self.S, self.mask, self.causal = T, S, mask, is_causal
        self.bq, self.bk, self.p, self.seed, self.like = block_q, block_k, dropout_p, seed, like
        self.n_k = -(-S // block_k)

    def q_blocks(self):
        return [(i0, min(i0 + self.bq, self.T)) for i0 in range(0, self.T, self.bq)]

    def k_blocks(self, i0: int, i1: int):
        for j0 in range(0, self.S, self.bk):
            if self.causal and j0 > i1 - 1:  # every key of the tile is after every query: skipped entirely
                break
            yield j0, min(j0 + self.bk, self.S)

    def scores(self, qi: Tensor, kj: Tensor, i0, i1, j0, j1, scale: float) -> Tensor:
        s = (qi @ kj.transpose(-2, -1)) * scale  # (..., bq, hs) @ (..., hs, bk) -> (..., bq, bk)
        if self.causal and j1 - 1 > i0:  # the tile straddles the diagonal: key j allowed iff j <= i
            rows = torch.arange(i0, i1, device=s.device).unsqueeze(1)
            cols = torch.arange(j0, j1, device=s.device)
            s = s.masked_fill(cols > rows, float("-inf"))
        if self.mask is not None:
            tile = self.mask[..., i0:i1, j0:j1]
            s = s.masked_fill(~tile, float("-inf")) if tile.dtype == torch.bool else s + tile
        return s

    def keep(self, shape, i0: int, j0: int) -> Tensor:
        g = torch.Generator(device=self.like.device)
        g.manual_seed(self.seed + (i0 // self.bq) * self.n_k + j0 // self.bk)
        return torch.rand(shape, generator=g, device=self.like.device, dtype=self.like.dtype) >= self.p


class _ChunkedSDPA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, is_causal, scale, dropout_p, seed, block_q, block_k):
        T, S = q.shape[-2], k.shape[-2]
        tiles = _Tiles(T, S, mask, is_causal, block_q, block_k, dropout_p, seed, q)
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
                d_s = p * (d_p - D_i)  # (..., bq, bk)
                d_q[..., i0:i1, :] += (d_s @ kj) * scale  # (..., bq, bk) @ (..., bk, hs)
                d_k[..., j0:j1, :] += (d_s.transpose(-2, -1) @ qi) * scale  # (..., bk, bq) @ (..., bq, hs)
        return d_q, d_k, d_v, None, None, None, None, None, None, None
