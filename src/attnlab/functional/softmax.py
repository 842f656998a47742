r"""The softmax over keys and its backward, written once for every attention in attnlab.

.. math::
    p_j = \frac{e^{s_j}}{\sum_{j'} e^{s_{j'}}}, \qquad
    \frac{\partial L}{\partial s_j} = p_j \Big(\frac{\partial L}{\partial p_j} - \sum_{j'} p_{j'}
    \frac{\partial L}{\partial p_{j'}}\Big)

The backward is the softmax Jacobian ``diag(p) - p p^T`` applied to ``dP``. In attention, where ``O = P V``, the
row sum ``sum_j p_j dP_j`` equals ``rowsum(dO * O)`` (FlashAttention's ``D``), which a tiled backward computes
once per row instead of from a whole row of ``P``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def masked_softmax(scores: Tensor) -> Tensor:
    """softmax over the last dim, with rows whose scores are all -inf (no allowed key) giving zeros, not NaN.

    No data-dependent branch and no host synchronisation: such rows are filled with 0 before the softmax and
    zeroed after it (so they pass no gradient). Callers whose rows cannot be empty (no mask) use
    ``torch.softmax`` directly and save the two extra passes.
    """
    empty = torch.isneginf(scores.amax(-1, keepdim=True))  # (..., T, 1): no allowed key in the row
    return torch.softmax(scores.masked_fill(empty, 0.0), -1).masked_fill(empty, 0.0)


def softmax_backward(p: Tensor, d_p: Tensor, rowdot: Tensor | None = None) -> Tensor:
    """``dS = P * (dP - rowsum(dP * P))`` over the last dim; ``rowdot`` is that row sum when known already
    (``D = rowsum(dO * O)`` in attention), broadcastable to ``(..., 1)``."""
    if rowdot is None:
        rowdot = (d_p * p).sum(-1, keepdim=True)  # (..., 1)
    return p * (d_p - rowdot)
