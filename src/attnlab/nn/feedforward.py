r"""The position-wise feed-forward network of a transformer block: GPT-2's GELU FFN or SwiGLU (Shazeer 2020).

.. math::
    \mathrm{FFN}_{\mathrm{GELU}}(x) = \mathrm{GELU}(x W_1 + b_1)\, W_2 + b_2
    \qquad \text{(Vaswani et al. 2017, eq. 2, with GPT-2's GELU)} \\
    \mathrm{FFN}_{\mathrm{SwiGLU}}(x) = (\mathrm{Swish}_1(x W) \otimes x V)\, W_2
    \qquad \text{(Shazeer 2020, eq. 6; } \mathrm{Swish}_1 = \mathrm{SiLU} = x\,\sigma(x))

SwiGLU is a gated linear unit (Dauphin et al. 2017) with a Swish gate: one half of the hidden layer decides,
element by element, how much of the other half passes. It has three matrices instead of two, so at equal
parameters its hidden width is 2/3 of GELU's 4C, as Shazeer 2020 does ("we reduce ... d_ff ... from 3072 to
2048"): :func:`hidden_size` gives ``round(8 C / 3)``. LLaMA, Mistral and Qwen use it, without biases.

Layout (``nn.Linear`` weights, names of :class:`~attnlab.nn.TransformerEncoderLayer`): ``linear1`` ``(H, C)``
for GELU; for SwiGLU ``(2H, C)`` holding ``W`` (the gate, rows ``[0, H)``) over ``V`` (the value, rows
``[H, 2H)``), one matmul for both; ``linear2`` ``(C, H)`` (W_2) in both. The layers live in the block that uses
them (so GPT-2's state-dict keys stay ``blocks.i.linear1.weight``); this module sizes them and applies them.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import check_positive_int

MLPS = ("gelu", "swiglu")


def hidden_size(d_model: int, mlp: str) -> int:
    """H: ``4 C`` for GELU (GPT-2); ``round(8 C / 3)`` for SwiGLU, so that its three matrices hold about the
    parameters of GELU's two (``3 C H ~ 8 C^2``)."""
    check_positive_int("d_model", d_model)
    if mlp == "gelu":
        return 4 * d_model
    if mlp == "swiglu":
        return round(8 * d_model / 3)
    raise ValueError(f"mlp: expected one of {MLPS}, got {mlp!r}")


def dense_layers(
    d_model: int, mlp: str, *, d_hidden: int | None = None, bias: bool = True, device=None, dtype=None
) -> tuple[nn.Linear, nn.Linear]:
    """``(linear1, linear2)`` of a dense FFN of kind ``mlp`` (see the module docstring for the layout)."""
    H = hidden_size(d_model, mlp) if d_hidden is None else check_positive_int("d_hidden", d_hidden)
    gates = 2 if mlp == "swiglu" else 1
    kw = {"bias": bias, "device": device, "dtype": dtype}
    return nn.Linear(d_model, gates * H, **kw), nn.Linear(H, d_model, **kw)  # W_1 (or [W; V]), W_2


def feed_forward(x: Tensor, linear1: nn.Linear, linear2: nn.Linear, mlp: str, dropout: nn.Module | None = None):
    """The FFN of kind ``mlp`` on x ``(..., C)`` -> ``(..., C)``; ``dropout`` (if given) after the activation,
    where ``torch.nn.TransformerEncoderLayer`` puts it."""
    h = linear1(x)  # (..., H) or (..., 2H)
    if mlp == "gelu":
        h = F.gelu(h)  # GELU(x W_1 + b_1), exact erf form as torch's "gelu"
    elif mlp == "swiglu":
        gate, value = h.chunk(2, dim=-1)  # x W, x V: (..., H) each
        h = F.silu(gate) * value  # Swish_1(x W) * x V   (Shazeer 2020, eq. 6)
    else:
        raise ValueError(f"mlp: expected one of {MLPS}, got {mlp!r}")
    if dropout is not None:
        h = dropout(h)
    return linear2(h)  # (..., H) @ W_2 -> (..., C)
