r"""A learned differentiable dictionary: cues in one space retrieve values stored under keys in another.

A dictionary holds N items, keys ``K (N, d)`` and values ``V (N, dv)`` (fixed buffers). A cue ``x (dx,)`` is
scored against every key with Luong's general score, ``score_j = (x / tau)^T W_a k_j`` (the learned query
projection ``W_a (dx, d)`` is the only parameter; ``tau`` a temperature), and the lookup returns the blend
``r = sum_j softmax(score)_j v_j`` (:class:`attnlab.nn.LuongAttention`). Trained on ``|r - v_target|^2``, it learns
where each cue's key is; as ``tau`` falls the weights tend to the one-hot of the best key, the hard lookup.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from attnlab.nn import LuongAttention


class LookupOutput(NamedTuple):
    """values ``(n, dv)`` (the blends), weights ``(n, N)``; loss: mean ``|r - v_target|^2``, or None."""

    values: Tensor
    weights: Tensor
    loss: Tensor | None


class SoftLookup(nn.Module):
    """Luong-general attention of ``n`` cues over a fixed dictionary ``(keys, values)`` at temperature ``tau``."""

    def __init__(self, keys: Tensor, values: Tensor, cue_dim: int, tau: float = 1.0) -> None:
        super().__init__()
        if keys.dim() != 2 or values.dim() != 2 or keys.shape[0] != values.shape[0]:
            raise ValueError(
                f"keys, values: expected (N, d) and (N, dv) with the same N, got {tuple(keys.shape)} and "
                f"{tuple(values.shape)}"
            )
        if not tau > 0:
            raise ValueError(f"tau: expected a positive temperature, got {tau!r}")
        self.register_buffer("keys", keys)
        self.register_buffer("values", values)
        self.attn = LuongAttention(cue_dim, keys.shape[1], "general")
        self.tau = float(tau)

    def forward(self, cues: Tensor, targets: Tensor | None = None) -> LookupOutput:
        """cues ``(n, dx)``; targets ``(n,)`` the index of each cue's item. All n cues look up one dictionary: they
        go in as the T = n decoder steps of one batch element, so each score matrix is one ``(n, dx) x (dx, d) x
        (d, N)`` product."""
        out = self.attn((cues / self.tau).unsqueeze(0), self.keys.unsqueeze(0), self.values.unsqueeze(0))
        r, w = out.output.squeeze(0), out.weights.squeeze(0)  # (n, dv), (n, N)
        loss = None if targets is None else (r - self.values[targets]).square().sum(-1).mean()
        return LookupOutput(r, w, loss)


__all__ = ["LookupOutput", "SoftLookup"]
