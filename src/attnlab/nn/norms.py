r"""Normalisation layers: RMSNorm (Zhang & Sennrich 2019), and the one place that picks LayerNorm or RMSNorm.

LayerNorm centres and scales each vector: ``(x - mean) / sqrt(var + eps) * g + b``. RMSNorm (Zhang & Sennrich
2019, eq. 4) drops the centring and the bias, keeping only the re-scaling, which they found carries the benefit:

.. math::
    \bar{x}_i = \frac{x_i}{\mathrm{RMS}(x)}\, g_i, \qquad
    \mathrm{RMS}(x) = \sqrt{\frac{1}{n} \sum_{i=1}^{n} x_i^2 + \epsilon}

(``eps`` inside the square root, as ``torch.nn.RMSNorm``; the paper writes it without one). One reduction
instead of two, no bias: the norm of LLaMA, Mistral, Qwen and DeepSeek.

:class:`RMSNorm` has ``torch.nn.RMSNorm``'s arguments and its one parameter ``weight`` (g), so either loads the
other's ``state_dict``. As torch does, float16/bfloat16 inputs are normalised and scaled by the gain in float32,
then returned in their own dtype; ``eps=None`` means the machine epsilon of that float32 (or float64) computation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from attnlab._checks import check_float, check_tensor, shape_str

NORMS = ("layernorm", "rmsnorm")


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last ``len(normalized_shape)`` dims.

    Args:
        normalized_shape: the trailing shape to normalise over (an int for the last dim).
        eps: added to the mean square inside the square root; None: ``torch.finfo`` eps of the computation dtype.
        elementwise_affine: a learned gain ``weight`` (ones at init); no bias (there is none in RMSNorm).
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not shape or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
            raise ValueError(f"normalized_shape: expected positive integers, got {normalized_shape!r}")
        if eps is not None and not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and eps >= 0):
            raise ValueError(f"eps: expected None or a number >= 0, got {eps!r}")
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, bool(elementwise_affine)
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(shape, device=device, dtype=dtype))  # g
        else:
            self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            nn.init.ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x)
        check_float("x", x)
        n = len(self.normalized_shape)
        if tuple(x.shape[-n:]) != self.normalized_shape or x.dim() < n:
            raise ValueError(f"x: expected trailing shape {self.normalized_shape}, got {shape_str(x)}")
        wide = torch.promote_types(x.dtype, torch.float32)  # float32 for float16/bfloat16, as torch
        xw = x.to(wide)
        eps = torch.finfo(wide).eps if self.eps is None else self.eps
        dims = tuple(range(-n, 0))
        inv_rms = torch.rsqrt(xw.pow(2).mean(dims, keepdim=True) + eps)  # 1 / RMS(x), (..., 1)
        y = xw * inv_rms  # x / RMS(x)
        if self.weight is not None:
            y = y * self.weight.to(wide)  # * g, still in the wide dtype
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


def make_norm(kind: str, width: int, *, bias: bool = True, device=None, dtype=None) -> nn.Module:
    """``"layernorm"``: ``torch.nn.LayerNorm(width, bias=bias)`` (GPT-2's); ``"rmsnorm"``: :class:`RMSNorm`
    (no bias whatever ``bias`` says: it has none)."""
    if kind == "layernorm":
        return nn.LayerNorm(width, bias=bias, device=device, dtype=dtype)
    if kind == "rmsnorm":
        return RMSNorm(width, device=device, dtype=dtype)
    raise ValueError(f"norm: expected one of {NORMS}, got {kind!r}")
