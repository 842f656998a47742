"""``attnlab bench gpt``: the mini-GPT against the same model built from ``torch.nn.TransformerEncoderLayer``.

Configuration: nanoGPT's CPU recipe for shakespeare_char, n_layer=4, n_head=4, n_embd=128, vocab 65, dropout 0.

- Training: tokens/s of one full step (forward with the loss, backward, :func:`attnlab.train.loop.make_optimizer`'s
  AdamW step) at batch 12, block_size 64.
- Generation: tokens/s of 500 new tokens for one sequence from a one-token prompt, greedy (temperature 0).
  500 tokens after the prompt need 501 positions, more than the recipe's block_size of 64: the generation rows
  use the same model with ``block_size=512`` (only the position table grows), so that no context is cropped and
  the cost of recomputing the whole prefix shows. Ours runs :meth:`attnlab.models.GPT.generate` with and without
  its KV cache; ``torch.nn.TransformerEncoderLayer`` has no KV cache, so the torch twin recomputes the prefix
  for every token in both rows (its inference fast path applies: eval mode under ``no_grad``).

The twin (:class:`TorchGPT`) has the same embeddings, learned positions, pre-norm GELU blocks
(``norm_first=True``, ``batch_first=True``, a causal mask with ``is_causal=True``), final LayerNorm and tied head;
it loads our weights, so both compute the same function from the same weights. Ratios are
ours / torch in time (below 1: ours is faster).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.measure import machine, side_by_side, timing_row
from attnlab.models.gpt import GPT, GPTConfig, GPTOutput, sample_next
from attnlab.train.loop import TrainConfig, make_optimizer

TRAIN = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "vocab_size": 65, "dropout": 0.0}
BATCH = 12
GEN_BLOCK_SIZE = 512
GEN_TOKENS = 500


class TorchGPT(nn.Module):
    """The mini-GPT of :mod:`attnlab.models.gpt` built from ``torch.nn.TransformerEncoderLayer`` blocks."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        c = self.config = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                c.n_embd,
                c.n_head,
                4 * c.n_embd,
                c.dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
                bias=c.bias,
            )
            for _ in range(c.n_layer)
        )
        self.ln_f = nn.LayerNorm(c.n_embd, bias=c.bias)

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> GPTOutput:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))  # (B, T, C)
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=idx.device)  # (T, T) float, -inf above
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=True)  # (B, T, C)
        x = self.ln_f(x)
        if targets is None:
            return GPTOutput(x[:, -1:] @ self.wte.weight.t(), None)  # (B, 1, C) @ (C, V)
        logits = x @ self.wte.weight.t()  # (B, T, C) @ (C, V) -> (B, T, V)
        return GPTOutput(logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1)))

    @torch.no_grad()
    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0) -> Tensor:
        """As :meth:`attnlab.models.GPT.generate` without a cache: the whole (cropped) context every step."""
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.config.block_size :]).logits
            idx = torch.cat([idx, sample_next(logits[:, -1, :], temperature, None)], dim=1)
        return idx


def make_pair(config: GPTConfig, seed: int = 0) -> tuple[GPT, TorchGPT]:
    """Ours (GPT-2 initialisation) and the torch twin with the same weights (the twin loads ours)."""
    torch.manual_seed(seed)
    ours, theirs = GPT(config), TorchGPT(config)
    theirs.wte.load_state_dict(ours.wte.state_dict())
    theirs.wpe.weight.data.copy_(ours.wpe.weight.data)
    theirs.ln_f.load_state_dict(ours.ln_f.state_dict())
    for block, layer in zip(ours.blocks, theirs.layers, strict=True):
        layer.load_state_dict(block.state_dict())
    return ours, theirs


def _train_step(model: nn.Module, x: Tensor, y: Tensor):
    opt = make_optimizer(model, TrainConfig())

    def fn():
        loss = model(x, y).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return fn


def _generate(model: nn.Module, n_tokens: int, **kw):
    prompt = torch.zeros(1, 1, dtype=torch.long)

    def fn():
        return model.generate(prompt, n_tokens, temperature=0.0, **kw)

    return fn


def _row(case: str, tokens: int, t_ours: float, t_torch: float, note: str = "") -> dict[str, Any]:
    row = timing_row(t_ours, t_torch, case=case, tokens=tokens, note=note)
    return {**row, "ours_tokens_per_s": round(tokens / t_ours, 1), "torch_tokens_per_s": round(tokens / t_torch, 1)}


def run(*, quick: bool = False) -> dict[str, Any]:
    """``quick`` generates 50 tokens instead of 500 and times briefly (a smoke run, not for recorded figures)."""
    min_time = 0.05 if quick else 1.0
    n_gen = 50 if quick else GEN_TOKENS
    rows = []

    train_cfg = GPTConfig(**TRAIN)
    ours, theirs = make_pair(train_cfg)
    ours.train(), theirs.train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(train_cfg.vocab_size, (BATCH, train_cfg.block_size), generator=gen)  # (B, T)
    y = torch.randint(train_cfg.vocab_size, (BATCH, train_cfg.block_size), generator=gen)  # (B, T)
    t_ours, t_torch = side_by_side(_train_step(ours, x, y), _train_step(theirs, x, y), min_time)
    rows.append(_row("training step (forward, backward, AdamW)", x.numel(), t_ours, t_torch, f"B={BATCH}, T=64"))

    gen_cfg = GPTConfig(**{**TRAIN, "block_size": GEN_BLOCK_SIZE})
    ours, theirs = make_pair(gen_cfg)
    ours.eval(), theirs.eval()
    note = f"1 sequence, block_size {GEN_BLOCK_SIZE}, greedy"
    t_full, t_torch = side_by_side(_generate(ours, n_gen, use_cache=False), _generate(theirs, n_gen), min_time)
    rows.append(_row("generation, no KV cache", n_gen, t_full, t_torch, note))
    t_cache, t_torch2 = side_by_side(_generate(ours, n_gen, use_cache=True), _generate(theirs, n_gen), min_time)
    rows.append(_row("generation, ours with KV cache", n_gen, t_cache, t_torch2, f"{note}; torch: no cache"))
    return {
        "config": {**TRAIN, "batch_size": BATCH, "generation_block_size": GEN_BLOCK_SIZE, "new_tokens": n_gen},
        "quick": quick,
        "machine": machine(),
        "rows": rows,
        "cache_speedup": round(t_full / t_cache, 3),  # ours without the cache / ours with it
    }


def to_markdown(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [
        f"nanoGPT CPU config: n_layer={c['n_layer']}, n_head={c['n_head']}, n_embd={c['n_embd']}, "
        f"vocab {c['vocab_size']}; training at batch {c['batch_size']}, block_size {c['block_size']}; generation of "
        f"{c['new_tokens']} tokens with block_size {c['generation_block_size']}. Medians; ratio = attnlab / "
        f"torch.nn.TransformerEncoderLayer twin in time (lower is better); torch.nn's layer has no KV cache.",
        "",
        "| case | tokens | attnlab (ms) | torch.nn (ms) | attnlab tok/s | torch.nn tok/s | ratio | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['case']} | {r['tokens']} | {r['ours_ms']:.1f} | {r['torch_ms']:.1f} | "
            f"{r['ours_tokens_per_s']:,.0f} | {r['torch_tokens_per_s']:,.0f} | {r['ratio']:.2f} | {r['note']} |"
        )
    lines += ["", f"KV cache speed-up (attnlab, no cache / cache): {result['cache_speedup']:.2f}x"]
    return "\n".join(lines)
