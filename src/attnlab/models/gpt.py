"""A mini-GPT (decoder-only transformer) with nanoGPT's configuration names, built from attnlab's own blocks.

tokens ``(B, T)`` -> token embedding + learned position embedding ``(B, T, C)`` -> n_layer pre-norm causal
:class:`~attnlab.nn.TransformerEncoderLayer` blocks (GELU FFN of width 4C) -> final LayerNorm -> logits
``(B, T, V)`` through the token embedding's transpose (weight tying, Press & Wolf 2017).

Initialisation follows GPT-2: normal(0, 0.02) for weights, zero biases, and the residual projections
(attention output and FFN output) scaled by ``1/sqrt(2 n_layer)`` so the residual stream's variance does not
grow with depth.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import check_ndim, check_tensor
from attnlab.functional.masks import AttentionMask
from attnlab.nn import KVCache, LearnedPositionalEmbedding, StaticKVCache, TransformerEncoderLayer

# Causal self-attention over positions: the T new queries are the last T of the S positions (bottom-right), which
# is the plain lower triangle without a cache (torch's fused causal kernel) and no mask at all for one new token.
CAUSAL = AttentionMask(causal="lower_right")


@dataclass(frozen=True)
class GPTConfig:
    """nanoGPT's field names. ``bias``: biases in Linear and LayerNorm layers."""

    vocab_size: int = 65
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd: expected a multiple of n_head={self.n_head}, got {self.n_embd}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")

    def to_json(self) -> dict:
        return asdict(self)


class GPTOutput(NamedTuple):
    """``logits`` ``(B, T, V)`` (only the last position's, ``(B, 1, V)``, when no targets are given in generation);
    ``loss``: mean cross-entropy against ``targets`` or None."""

    logits: Tensor
    loss: Tensor | None


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config: expected a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)  # token embedding, tied to the output head
        self.wpe = LearnedPositionalEmbedding(c.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            TransformerEncoderLayer(c.n_embd, c.n_head, 4 * c.n_embd, c.dropout, "gelu", norm_first=True, bias=c.bias)
            for _ in range(c.n_layer)
        )
        self.ln_f = nn.LayerNorm(c.n_embd, bias=c.bias)
        self._init_weights()

    def _init_weights(self) -> None:
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                residual = name.endswith(("out_proj.weight", "linear2.weight"))  # projections into the stream
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer) if residual else 0.02)
            elif "norm" in name or name.startswith("ln_f"):
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            else:
                nn.init.zeros_(p)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (as nanoGPT reports)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: Tensor, targets: Tensor | None = None, *, caches: list[KVCache] | None = None) -> GPTOutput:
        """idx ``(B, T)`` token ids; ``targets`` ``(B, T)`` (-1 entries ignored); ``caches``: one KVCache per
        block for incremental decoding (positions continue after the cached length)."""
        self._check_idx(idx, caches)
        x = self._hidden(idx, caches)  # (B, T, C)
        if targets is None:
            logits = x[:, -1:, :] @ self.wte.weight.t()  # (B, 1, C) @ (C, V): only what generation needs
            return GPTOutput(logits, None)
        check_tensor("targets", targets)
        if targets.shape != idx.shape:
            raise ValueError(f"targets: expected the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")
        logits = x @ self.wte.weight.t()  # (B, T, C) @ (C, V) -> (B, T, V)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return GPTOutput(logits, loss)

    def logits(self, idx: Tensor) -> Tensor:
        """Logits at every position ``(B, T, V)`` (for evaluation without targets)."""
        self._check_idx(idx, None)
        return self._hidden(idx, None) @ self.wte.weight.t()  # (B, T, C) @ (C, V)

    def attention_weights(self, idx: Tensor) -> list[Tensor]:
        """Each block's causal self-attention weights for idx ``(B, T)``: ``n_layer`` tensors ``(B, nh, T, T)``.

        Row t of a head is ``softmax(q_t K^T / sqrt(hs))`` over positions ``<= t`` (zeros above the diagonal,
        rows sum to 1), from the same forward pass as :meth:`logits`. In training mode the weights are those
        after attention dropout; call it on a model in eval mode to see the model's attention.
        """
        self._check_idx(idx, None)
        weights: list[Tensor] = []
        self._hidden(idx, None, weights)
        return weights

    def _check_idx(self, idx: Tensor, caches: list[KVCache] | None) -> None:
        """Shape, dtype, length and token range of ``idx``. The range needs the values: on the CPU it is checked
        here (an exact error); on a GPU it is asserted on the device (``torch._assert_async``), so a training step
        does not wait for the GPU. :meth:`generate` checks the prompt once and skips this for sampled tokens."""
        offset = 0 if caches is None else caches[0].length
        self._check_ids(idx)
        if offset + idx.shape[1] > self.config.block_size:
            raise ValueError(f"idx: {offset + idx.shape[1]} positions exceed block_size={self.config.block_size}")

    def _check_ids(self, idx: Tensor) -> None:
        check_tensor("idx", idx)
        check_ndim("idx", idx, (2,), "(batch, time) of token ids")
        if idx.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"idx: expected an integer tensor of token ids, got dtype {idx.dtype}")
        if not idx.numel():
            return
        V = self.config.vocab_size
        if idx.device.type == "cpu":
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= V:
                raise ValueError(f"idx: token ids must be in [0, {V}), got [{lo}, {hi}]")
        else:
            torch._assert_async(((idx >= 0) & (idx < V)).all(), f"idx: token ids must be in [0, {V})")

    def _hidden(self, idx: Tensor, caches: list | None, weights: list[Tensor] | None = None) -> Tensor:
        """The final hidden states ``(B, T, C)`` of checked ``idx``; each block's attention weights are appended to
        ``weights`` when it is a list (the slower path that materialises them)."""
        offset = 0 if caches is None else caches[0].offset  # an int, or a device tensor for a static cache
        x = self.drop(self.wpe(self.wte(idx), offset))  # (B, T, C)
        need_weights = weights is not None
        for i, block in enumerate(self.blocks):
            cache = None if caches is None else caches[i]
            x, w = block(x, attn_mask=CAUSAL, need_weights=need_weights, cache=cache)  # (B, T, C), (B, nh, T, S)
            if need_weights:
                weights.append(w)
        return self.ln_f(x)

    def _last_logits(self, idx: Tensor, caches: list | None) -> Tensor:
        """Logits of the last position ``(B, V)``, for checked ids (generation's inner step)."""
        x = self._hidden(idx, caches)[:, -1, :]  # (B, C)
        return x @ self.wte.weight.t()  # (B, C) @ (C, V)

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` ``(B, T)``; temperature 0 is greedy (argmax).

        With ``use_cache`` each new token costs one position's work (keys and values of earlier positions are
        kept per block). Past ``block_size`` the context is cropped to the last ``block_size`` tokens as
        nanoGPT does; the absolute position embedding then shifts, so the cache is rebuilt from the cropped
        context: the same tokens as without the cache, whatever the length.
        """
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens: expected an integer >= 0, got {max_new_tokens!r}")
        if temperature < 0:
            raise ValueError(f"temperature: expected >= 0, got {temperature!r}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k: expected None or an integer >= 1, got {top_k!r}")
        if check_tensor("idx", idx).dim() == 2 and idx.shape[1] == 0:
            raise ValueError("idx: expected at least one prompt token, got an empty sequence")
        self._check_ids(idx)  # the prompt, once: sampled ids are in range by construction
        bs = self.config.block_size
        decoder = Decoder(self, idx.shape[0], idx.device) if use_cache else None
        for _ in range(max_new_tokens):
            context = idx[:, -bs:]
            if decoder is None:
                logits = self._last_logits(context, None)
            elif decoder.length == 0 or decoder.length + 1 > bs:
                logits = decoder.prefill(context)  # (re)fill the cache from the context
            else:
                logits = decoder.step(idx[:, -1:])  # one new position
            next_id = sample_next(logits, temperature, top_k, generator)  # (B, 1)
            idx = torch.cat([idx, next_id], dim=1)
        return idx


class Decoder:
    """KV-cached decoding of a :class:`GPT`: :meth:`prefill` a context, then :meth:`step` one token at a time;
    each returns the last position's logits ``(B, V)``.

    On the CPU the cache is a :class:`~attnlab.nn.KVCache` per block. On CUDA one token of a small model is a few
    hundred tiny kernels whose launch cost, not their arithmetic, sets the speed; so the step runs on
    :class:`~attnlab.nn.StaticKVCache` buffers with its position on the device, is captured once as a CUDA graph,
    and every later token replays the graph: one launch for the whole step. Both give the tokens of uncached
    decoding (tested).
    """

    def __init__(self, model: GPT, batch: int, device: torch.device, *, graphs: bool | None = None) -> None:
        self.model, self.batch, self.length = model, batch, 0
        self.capacity = model.config.block_size
        self.static = device.type == "cuda" if graphs is None else graphs
        self.graph = None
        if self.static:
            self.position = torch.zeros((), dtype=torch.long, device=device)  # the next position, on the device
            self.caches: list = [StaticKVCache(self.capacity, self.position) for _ in model.blocks]
            self.token = torch.zeros(batch, 1, dtype=torch.long, device=device)  # the graph's input

    def prefill(self, context: Tensor) -> Tensor:
        """Fill the cache with ``context`` ``(B, T)`` from position 0; returns the logits after its last token."""
        if self.static:
            self.position.zero_()
        else:
            self.caches = [KVCache(self.capacity) for _ in self.model.blocks]
        logits = self.model._last_logits(context, self.caches)
        if self.static:
            self.position.add_(context.shape[1])
        self.length = context.shape[1]
        return logits

    def step(self, token: Tensor) -> Tensor:
        """One new token ``(B, 1)`` at the next position; returns its logits ``(B, V)``."""
        self.length += 1
        if not self.static:
            return self.model._last_logits(token, self.caches)
        self.token.copy_(token)
        if self.graph is not None:
            self.graph.replay()
            return self.logits
        if self.position.device.type != "cuda":  # a static cache without graphs (tested on the CPU)
            return self._step()
        return self._capture()

    def _step(self) -> Tensor:
        logits = self.model._last_logits(self.token, self.caches)  # (B, V)
        self.position.add_(1)
        return logits

    def _capture(self) -> Tensor:
        """Run the step once eagerly on a side stream (warm-up: lazy initialisations happen outside the capture),
        rewind its position, capture it, and replay the capture (which redoes the same step)."""
        start = self.position.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._step()
        torch.cuda.current_stream().wait_stream(side)
        self.position.copy_(start)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._step()
        self.graph.replay()
        return self.logits


def sample_next(logits: Tensor, temperature: float, top_k: int | None, generator=None) -> Tensor:
    """One token id per row from ``logits`` ``(B, V)``: argmax at temperature 0, else softmax(logits / t)
    restricted to the top k."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
