r"""Causal linear attention as a token mixer (Katharopoulos et al. 2020), with multi-head attention's projections.

For x ``(B, T, E)``: ``q, k, v = x W^Q, x W^K, x W^V`` split into nh heads of size hs, then per head the causal
linear attention of :func:`attnlab.functional.linear_attention` (feature map elu + 1, no softmax):

.. math::
    y_i = \frac{\phi(q_i)^\top S_i}{\phi(q_i)^\top z_i}, \qquad
    S_i = S_{i-1} + \phi(k_i) v_i^\top, \quad z_i = z_{i-1} + \phi(k_i),

and the heads are concatenated through ``out_proj`` (W^O), exactly where softmax attention's would go.
Parameters have :class:`~attnlab.nn.MultiHeadAttention`'s names and shapes (``in_proj_weight (3E, E)``,
``in_proj_bias``, ``out_proj``), so a softmax and a linear model of the same size have the same parameter count.

Decoding: the whole past of a layer is the state ``(S, z)``, ``(B, nh, hs, hs)`` and ``(B, nh, hs)``, whatever
the length: a :class:`StateCache` carries it from call to call, and one new token costs
:func:`~attnlab.functional.linear_attention_step`'s O(hs^2) per head. No positions are added here: order
enters through causality alone (a recurrent mixer needs no position table, so a model built on it has no
context limit of its own).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import check_float, check_ndim, check_positive_int, check_tensor, shape_str
from attnlab.functional.linear_attention import linear_attention, linear_attention_step


class StateCache:
    """The recurrent state of one layer (``state``: None before the first token, then what the mixer returns,
    e.g. a :class:`~attnlab.functional.LinearAttentionState` or a :class:`~attnlab.nn.MambaState`) and
    ``length``, the positions it has absorbed. The decoding counterpart of a KV cache for recurrent mixers."""

    def __init__(self) -> None:
        self.state: Any = None
        self.length = 0

    @property
    def offset(self) -> int:
        """The position of the next token (for a position embedding outside the mixer)."""
        return self.length

    def nbytes(self) -> int:
        """Bytes of the state's tensors (0 before the first token)."""
        return 0 if self.state is None else sum(t.numel() * t.element_size() for t in self.state)

    def reset(self) -> None:
        self.state, self.length = None, 0


class LinearAttention(nn.Module):
    """Multi-head causal linear attention, batch first: x ``(B, T, E)`` -> ``(B, T, E)``.

    Args:
        embed_dim: E; num_heads: nh (E divisible by it).
        bias: biases on the input and output projections.
        chunk_size: the chunk length of the parallel form in training (:func:`~attnlab.functional.linear_attention`).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        bias: bool = True,
        *,
        chunk_size: int = 64,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("embed_dim", embed_dim)
        check_positive_int("num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim: expected a multiple of num_heads={num_heads}, got {embed_dim}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.chunk_size = check_positive_int("chunk_size", chunk_size)
        kw = {"device": device, "dtype": dtype}
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **kw))  # W^Q|W^K|W^V
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim, **kw)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)  # W^O
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, *, cache: StateCache | None = None) -> Tensor:
        """x ``(B, T, E)``; ``cache`` continues from its state and is left holding the state after x."""
        check_tensor("x", x)
        check_float("x", x)
        check_ndim("x", x, (3,), "(batch, length, embed_dim)")
        if x.shape[-1] != self.embed_dim or x.shape[1] < 1:
            raise ValueError(f"x: expected shape (batch, length >= 1, {self.embed_dim}), got {shape_str(x)}")
        B, T, E = x.shape
        nh, hs = self.num_heads, self.head_dim
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).split(E, dim=2)  # (B, T, E) each
        state = None if cache is None else cache.state
        if T == 1 and cache is not None:  # decoding: one recurrent step, O(hs^2) per head
            q, k, v = (t.view(B, nh, hs) for t in (q, k, v))  # (B, nh, hs)
            y, state = linear_attention_step(q, k, v, state)  # (B, nh, hs)
            y = y.reshape(B, 1, E)
        else:
            q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
            y, state = linear_attention(q, k, v, state, chunk_size=self.chunk_size)  # (B, nh, T, hs)
            y = y.transpose(1, 2).reshape(B, T, E)  # concat the heads: (B, T, nh * hs)
        if cache is not None:
            cache.state = state
            cache.length += T
        return self.out_proj(y)  # (B, T, E) @ W^O
