r"""The blocks the lab compares layer against layer: an LSTM block and an attention block of equal parameter count
(``parallelism``), and a causal convolution (``paths``: the third row of Vaswani et al. 2017's Table 1).

Each maps ``(B, T, C) -> (B, T, C)``. The two blocks return :class:`BlockOutput` ``(output, loss)``, the loss the
mean squared error against targets when they are given, so that the project's Trainer takes their training steps.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attnlab.nn as ann


class BlockOutput(NamedTuple):
    """output ``(B, T, C)``; loss: mean squared error against the targets, or None without them."""

    output: Tensor
    loss: Tensor | None


def _output(y: Tensor, targets: Tensor | None) -> BlockOutput:
    return BlockOutput(y, None if targets is None else F.mse_loss(y, targets))


class AttentionBlock(nn.Module):
    """Pre-norm transformer layer, causal: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, d_model: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = ann.MultiHeadAttention(d_model, heads)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(), nn.Linear(mlp_ratio * d_model, d_model)
        )

    def forward(self, x: Tensor, targets: Tensor | None = None) -> BlockOutput:
        x = x + self.attn(self.ln1(x), is_causal=True).output  # (B, T, C): position t sees 1..t
        return _output(x + self.mlp(self.ln2(x)), targets)  # (B, T, C), position-wise


class LSTMBlock(nn.Module):
    """``attnlab.nn.LSTM(C, H)`` then ``Linear(H, C)``."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.lstm = ann.LSTM(d_model, hidden, batch_first=True)
        self.out = nn.Linear(hidden, d_model)

    def forward(self, x: Tensor, targets: Tensor | None = None) -> BlockOutput:
        h, _ = self.lstm(x)  # (B, T, H)
        return _output(self.out(h), targets)  # (B, T, H) @ (H, C) -> (B, T, C)


def attention_block_params(d_model: int, mlp_ratio: int) -> int:
    """Parameters of :class:`AttentionBlock`: two LayerNorms, MHA (4 C^2 + 4 C), MLP (2 r C^2 + r C + C)."""
    C, r = d_model, mlp_ratio
    return 4 * C + (4 * C * C + 4 * C) + (2 * r * C * C + r * C + C)


def lstm_block_params(d_model: int, hidden: int) -> int:
    """Parameters of :class:`LSTMBlock`: W_ih (4H, C), W_hh (4H, H), two biases (4H), readout (C, H) + C."""
    C, H = d_model, hidden
    return 4 * H * (C + H) + 8 * H + H * C + C


def solve_lstm_hidden(d_model: int, target: int) -> int:
    """The H whose :class:`LSTMBlock` has the parameter count closest to ``target``: the positive root of
    ``4 H^2 + (5 C + 8) H + C - target = 0``, rounded to the nearer integer in parameters."""
    C = d_model
    a, b, c = 4.0, 5.0 * C + 8.0, C - target
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(candidates, key=lambda h: (abs(lstm_block_params(C, h) - target), h))


class CausalConv(nn.Module):
    """``y_t = b + sum_j W_j x_{t - (k-1-j) dilation}`` (``torch.nn.Conv1d`` after left zero padding);
    (B, n, d) -> (B, n, d). ``W_0`` is the oldest tap, reaching ``(k - 1) dilation`` positions back."""

    def __init__(self, d: int, k: int, dilation: int = 1, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv1d(d, d, k, dilation=dilation, dtype=dtype)
        self.pad = (k - 1) * dilation

    def forward(self, x: Tensor) -> Tensor:
        h = F.pad(x.transpose(1, 2), (self.pad, 0))  # (B, d, n) -> (B, d, pad + n)
        return self.conv(h).transpose(1, 2)  # (B, d, n) -> (B, n, d)


__all__ = [
    "AttentionBlock",
    "BlockOutput",
    "CausalConv",
    "LSTMBlock",
    "attention_block_params",
    "lstm_block_params",
    "solve_lstm_hidden",
]
