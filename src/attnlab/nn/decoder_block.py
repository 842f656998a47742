r"""The pre-norm causal decoder block of a GPT, with the choices that separate GPT-2's block from today's.

.. math::
    x \leftarrow x + \mathrm{Mixer}(\mathrm{Norm}_1(x)), \qquad x \leftarrow x + \mathrm{FFN}(\mathrm{Norm}_2(x))

- the token mixer: causal softmax attention (:class:`~attnlab.nn.MultiHeadAttention`, with grouped-query heads,
  a sliding window and rotary positions as it is built; or :class:`~attnlab.nn.mla.MultiHeadLatentAttention`),
  causal linear attention (:class:`~attnlab.nn.linear_mixer.LinearAttention`) or a selective state-space layer
  (:class:`~attnlab.nn.Mamba`);
- the norms: LayerNorm (GPT-2) or RMSNorm (:mod:`attnlab.nn.norms`);
- the feed-forward network: GELU or SwiGLU (:mod:`attnlab.nn.feedforward`), or a mixture of GELU experts
  (:class:`~attnlab.nn.MoE`, each of width ``4C / k`` so that the k experts a token uses cost one dense FFN).

LLaMA's, Mistral's and Qwen's block is (attention with rotary positions and grouped kv heads, RMSNorm, SwiGLU,
no biases). With the defaults (multi-head attention, LayerNorm, GELU) the block is
:class:`~attnlab.nn.TransformerEncoderLayer` with ``norm_first=True``: the same attribute names (``self_attn``,
``linear1``, ``linear2``, ``norm1``, ``norm2``), state-dict keys, parameter creation order and numbers (tested),
so GPT-2-style checkpoints keep loading. A Mamba mixer is registered as ``mixer``; every attention as
``self_attn``.

Decoding: :meth:`DecoderBlock.new_cache` gives what the mixer carries from token to token: a
:class:`~attnlab.nn.KVCache` (a :class:`~attnlab.nn.rolling_cache.RollingKVCache` of w + 1 positions with a
window), MLA's :class:`~attnlab.nn.mla.LatentCache`, or a :class:`~attnlab.nn.linear_mixer.StateCache` for the
recurrent mixers (their state after the tokens seen).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab.functional.masks import AttentionMask
from attnlab.nn.caches import KVCache
from attnlab.nn.feedforward import dense_layers, feed_forward
from attnlab.nn.linear_mixer import LinearAttention, StateCache
from attnlab.nn.mla import LatentCache, MultiHeadLatentAttention
from attnlab.nn.moe import MoE
from attnlab.nn.multihead import MultiHeadAttention
from attnlab.nn.norms import make_norm
from attnlab.nn.rolling_cache import RollingKVCache
from attnlab.nn.ssm import Mamba

MIXERS = (MultiHeadAttention, MultiHeadLatentAttention, LinearAttention, Mamba)


class DecoderBlock(nn.Module):
    """A pre-norm causal block around a given token mixer (see the module docstring).

    Args:
        mixer: a MultiHeadAttention, MultiHeadLatentAttention, LinearAttention or Mamba of width ``d_model``.
        d_model: C.
        window: a sliding window for an attention mixer (``p - w <= j <= p``), or None: all earlier positions.
        norm: ``"layernorm"`` or ``"rmsnorm"``.
        mlp: ``"gelu"`` or ``"swiglu"`` (the dense FFN, ``n_expert = 1``).
        n_expert, top_k: a mixture of ``n_expert`` GELU experts, ``top_k`` per token, when ``n_expert > 1``.
        dropout: on the residual branches and inside the FFN, as ``TransformerEncoderLayer``.
        bias: biases in the FFN and LayerNorm.
    """

    def __init__(
        self,
        mixer: nn.Module,
        d_model: int,
        *,
        window: int | None = None,
        norm: str = "layernorm",
        mlp: str = "gelu",
        n_expert: int = 1,
        top_k: int = 1,
        dropout: float = 0.0,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(mixer, MIXERS):
            raise TypeError(f"mixer: expected one of {[m.__name__ for m in MIXERS]}, got {type(mixer).__name__}")
        attention = isinstance(mixer, (MultiHeadAttention, MultiHeadLatentAttention))
        if window is not None and not attention:
            raise ValueError(f"window: applies to softmax attention, got a {type(mixer).__name__} mixer")
        self.mixer_name = "mixer" if isinstance(mixer, Mamba) else "self_attn"
        self.add_module(self.mixer_name, mixer)  # registered first: TransformerEncoderLayer's key order
        kw = {"device": device, "dtype": dtype}
        self.mlp, self.window = mlp, window
        self.mask = AttentionMask(causal="lower_right", window=window)  # new positions follow the cached ones
        if n_expert == 1 and top_k != 1:
            raise ValueError(f"top_k: expected 1 without experts (n_expert=1), got {top_k!r}")
        if n_expert > 1 and mlp != "gelu":
            raise ValueError(f"mlp: the experts are GELU FFNs: expected 'gelu' with n_expert > 1, got {mlp!r}")
        if n_expert > 1:
            self.moe = MoE(d_model, 4 * d_model // top_k, n_expert, top_k, bias=bias, **kw)  # equal active width
        else:
            self.linear1, self.linear2 = dense_layers(d_model, mlp, bias=bias, **kw)  # W_1 (or [W; V]), W_2
            self.moe = None
        self.norm1 = make_norm(norm, d_model, bias=bias, **kw)
        self.norm2 = make_norm(norm, d_model, bias=bias, **kw)
        self.dropout = nn.Dropout(dropout)  # inside the FFN, after the activation
        self.dropout1 = nn.Dropout(dropout)  # residual dropout after the mixer
        self.dropout2 = nn.Dropout(dropout)  # residual dropout after the FFN
        self.aux_loss: Tensor | None = None  # the MoE's load-balancing loss of the last call (with its graph)
        self.router_load: Tensor | None = None  # the MoE's f_i of the last call (detached), for the experiment

    @property
    def token_mixer(self) -> nn.Module:
        return getattr(self, self.mixer_name)

    def new_cache(self, capacity: int | None = None):
        """An empty decoding cache for this block's mixer (``capacity``: positions to allocate up front)."""
        m = self.token_mixer
        if isinstance(m, MultiHeadAttention):
            return KVCache(capacity) if self.window is None else RollingKVCache(self.window)
        if isinstance(m, MultiHeadLatentAttention):
            return LatentCache(capacity, self.window)
        return StateCache()

    def forward(
        self,
        x: Tensor,
        *,
        attn_mask: AttentionMask | Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        cache=None,
    ) -> tuple[Tensor, Tensor | None]:
        """x ``(B, T, C)`` -> ``(B, T, C)`` and the attention weights ``(B, nh, T, S)`` when asked (the returns of
        ``TransformerEncoderLayer``). Causal by construction: an attention mixer takes the block's own mask
        (bottom-right, with its window) unless ``attn_mask`` is given; ``is_causal=True`` is the top-left form
        (torch's; the same without a cache). ``cache`` (from :meth:`new_cache`) continues a sequence. The MoE's
        balancing loss of the call is left in :attr:`aux_loss`."""
        h, weights = self._mix(self.norm1(x), attn_mask, is_causal, cache, need_weights)
        x = x + (self.dropout1(h) if self.training else h)  # x + Mixer(Norm_1(x)); no dropout in eval
        z = self.norm2(x)
        if self.moe is not None:
            routed = self.moe(z)
            f, self.aux_loss, self.router_load = routed.output, routed.aux_loss, routed.load.detach()
        else:
            f = feed_forward(z, self.linear1, self.linear2, self.mlp, self.dropout if self.training else None)
        return x + (self.dropout2(f) if self.training else f), weights  # x + FFN(Norm_2(x))

    def _mix(self, h: Tensor, attn_mask, is_causal: bool, cache, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        m = self.token_mixer
        if isinstance(m, (MultiHeadAttention, MultiHeadLatentAttention)):
            if is_causal and attn_mask is not None:
                raise ValueError("attn_mask: expected None when is_causal=True (give one or the other)")
            if attn_mask is None:
                attn_mask = AttentionMask(causal="upper_left", window=self.window) if is_causal else self.mask
            return m(h, attn_mask=attn_mask, need_weights=need_weights, cache=cache)
        if attn_mask is not None or need_weights:
            name = "attn_mask" if attn_mask is not None else "need_weights"
            raise ValueError(f"{name}: a {type(m).__name__} mixer is causal by construction, without attention weights")
        if isinstance(m, LinearAttention):
            return m(h, cache=cache), None
        if cache is None:  # Mamba, a fresh sequence
            return m(h).output, None
        T = h.shape[1]
        if T == 1:  # one token from the state: O(1) work
            out = m.step(h[:, 0], cache.state)
            y = out.output.unsqueeze(1)  # (B, 1, C)
        else:
            out = m(h, cache.state)
            y = out.output
        cache.state, cache.length = out.state, cache.length + T
        return y, None
