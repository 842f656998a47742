r"""The two-marker reader of the lab's ``heads`` experiment: which of d classes is ``argmax_j (a_j - b_j)``, where
``a`` and ``b`` are the contents at two marked positions of a sequence.

``x = W_in u + e_kind`` at every position (a linear map of the content ``u (d,)`` plus an embedding of its kind:
plain, marker 1, marker 2, query; no positional encoding, since the markers are found by content, not by place),
then one :class:`attnlab.nn.MultiHeadAttention` layer whose single query is the last position, then an MLP readout
to d logits. One head returns one convex combination of values, where ``a`` and ``b`` land added in the same
subspace; h heads of width E/h can each carry one marker whole.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.nn import MultiHeadAttention

KINDS = 4  # plain, marker 1, marker 2, query


class MarkerOutput(NamedTuple):
    """logits ``(B, d)``; weights: the query's weights per head ``(B, nh, T)`` when asked for, else None; loss:
    cross-entropy against the targets, or None without them."""

    logits: Tensor
    weights: Tensor | None
    loss: Tensor | None


class TwoMarkerModel(nn.Module):
    """``x = W_in u + e_kind`` -> multi-head attention from the last position -> MLP -> d logits."""

    def __init__(self, value_dim: int, embed_dim: int, num_heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.content = nn.Linear(value_dim, embed_dim)
        self.kind = nn.Embedding(KINDS, embed_dim)
        self.attn = MultiHeadAttention(embed_dim, num_heads)
        self.readout = nn.Sequential(nn.Linear(embed_dim, mlp_hidden), nn.ReLU(), nn.Linear(mlp_hidden, value_dim))

    def forward(
        self, contents: Tensor, kinds: Tensor, targets: Tensor | None = None, *, need_weights: bool = False
    ) -> MarkerOutput:
        """contents ``(B, T, d)``, kinds ``(B, T)`` long, targets ``(B,)`` class ids."""
        x = self.content(contents) + self.kind(kinds)  # (B, T, E)
        out = self.attn(x[:, -1:], x, x, need_weights=need_weights)  # query (B, 1, E) over keys (B, T, E)
        logits = self.readout(out.output[:, 0])  # (B, E) -> (B, d)
        weights = None if out.weights is None else out.weights[:, :, 0]  # (B, nh, 1, T) -> (B, nh, T)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return MarkerOutput(logits, weights, loss)


__all__ = ["KINDS", "MarkerOutput", "TwoMarkerModel"]
