"""``attnlab bench gpt``: the mini-GPT against nanoGPT's model, and KV-cached generation against recomputing.

The reference (:class:`NanoGPT`) is nanoGPT's ``model.py`` architecture written out here (Karpathy's nanoGPT: one
fused ``c_attn`` projection, ``F.scaled_dot_product_attention(..., is_causal=True)``, a GELU MLP, pre-norm blocks,
a tied ``lm_head``); it loads our weights, so both compute the same function (tested) and the ratio is the cost of
the implementation alone.

- Training: one full step (forward with the loss, backward, AdamW step) of each, side by side, on the same batch.
  CPU: nanoGPT's CPU recipe (4 layers, 4 heads, width 128, context 64, batch 12). CUDA: its GPU recipe (6 layers,
  6 heads, width 384, context 256, batch 64) under bf16 autocast with fused AdamW, as nanoGPT trains.
- Generation: 500 new tokens after an 8-token prompt, greedy, ours without and with the KV cache (the same tokens,
  checked), and nanoGPT's (which has no cache). CPU: the CPU model with ``block_size`` 512, so no context is
  cropped and the cost of recomputing the prefix shows; CUDA: the GPU model with ``block_size`` 1024. On CUDA our
  cached step is one replayed CUDA graph (:class:`attnlab.models.gpt.Decoder`).

Ratios are ours / reference in time (below 1: ours is faster); ``cache_speedup`` is ours without / with the cache.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import resolve_device
from attnlab.measure import machine, side_by_side, timing_row
from attnlab.models.gpt import GPT, GPTConfig, GPTOutput, sample_next

RECIPES = {  # device type -> (model, batch) of nanoGPT's shakespeare_char recipes
    "cpu": ({"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64}, 12),
    "cuda": ({"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256}, 64),
}
GEN_BLOCK_SIZE = {"cpu": 512, "cuda": 1024}
GEN_TOKENS, PROMPT = 500, 8
VOCAB = 65


class NanoGPT(nn.Module):
    """nanoGPT's GPT (``model.py``), for comparison: ``transformer.{wte, wpe, h, ln_f}`` and a tied ``lm_head``."""

    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.config = c
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.h = nn.ModuleList(_NanoBlock(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> GPTOutput:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))  # (B, T, C)
        for block in self.h:
            x = block(x)
        x = self.ln_f(x)
        if targets is None:
            return GPTOutput(self.lm_head(x[:, [-1], :]), None)  # (B, 1, V)
        logits = self.lm_head(x)  # (B, T, V)
        return GPTOutput(logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1))

    @torch.no_grad()
    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0) -> Tensor:
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.config.block_size :]).logits
            idx = torch.cat([idx, sample_next(logits[:, -1, :], temperature, None)], dim=1)
        return idx


class _NanoBlock(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.n_embd = c.n_head, c.n_embd
        self.ln_1 = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.ln_2 = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.mlp_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(self.ln_1(x)).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


def make_pair(config: GPTConfig, seed: int = 0) -> tuple[GPT, NanoGPT]:
    """Ours (GPT-2 initialisation) and nanoGPT's model holding the same weights."""
    torch.manual_seed(seed)
    ours, ref = GPT(config), NanoGPT(config)
    names = {  # ours -> nanoGPT, per block
        "norm1": "ln_1",
        "self_attn.in_proj_weight": "c_attn.weight",
        "self_attn.in_proj_bias": "c_attn.bias",
        "self_attn.out_proj": "c_proj",
        "norm2": "ln_2",
        "linear1": "c_fc",
        "linear2": "mlp_proj",
    }
    state = {"wte.weight": ours.wte.weight, "wpe.weight": ours.wpe.weight, "lm_head.weight": ours.wte.weight}
    state.update({f"ln_f.{k}": v for k, v in ours.ln_f.state_dict().items()})
    for i, block in enumerate(ours.blocks):
        for key, value in block.state_dict().items():
            for mine, theirs in names.items():
                if key.startswith(mine):
                    state[f"h.{i}.{theirs}{key[len(mine) :]}"] = value
    ref.load_state_dict(state)
    return ours, ref


def _train_step(model: nn.Module, x: Tensor, y: Tensor, device: str):
    cuda = device.startswith("cuda")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), **({"fused": True} if cuda else {}))

    def fn():
        with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext():
            loss = model(x, y).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return fn


def _generate(model: nn.Module, prompt: Tensor, n_tokens: int, **kw):
    def fn():
        return model.generate(prompt, n_tokens, temperature=0.0, **kw)

    return fn


def _row(case: str, tokens: int, t_ours: float, t_ref: float, note: str = "") -> dict[str, Any]:
    row = timing_row(t_ours, t_ref, case=case, tokens=tokens, note=note)
    return {**row, "ours_tokens_per_s": round(tokens / t_ours, 1), "torch_tokens_per_s": round(tokens / t_ref, 1)}


def run(*, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    """``quick`` generates 50 tokens instead of 500 and times briefly (a smoke run, not for recorded figures)."""
    device = resolve_device(device)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    min_time = 0.05 if quick else 1.0
    n_gen = 50 if quick else GEN_TOKENS
    model_cfg, batch = RECIPES[kind]
    gen = torch.Generator().manual_seed(0)
    rows = []

    train_cfg = GPTConfig(vocab_size=VOCAB, bias=False, **model_cfg)
    ours, ref = (m.to(device).train() for m in make_pair(train_cfg))
    x, y = (torch.randint(VOCAB, (batch, train_cfg.block_size), generator=gen).to(device) for _ in range(2))
    t_ours, t_ref = side_by_side(_train_step(ours, x, y, device), _train_step(ref, x, y, device), min_time)
    step = "bf16 autocast, fused AdamW" if kind == "cuda" else "float32"
    rows.append(_row("training step (forward, backward, AdamW)", x.numel(), t_ours, t_ref, f"B={batch}; {step}"))

    gen_cfg = GPTConfig(vocab_size=VOCAB, bias=False, **{**model_cfg, "block_size": GEN_BLOCK_SIZE[kind]})
    ours, ref = (m.to(device).eval() for m in make_pair(gen_cfg))
    prompt = torch.randint(VOCAB, (1, PROMPT), generator=gen).to(device)
    same = torch.equal(_generate(ours, prompt, n_gen, use_cache=True)(), _generate(ours, prompt, n_gen)())
    note = f"1 sequence, {PROMPT}-token prompt, block_size {gen_cfg.block_size}, greedy; nanoGPT: no cache"
    t_full, t_ref = side_by_side(
        _generate(ours, prompt, n_gen, use_cache=False), _generate(ref, prompt, n_gen), min_time
    )
    rows.append(_row("generation, no KV cache", n_gen, t_full, t_ref, note))
    t_cache, t_ref2 = side_by_side(
        _generate(ours, prompt, n_gen, use_cache=True), _generate(ref, prompt, n_gen), min_time
    )
    rows.append(_row("generation, ours with KV cache", n_gen, t_cache, t_ref2, note))
    return {
        "config": {
            **model_cfg,
            "vocab_size": VOCAB,
            "batch_size": batch,
            "generation_block_size": gen_cfg.block_size,
            "new_tokens": n_gen,
            "prompt_tokens": PROMPT,
        },
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if kind == "cuda" else "cpu",
        "quick": quick,
        "machine": machine(),
        "rows": rows,
        "cache_speedup": round(t_full / t_cache, 3),  # ours without the cache / ours with it
        "cached_tokens_equal_uncached": same,
    }


def to_markdown(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [
        f"{result['device_name']}: n_layer={c['n_layer']}, n_head={c['n_head']}, n_embd={c['n_embd']}, "
        f"vocab {c['vocab_size']}; training at batch {c['batch_size']}, block_size {c['block_size']}; generation of "
        f"{c['new_tokens']} tokens after a {c['prompt_tokens']}-token prompt with block_size "
        f"{c['generation_block_size']}. Medians; ratio = attnlab / nanoGPT's model in time (lower is better).",
        "",
        "| case | tokens | attnlab (ms) | nanoGPT (ms) | attnlab tok/s | nanoGPT tok/s | ratio | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['case']} | {r['tokens']} | {r['ours_ms']:.1f} | {r['torch_ms']:.1f} | "
            f"{r['ours_tokens_per_s']:,.0f} | {r['torch_tokens_per_s']:,.0f} | {r['ratio']:.2f} | {r['note']} |"
        )
    same = "same tokens" if result["cached_tokens_equal_uncached"] else "DIFFERENT tokens"
    lines += ["", f"KV cache speed-up (attnlab, no cache / cache): {result['cache_speedup']:.2f}x ({same})"]
    return "\n".join(lines)
