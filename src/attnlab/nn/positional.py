"""Positional encodings: sinusoidal (Vaswani et al. 2017), learned (GPT-2), and rotary (RoPE, Su et al. 2021).

Attention itself is permutation-equivariant: without positions, "dog bites man" and "man bites dog" give the
same set of outputs. The first two add a position vector to the token embeddings; rotary rotates queries and
keys so that their dot product depends on the relative offset only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab._checks import check_positive_int


def sinusoidal_positions(length: int, dim: int, *, device=None, dtype=None) -> Tensor:
    r"""Vaswani et al. 2017, section 3.5: ``PE(p, 2i) = sin(p / 10000^{2i/d})``, ``PE(p, 2i+1) = cos(...)``;
    ``(length, dim)``. Each pair of dimensions is a rotation at its own frequency, so PE(p + k) is a linear
    function of PE(p)."""
    check_positive_int("length", length)
    check_positive_int("dim", dim)
    pos = torch.arange(length, device=device, dtype=torch.float64).unsqueeze(1)  # (L, 1)
    freq = 10000.0 ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float64) / dim)  # (ceil(d/2),)
    angles = pos * freq  # (L, ceil(d/2))
    pe = torch.zeros(length, dim, device=device, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles[:, : dim // 2])
    return pe.to(dtype or torch.get_default_dtype())


class SinusoidalPositionalEncoding(nn.Module):
    """Adds fixed sinusoidal encodings: ``x (B, T, C) + PE[offset : offset + T]``; no parameters."""

    def __init__(self, dim: int, max_len: int = 4096) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_positions(max_len, dim), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        T = x.shape[1]
        if offset + T > self.pe.shape[0]:
            raise ValueError(f"x: positions up to {offset + T} exceed max_len={self.pe.shape[0]}")
        return x + self.pe[offset : offset + T].to(x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """Adds a learned vector per position (GPT-2): ``x (B, T, C) + W_pos[offset : offset + T]``."""

    def __init__(self, max_len: int, dim: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_len, dim, device=device, dtype=dtype))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: Tensor, offset: int | Tensor = 0) -> Tensor:
        """``offset``: the first position, an int, or a 0-d device tensor (a CUDA-graph decode step reads its
        position on the device; the range is then the caller's to keep, as nothing is read back to check it)."""
        T = x.shape[1]
        if isinstance(offset, Tensor):
            return x + self.weight.index_select(0, offset + torch.arange(T, device=offset.device))  # (T, C)
        if offset + T > self.weight.shape[0]:
            raise ValueError(f"x: positions up to {offset + T} exceed max_len={self.weight.shape[0]}")
        return x + self.weight[offset : offset + T]


def apply_rotary(x: Tensor, offset: int | Tensor = 0, base: float = 10000.0) -> Tensor:
    r"""Rotary position embedding (RoPE, Su et al. 2021) on ``x (..., T, hs)`` (hs even): each pair
    ``(x_{2i}, x_{2i+1})`` at position p is rotated by the angle ``p * base^{-2i/hs}``. Applied to queries and
    keys, it makes ``q_m . k_n`` depend on positions only through ``m - n``."""
    T, hs = x.shape[-2], x.shape[-1]
    if hs % 2:
        raise ValueError(f"x: expected an even head size for rotary embeddings, got {hs}")
    wide = torch.float64 if x.dtype == torch.float64 else torch.float32  # angles at least as precise as x
    freq = base ** (-torch.arange(0, hs, 2, device=x.device, dtype=wide) / hs)  # (hs/2,)
    pos = torch.arange(T, device=x.device, dtype=wide) + offset  # (T,): offset may be a device tensor
    angles = pos.unsqueeze(1) * freq  # (T, hs/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, hs/2) each
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., T, hs/2, 2)
    return out.flatten(-2)  # (..., T, hs)
