"""What the multi-head and KV-cache exercises share: the torch oracle with copied weights, the library's layer
called with the learner's weight tensors, and one multi-head attention with knobs for the known mistakes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.exercises.trial import Trial
from attnlab.nn.multihead import MultiHeadAttention


def torch_mha(t: Trial, E: int, nh: int, dtype=torch.float32) -> nn.MultiheadAttention:
    """``torch.nn.MultiheadAttention`` (batch first) with random weights and non-zero biases."""
    with t.seeded():
        m = nn.MultiheadAttention(E, nh, batch_first=True, dtype=dtype).eval()
    with torch.no_grad():
        m.in_proj_bias.copy_(t.randn(3 * E, dtype=dtype, scale=0.5))
        m.out_proj.bias.copy_(t.randn(E, dtype=dtype, scale=0.5))
    return m


def weights(m: nn.MultiheadAttention, grad: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(in_proj_weight (3E, E), in_proj_bias (3E,), out_proj_weight (E, E), out_proj_bias (E,))``."""
    ws = (m.in_proj_weight, m.in_proj_bias, m.out_proj.weight, m.out_proj.bias)
    return tuple(w.detach().clone().requires_grad_(grad) for w in ws)


def torch_forward(m: nn.MultiheadAttention, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """The oracle's output for a mask in the exercise's convention (bool True = allowed, float added);
    torch's own bool mask means the opposite (True = not allowed)."""
    if mask is not None and mask.dtype == torch.bool:
        mask = ~mask
    return m(q, k, v, attn_mask=mask, need_weights=False)[0]


def bottom_right(T: int, S: int) -> Tensor:
    return torch.arange(S) <= torch.arange(T).unsqueeze(1) + (S - T)  # (T, S): query i at position S - T + i


def library_mha(
    query, key, value, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, **kw
) -> Tensor:
    """attnlab's MultiHeadAttention run on the given weight tensors (functional_call keeps them in the graph)."""
    E = query.shape[-1]
    with torch.device("meta"):
        layer = MultiHeadAttention(E, num_heads, impl="naive")
    params = {
        "in_proj_weight": in_proj_weight,
        "in_proj_bias": in_proj_bias,
        "out_proj.weight": out_proj_weight,
        "out_proj.bias": out_proj_bias,
    }
    return torch.func.functional_call(layer, params, (query, key, value), kw).output


def heads_attention(
    query,
    key,
    value,
    in_proj_weight,
    in_proj_bias,
    out_proj_weight,
    out_proj_bias,
    num_heads,
    attn_mask=None,
    is_causal=False,
    *,
    split: str = "transpose",
    merge: str = "transpose",
    scale_by: str = "head",
    out_proj: bool = True,
    transpose_weights: bool = True,
    polarity: bool = True,
) -> Tensor:
    """Multi-head attention written out, batch first, with one knob per known mistake."""
    B, T, E = query.shape
    S, nh = key.shape[1], num_heads
    hs = E // nh
    w_q, w_k, w_v = in_proj_weight.chunk(3)  # each (E, E): W^Q | W^K | W^V
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    if transpose_weights:
        q, k, v = query @ w_q.T + b_q, key @ w_k.T + b_k, value @ w_v.T + b_v  # (B, T|S, E)
    else:
        q, k, v = query @ w_q + b_q, key @ w_k + b_k, value @ w_v + b_v
    if split == "transpose":
        q, k, v = (x.view(B, -1, nh, hs).transpose(1, 2) for x in (q, k, v))  # (B, nh, T|S, hs)
    else:
        q, k, v = (x.reshape(B, nh, -1, hs) for x in (q, k, v))  # a view without the transpose
    scale = 1 / math.sqrt(hs if scale_by == "head" else E)
    scores = q @ k.transpose(-2, -1) * scale  # (B, nh, T, S)
    if is_causal:
        scores = scores.masked_fill(~bottom_right(T, S), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask if polarity else attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    y = torch.softmax(scores, dim=-1) @ v  # (B, nh, T, hs)
    if merge == "transpose":
        y = y.transpose(1, 2).reshape(B, T, E)  # (B, T, nh * hs): head 0's hs values, then head 1's, ...
    elif merge == "reshape":
        y = y.reshape(B, T, E)  # wrong: mixes positions and heads
    else:
        y = y.permute(0, 2, 3, 1).reshape(B, T, E)  # wrong: (B, T, hs, nh), the heads interleaved
    return F.linear(y, out_proj_weight, out_proj_bias) if out_proj else y
