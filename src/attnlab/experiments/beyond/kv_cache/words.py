"""The words of ``kv-cache``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.words import closing, fill, table

TITLE = "The KV cache of today's attention: GQA, MQA, MLA and a sliding window"
CLAIM = (
    "Grouped-query and multi-query attention shrink the KV cache by n_heads / n_kv_heads; multi-head latent "
    "attention caches d_c + d_h^R numbers per token per layer (DeepSeek-V2: a 93.3% smaller cache than DeepSeek "
    "67B); a sliding window of w needs a rolling cache of w positions, however long the text."
)
SOURCE = (
    "The chapter's close (what comes after attention); Shazeer 2019 (MQA); Ainslie et al. 2023 (GQA); DeepSeek-AI "
    "2024, DeepSeek-V2, sections 2.1 and 3.2.3; Jiang et al. 2023, Mistral 7B, section 2"
)
MAIN_FIGURE = "cache"
NAMES = {"mha": "MHA", "gqa": "GQA", "mqa": "MQA", "mla": "MLA", "window": "window"}


SETUP = """
attnlab GPTs at width C={cfg.n_embd}, {cfg.n_head} heads of {hs} (rotary positions, no biases), {cfg.n_layer} layer(s),
float32, batch 1, differing in attention only: multi-head (MHA), grouped-query with {cfg.n_kv_head} kv heads (GQA),
multi-query (MQA), multi-head latent with d_c = {cfg.d_latent} and d_h^R = {cfg.d_rope} (MLA), and multi-head with a
sliding window w = {cfg.window}. Each model prefills S in {cfg.lengths} random tokens through GPT.forward with every
block's own decoding cache (block.new_cache(S): a KVCache, a RollingKVCache or MLA's LatentCache, allocated for exactly
S positions), and the bytes of each block's cache tensors (nbytes()) are compared with the paper's formula x S x
{m[element_size]} bytes (the window's: a constant). The longest context whose cache fits {cfg.budget_mib:,} MiB in a
model of {cfg.budget_layers} such layers follows from the measured bytes per token. DeepSeek: one attention layer with
DeepSeek 67B's 8 kv heads of 128 (its 64 query heads do not enter the cache) and one MLA layer with DeepSeek-V2's d_c =
512 and d_h^R = 64, measured the same way; times 95 and 60 layers, at 16 bits (BF16) and 6 bits (V2 as deployed)
per element. Measured on {r[device_name]}.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    return fill(SETUP, cfg, r, hs=cfg.n_embd // cfg.n_head)


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, v, d = r["metrics"], r["data"]["variants"], r["data"]["deepseek"]
    per_token = ", ".join(
        f"{NAMES[k]} {v[k]['elements']:,} ({v[k]['formula']['text']} = {v[k]['formula']['per_token']:,}; "
        f"{100 * m[f'fraction_of_mha/{k}']:.1f}% of MHA)"
        for k in ("mha", "gqa", "mqa", "mla")
    )
    exact = all(r["data"]["verdict"][f"formula_exact/{k}"] for k in v)
    parts = [
        f"Cache per token per layer, measured (formula): {per_token}.",
        f"The window's cache holds {v['window']['elements']:,} elements per layer at every length from "
        f"{cfg.lengths[0]} to {cfg.lengths[-1]} (2 n_h d_h (w + 1): w + 1 = {cfg.window + 1} positions; Mistral counts "
        "the same buffer as W, leaving out the newest position).",
        "Every cache equalled its formula exactly, in every layer and at every length."
        if exact
        else "Not every cache equalled its formula (see the data).",
        f"Longest context whose cache fits {cfg.budget_mib:,} MiB with {cfg.budget_layers} layers: "
        + ", ".join(f"{NAMES[k]} {m[f'longest_context/{k}']:,}" for k in ("mha", "gqa", "mqa", "mla"))
        + " tokens; the window's "
        + (
            f"{m['cache_mib/window']:,} MiB fit at any length (its reach: w L = {m['reach/window']:,} tokens back)."
            if m["longest_context/window"] is None
            else f"{m['cache_mib/window']:,} MiB do not fit at all."
        ),
        f"DeepSeek: the 67B caches {d['67b_elements_per_layer']:,} elements per token per layer (2 x 8 x 128) x 95 "
        f"layers x 2 bytes = {d['67b_bytes_per_token']:,} bytes per token; DeepSeek-V2 {d['v2_elements_per_layer']} "
        f"(512 + 64) x 60 layers x 6 bits = {d['v2_bytes_per_token']:,.0f} bytes: {100 * d['reduction']:.1f}% less "
        f"(the paper: {100 * d['paper_reduction']:.1f}%). The paper gives no arithmetic; its figure comes out with "
        "V2's cache as deployed, 6 bits per element. In BF16 both, the saving is "
        f"{100 * d['reduction_same_precision']:.1f}% (MLA and 60 layers instead of 95); MLA against MHA at V2's own "
        f"128 heads of 128 (2 n_h d_h = {d['mha_v2_elements_per_layer']:,}), per layer, "
        f"{100 * d['reduction_vs_mha_same_dims']:.1f}%.",
        closing(r["held"], r["data"]["verdict"], "Every part of the claim held."),
    ]
    return " ".join(parts)


HEADLINE = """
elements per token per layer: MHA / GQA / MQA / MLA | {m[elements/mha]:,} / {m[elements/gqa]:,} / {m[elements/mqa]:,} /
    {m[elements/mla]:,} (formulas {m[formula/mha]:,} / {m[formula/gqa]:,} / {m[formula/mqa]:,} / {m[formula/mla]:,})
window w = {cfg.window}: elements per layer at any length | {m[elements/window]:,} (2 n_h d_h (w + 1))
longest context in {cfg.budget_mib:,} MiB, {cfg.budget_layers} layers: MHA / GQA / MQA / MLA |
    {m[longest_context/mha]:,} / {m[longest_context/gqa]:,} / {m[longest_context/mqa]:,} / {m[longest_context/mla]:,}
DeepSeek-V2's cache against DeepSeek 67B's (as deployed) | {m[deepseek/reduction]:.1%} smaller (paper: 93.3%)
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    return table(HEADLINE, cfg, r)


WORDS = Words(setup, summary, headline)
