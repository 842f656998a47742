"""A mini-GPT (decoder-only transformer) with nanoGPT's configuration names, built from attnlab's own blocks.

tokens ``(B, T)`` -> token embedding + learned position embedding ``(B, T, C)`` -> n_layer pre-norm causal
:class:`~attnlab.nn.decoder_block.DecoderBlock` s (by default GPT-2's: multi-head attention, GELU FFN of width 4C,
LayerNorm) -> final norm -> logits ``(B, T, V)`` through the token embedding's transpose (weight tying, Press &
Wolf 2017). :class:`~attnlab.models.gpt_config.GPTConfig`'s options swap the parts for today's (grouped-query,
sliding-window or latent attention, rotary positions, RMSNorm, SwiGLU, experts) or for a recurrent mixer.

Initialisation follows GPT-2: normal(0, 0.02) for weights, zero biases, and the residual projections
(attention output, FFN output, each expert's output) scaled by ``1/sqrt(2 n_layer)`` so the residual stream's
variance does not grow with depth. Mamba's state-space parameters (A, D, the step sizes, its convolution) keep
the authors' initialisation: a normal(0, 0.02) A would not be a stable S4D decay.

A mixture of experts adds its load-balancing losses (Switch Transformer) to the training loss in training mode;
in evaluation the loss is the cross-entropy alone.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import check_ndim, check_tensor
from attnlab.models.gpt_config import GPTConfig, make_block
from attnlab.nn import LearnedPositionalEmbedding, Mamba, MultiHeadAttention, StaticKVCache
from attnlab.nn.norms import make_norm


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
        self.wpe = LearnedPositionalEmbedding(c.block_size, c.n_embd) if c.pos == "learned" else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(make_block(c) for _ in range(c.n_layer))
        self.ln_f = make_norm(c.norm, c.n_embd, bias=c.bias)
        self._init_weights()

    def _init_weights(self) -> None:
        own = {id(p) for m in self.modules() if isinstance(m, Mamba) for p in _ssm_parameters(m)}
        for name, p in self.named_parameters():
            if id(p) in own:
                continue  # Mamba's A, D, step sizes and convolution: the authors' initialisation
            if p.dim() >= 2:
                residual = name.endswith(("out_proj.weight", "linear2.weight", "moe.w2"))  # into the stream
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer) if residual else 0.02)
            elif "norm" in name or name.startswith("ln_f"):
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            else:
                nn.init.zeros_(p)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (as nanoGPT reports)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding and self.wpe is not None else n

    @property
    def supports_static_decoding(self) -> bool:
        """Whether the CUDA-graph decoder serves this model: multi-head attention blocks without experts (whose
        dispatch reads counts back to the host), and a context limit (its buffers hold ``block_size`` positions)."""
        plain = all(isinstance(b.token_mixer, MultiHeadAttention) and b.moe is None for b in self.blocks)
        return plain and self.config.context_limit is not None

    def router_loads(self) -> list[Tensor]:
        """Each MoE block's load ``f_i`` ``(E,)`` (the fraction of router choices per expert) at the last forward."""
        return [b.router_load for b in self.blocks if b.moe is not None and b.router_load is not None]

    def forward(self, idx: Tensor, targets: Tensor | None = None, *, caches: list | None = None) -> GPTOutput:
        """idx ``(B, T)`` token ids; ``targets`` ``(B, T)`` (-1 entries ignored); ``caches``: one cache per block
        (``block.new_cache()``, e.g. a KVCache) for incremental decoding (positions continue after the cached
        length)."""
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
        aux = self._aux_loss() if self.training else None
        if aux is not None:
            loss = loss + aux  # the Switch load-balancing losses of every MoE layer, in training only
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
        if self.config.mixer != "attention":
            raise ValueError(f"attention_weights: mixer={self.config.mixer!r} has no attention weights")
        self._check_idx(idx, None)
        weights: list[Tensor] = []
        self._hidden(idx, None, weights)
        return weights

    def _check_idx(self, idx: Tensor, caches: list | None) -> None:
        """Shape, dtype, length and token range of ``idx``. The range needs the values: on the CPU it is checked
        here (an exact error); on a GPU it is asserted on the device (``torch._assert_async``), so a training step
        does not wait for the GPU. :meth:`generate` checks the prompt once and skips this for sampled tokens."""
        offset = 0 if caches is None else caches[0].offset
        if isinstance(offset, Tensor):  # a static cache: the position is on the device; its decoder keeps the count
            offset = 0
        self._check_ids(idx)
        limit = self.config.context_limit
        if limit is not None and offset + idx.shape[1] > limit:
            raise ValueError(f"idx: {offset + idx.shape[1]} positions exceed block_size={limit}")

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
        x = self.wte(idx)  # (B, T, C)
        if self.wpe is not None:
            offset = 0 if caches is None else caches[0].offset  # an int, or a device tensor for a static cache
            x = self.wpe(x, offset)
        x = self.drop(x) if self.training else x
        need_weights = weights is not None
        for i, block in enumerate(self.blocks):
            x, w = block(x, need_weights=need_weights, cache=None if caches is None else caches[i])  # (B, T, C)
            if need_weights:
                weights.append(w)  # (B, nh, T, S)
        return self.ln_f(x)

    def _aux_loss(self) -> Tensor | None:
        """The sum of the MoE blocks' load-balancing losses of the last forward (None without experts)."""
        losses = [b.aux_loss for b in self.blocks if b.moe is not None]
        return sum(losses[1:], losses[0]) if losses else None

    def _last_logits(self, idx: Tensor, caches: list | None) -> Tensor:
        """Logits of the last position ``(B, V)``, for checked ids (generation's inner step)."""
        x = self._hidden(idx, caches)[:, -1, :]  # (B, C)
        return x @ self.wte.weight.t()  # (B, C) @ (C, V)

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

        With ``use_cache`` each new token costs one position's work (keys and values of earlier positions, a
        rolling window of them, MLA's latents or a recurrent state are kept per block). A model with a context
        limit (:attr:`GPTConfig.context_limit`: a position table or full attention) crops its context to the last
        ``block_size`` tokens past it, as nanoGPT does; the positions then shift, so the cache is rebuilt from the
        cropped context. A model without one (a window with rotary positions, a recurrent mixer without a
        position table) reads the whole sequence, its cache holding a fixed-size summary of it. Either way: the
        same tokens as without the cache, whatever the length. Decoding runs under ``torch.inference_mode``; the
        returned tensor is an ordinary one (it can feed a training step).
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
        with torch.inference_mode():  # no autograd bookkeeping on views: ~12% of a CPU decode step
            out = self._generate(idx, max_new_tokens, temperature, top_k, use_cache, generator)
        return out.clone()  # a normal tensor: an inference tensor could not be saved for a later backward

    def _generate(self, idx: Tensor, max_new_tokens: int, temperature: float, top_k, use_cache: bool, generator):
        limit = self.config.context_limit
        decoder = Decoder(self, idx.shape[0], idx.device) if use_cache else None
        for _ in range(max_new_tokens):
            context = idx if limit is None else idx[:, -limit:]
            if decoder is None:
                logits = self._last_logits(context, None)
            elif decoder.length == 0 or (limit is not None and decoder.length + 1 > limit):
                logits = decoder.prefill(context)  # (re)fill the cache from the context
            else:
                logits = decoder.step(idx[:, -1:])  # one new position
            next_id = sample_next(logits, temperature, top_k, generator)  # (B, 1)
            idx = torch.cat([idx, next_id], dim=1)
        return idx


class Decoder:
    """KV-cached decoding of a :class:`GPT`: :meth:`prefill` a context, then :meth:`step` one token at a time;
    each returns the last position's logits ``(B, V)``.

    On the CPU the cache is each block's own (:meth:`~attnlab.nn.decoder_block.DecoderBlock.new_cache`: a
    :class:`~attnlab.nn.KVCache`, a rolling one, MLA's latents, a recurrent state). On CUDA one token of a small
    model (with multi-head attention blocks: :attr:`GPT.supports_static_decoding`) is a few
    hundred tiny kernels whose launch cost, not their arithmetic, sets the speed; so the step runs on
    :class:`~attnlab.nn.StaticKVCache` buffers with its position on the device, is captured once as a CUDA graph,
    and every later token replays the graph: one launch for the whole step. Both give the tokens of uncached
    decoding (tested).
    """

    def __init__(self, model: GPT, batch: int, device: torch.device, *, graphs: bool | None = None) -> None:
        self.model, self.batch, self.length = model, batch, 0
        self.capacity = model.config.block_size
        self.static = device.type == "cuda" and model.supports_static_decoding if graphs is None else graphs
        if self.static and not model.supports_static_decoding:
            raise ValueError("graphs: static decoding serves multi-head attention blocks without experts only")
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
            self.caches = [block.new_cache(self.capacity) for block in self.model.blocks]
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


def _ssm_parameters(m: Mamba) -> list[nn.Parameter]:
    """The parameters Mamba initialises itself (S4D-real A, the skip D, the step-size projection, the conv)."""
    return [m.A_log, m.D, *m.dt_proj.parameters(), *m.conv1d.parameters()]
