r"""The transformer block (Vaswani et al. 2017, section 3.1): self-attention and a position-wise feed-forward
network, each wrapped in a residual connection with layer normalisation.

.. math::
    \text{post-norm:}\quad x = \mathrm{LN}_1(x + \mathrm{SA}(x)), \quad x = \mathrm{LN}_2(x + \mathrm{FFN}(x)) \\
    \text{pre-norm:}\quad x = x + \mathrm{SA}(\mathrm{LN}_1(x)), \quad x = x + \mathrm{FFN}(\mathrm{LN}_2(x)) \\
    \mathrm{FFN}(x) = W_2\, \phi(W_1 x + b_1) + b_2 \qquad (\phi = \mathrm{ReLU}\ \text{or}\ \mathrm{GELU})

The paper places the norm after each residual add (post-norm); GPT-2 and most later models put it before
(pre-norm), which keeps an identity path from input to output and trains deep stacks without warm-up tricks.
LayerNorm is ``torch.nn.LayerNorm`` itself (biased variance, eps inside the square root), not a re-derivation.

:class:`TransformerEncoderLayer` has the attribute names of ``torch.nn.TransformerEncoderLayer`` (``self_attn``,
``linear1``, ``linear2``, ``norm1``, ``norm2``), so :meth:`~TransformerEncoderLayer.from_torch` is a
``load_state_dict``; it is batch first and attends through :class:`attnlab.nn.MultiHeadAttention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import check_positive_int
from attnlab.nn.caches import KVCache, StaticKVCache
from attnlab.nn.multihead import MultiHeadAttention

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(nn.Module):
    """Self-attention + FFN block, batch first; ``norm_first`` picks pre-norm (True) or post-norm (False).

    Args:
        d_model: C, the model width.
        nhead: heads; C must be divisible by it.
        dim_feedforward: the FFN's hidden width (4C in GPT).
        dropout: on the attention weights, after the attention and after the FFN (residual dropout).
        activation: ``"relu"`` or ``"gelu"`` (exact erf GELU, as torch's ``"gelu"``).
        layer_norm_eps, norm_first, bias: as in ``torch.nn.TransformerEncoderLayer``.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
        *,
        impl: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("dim_feedforward", dim_feedforward)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias, impl=impl, **kw)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, **kw)  # W_1
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, **kw)  # W_2
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout = nn.Dropout(dropout)  # inside the FFN, after the activation (as torch)
        self.dropout1 = nn.Dropout(dropout)  # residual dropout after attention
        self.dropout2 = nn.Dropout(dropout)  # residual dropout after the FFN
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]
        self.norm_first = norm_first

    @classmethod
    def from_torch(cls, m: nn.TransformerEncoderLayer, *, impl: str = "auto") -> TransformerEncoderLayer:
        """The same block from a ``torch.nn.TransformerEncoderLayer`` (relu or gelu, either norm placement)."""
        if not isinstance(m, nn.TransformerEncoderLayer):
            raise TypeError(f"m: expected a torch.nn.TransformerEncoderLayer, got {type(m).__name__}")
        act = m.activation
        name = {F.relu: "relu", F.gelu: "gelu"}.get(act) or {nn.ReLU: "relu", nn.GELU: "gelu"}.get(type(act))
        if name is None or (isinstance(act, nn.GELU) and act.approximate != "none"):
            raise ValueError(f"m: expected a relu or exact-gelu activation, got {act!r}")
        w = m.linear1.weight
        ours = cls(
            m.self_attn.embed_dim,
            m.self_attn.num_heads,
            m.linear1.out_features,
            m.dropout.p,
            name,
            m.norm1.eps,
            m.norm_first,
            bias=m.linear1.bias is not None,
            impl=impl,
            device=w.device,
            dtype=w.dtype,
        )
        ours.load_state_dict(m.state_dict())
        return ours

    def forward(
        self,
        x: Tensor,
        *,
        attn_mask: Tensor | None = None,
        key_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | StaticKVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """x ``(B, T, C)`` -> ``(B, T, C)``, and the per-head attention weights ``(B, nh, T, S)`` when asked."""
        kw = {"attn_mask": attn_mask, "key_mask": key_mask, "is_causal": is_causal, "need_weights": need_weights}
        if self.norm_first:
            a = self.self_attn(self.norm1(x), cache=cache, **kw)
            x = x + self.dropout1(a.output)  # x + SA(LN1(x))
            x = x + self._ffn(self.norm2(x))  # x + FFN(LN2(x))
        else:
            a = self.self_attn(x, cache=cache, **kw)
            x = self.norm1(x + self.dropout1(a.output))  # LN1(x + SA(x))
            x = self.norm2(x + self._ffn(x))  # LN2(x + FFN(x))
        return x, a.weights

    def _ffn(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))  # (B, T, C)
