"""The measuring of ``kv-cache``: bytes held by each block's decoding cache after a prefill, per variant and
length, against the papers' formulas; the longest context a memory budget holds; DeepSeek's 93.3% from the caches
of its two models' layers (see the package docstring)."""

from __future__ import annotations

from typing import Any

import torch

from attnlab._checks import resolve_device
from attnlab.experiments.base import measured
from attnlab.experiments.beyond.kv_cache.config import DEEPSEEK, PAPER_REDUCTION
from attnlab.experiments.training import one_thread
from attnlab.functional.masks import AttentionMask
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.nn import KVCache, MultiHeadAttention
from attnlab.nn.mla import LatentCache, MultiHeadLatentAttention

# the report may run it beside another experiment: one thread; it reads cache sizes, not time
SHARES_CORES = True

VOCAB = 64  # token ids only feed the prefill; the cache does not depend on them
MIB = 2**20


def model_config(cfg: Any, variant: str, block_size: int) -> GPTConfig:
    """The GPT of one variant at the config's width: today's blocks (rotary positions, no biases), which differ
    in attention only."""
    options = {
        "mha": {},
        "gqa": {"n_kv_head": cfg.n_kv_head},
        "mqa": {"n_kv_head": 1},
        "mla": {"attention": "mla", "d_latent": cfg.d_latent, "d_rope": cfg.d_rope},
        "window": {"window": cfg.window},
    }[variant]
    return GPTConfig(vocab_size=VOCAB, block_size=block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                     n_embd=cfg.n_embd, bias=False, pos="rope", **options)  # fmt: skip


def formula(cfg: Any, variant: str) -> dict[str, Any]:
    """The paper's cache per layer in elements: per token (``per_token``) or, for the window, fixed (``fixed``)."""
    nh, hs = cfg.n_head, cfg.n_embd // cfg.n_head
    if variant == "window":
        return {"per_token": None, "fixed": 2 * nh * hs * (cfg.window + 1), "text": "2 n_h d_h (w + 1)"}
    per_token, text = {
        "mha": (2 * nh * hs, "2 n_h d_h"),  # keys and values of every head (Vaswani et al. 2017)
        "gqa": (2 * cfg.n_kv_head * hs, "2 n_kv d_h"),  # Ainslie et al. 2023: only the kv heads
        "mqa": (2 * hs, "2 d_h"),  # Shazeer 2019: one key/value head
        "mla": (cfg.d_latent + cfg.d_rope, "d_c + d_h^R"),  # DeepSeek-V2 eq. (9), (15): [c^KV; k^R]
    }[variant]
    return {"per_token": per_token, "fixed": None, "text": text}


def prefill_cache_bytes(config: GPTConfig, lengths: tuple[int, ...], seed: int, device: str) -> tuple[list, int]:
    """For each length S: the bytes each block's cache holds after a prefill of S tokens (caches allocated for
    exactly S positions, so nothing is spare); and the element size of the model's dtype."""
    torch.manual_seed(seed)
    model = GPT(config).to(device).eval()
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for S in lengths:
        idx = torch.randint(0, config.vocab_size, (1, S), generator=gen).to(device)  # (B=1, S)
        caches = [block.new_cache(S) for block in model.blocks]
        with torch.no_grad():
            model(idx, caches=caches)
        if any(c.length != S for c in caches):  # every position must have gone through every block
            raise RuntimeError(f"prefill: expected {S} cached positions, got {[c.length for c in caches]}")
        rows.append([c.nbytes() for c in caches])
    return rows, next(model.parameters()).element_size()


def layer_cache_elements(layer: torch.nn.Module, cache: Any, seed: int, device: str, n: int = 8) -> int:
    """Elements per token that ``cache`` holds after ``layer`` (self-attention, causal) saw ``n`` tokens."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, n, layer.embed_dim, generator=gen).to(device)  # (B=1, n, C)
    with torch.no_grad():
        layer.to(device)(x, attn_mask=AttentionMask(causal="lower_right"), cache=cache)
    return cache.nbytes() // (n * x.element_size())


def _deepseek(seed: int, device: str) -> dict[str, Any]:
    """Elements per token of one layer shaped as each DeepSeek model's attention (measured), and the per-token
    cache of the whole model as deployed (layers x elements x bits)."""
    old, new = DEEPSEEK["67b"], DEEPSEEK["v2"]
    torch.manual_seed(seed)
    # The 67B's 8 kv heads of 128 (its 64 query heads do not enter the cache: 8 query heads keep the layer small)
    gqa = MultiHeadAttention(old["kv_heads"] * old["head_size"], old["kv_heads"], bias=False, rotary=True)
    mla = MultiHeadLatentAttention(4 * new["head_size"], 4, new["d_latent"], new["d_rope"])  # V2's d_c and d_h^R
    out: dict[str, Any] = {
        "67b_elements_per_layer": layer_cache_elements(gqa, KVCache(8), seed, device),
        "v2_elements_per_layer": layer_cache_elements(mla, LatentCache(8), seed, device),
    }
    e_old, e_new = out["67b_elements_per_layer"], out["v2_elements_per_layer"]
    bits_old = e_old * old["layers"] * old["bits"]  # per token, whole model
    bits_new = e_new * new["layers"] * new["bits"]
    mha_v2 = 2 * new["heads"] * new["head_size"]  # MHA at V2's own heads and head size
    out.update({
        "67b_bytes_per_token": bits_old // 8,
        "v2_bytes_per_token": bits_new / 8,
        "reduction": 1 - bits_new / bits_old,  # as deployed: the paper's comparison
        "reduction_same_precision": 1 - (e_new * new["layers"]) / (e_old * old["layers"]),  # both in BF16
        "reduction_vs_mha_same_dims": 1 - e_new / mha_v2,  # per layer, architecture alone
        "mha_v2_elements_per_layer": mha_v2,
        "paper_reduction": PAPER_REDUCTION,
    })  # fmt: skip
    return out


def _variant(cfg: Any, variant: str, device: str) -> dict[str, Any]:
    """One variant's measured cache bytes (``[length][layer]``) against its formula's."""
    rows, size = prefill_cache_bytes(model_config(cfg, variant, max(cfg.lengths)), cfg.lengths, cfg.seed, device)
    f = formula(cfg, variant)
    expected = [
        [(f["fixed"] if f["per_token"] is None else f["per_token"] * S) * size] * cfg.n_layer for S in cfg.lengths
    ]
    return {
        "bytes": rows,
        "expected_bytes": expected,
        "exact": rows == expected,
        "element_size": size,
        "formula": f,
        # per token per layer (a growing cache: at the longest length), or the fixed size (the window)
        "elements": f["fixed"] if f["per_token"] is None else rows[-1][0] // (cfg.lengths[-1] * size),
    }


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    with one_thread(device):  # small prefills: extra threads only add synchronisation on a shared CPU
        variants = {v: _variant(cfg, v, device) for v in ("mha", "gqa", "mqa", "mla", "window")}
        deepseek = _deepseek(cfg.seed, device)
    size = variants["mha"]["element_size"]
    budget = cfg.budget_mib * MIB
    m: dict[str, Any] = {"element_size": size}
    for variant, v in variants.items():
        m[f"elements/{variant}"] = v["elements"]
        m[f"formula/{variant}"] = v["formula"]["fixed"] or v["formula"]["per_token"]
        if variant == "window":
            fixed = cfg.budget_layers * v["elements"] * size  # the whole model's cache, at any length
            m["longest_context/window"] = None if fixed <= budget else 0
            m["reach/window"] = cfg.window * cfg.budget_layers
            m["cache_mib/window"] = round(fixed / MIB, 3)
        else:
            m[f"fraction_of_mha/{variant}"] = round(v["elements"] / variants["mha"]["elements"], 6)
            m[f"bytes_per_token/{variant}"] = v["elements"] * size
            m[f"longest_context/{variant}"] = budget // (cfg.budget_layers * v["elements"] * size)
    m.update({f"deepseek/{k}": round(x, 6) if isinstance(x, float) else x for k, x in deepseek.items()})
    verdict = {f"formula_exact/{v}": variants[v]["exact"] for v in variants}
    verdict["deepseek_reduction_93.3"] = round(deepseek["reduction"], 3) == PAPER_REDUCTION
    data = {"lengths": list(cfg.lengths), "variants": variants, "deepseek": deepseek, "budget_bytes": budget}
    return measured(verdict, m, data, device)


__all__ = ["formula", "layer_cache_elements", "model_config", "prefill_cache_bytes", "run"]
