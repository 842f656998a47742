"""The words of ``variants``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

import statistics
from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.beyond.variants.measure import noise as seed_noise
from attnlab.experiments.words import closing, fill, spread, table

TITLE = "Today's attention and today's block against GPT-2's, at equal parameters and budget"
CLAIM = (
    "Grouped-query attention keeps quality close to multi-head attention at a fraction of its KV cache; the modern "
    "block (RMSNorm, SwiGLU, rotary positions, no biases) trains at least as well as GPT-2's: SwiGLU and RMSNorm do "
    "not hurt and usually help."
)
SOURCE = (
    "The chapter's close (what comes after attention); Ainslie et al. 2023 (GQA); Shazeer 2019 (MQA); Shazeer 2020 "
    "(GLU variants); Zhang & Sennrich 2019 (RMSNorm); DeepSeek-V2 (MLA); Mistral 7B (sliding window)"
)
MAIN_FIGURE = "loss"
NAMES = {
    "gpt2": "GPT-2 (MHA)",
    "gqa": "GQA",
    "mqa": "MQA",
    "mla": "MLA",
    "window": "window",
    "modern": "modern",
    "swiglu": "SwiGLU",
    "rmsnorm": "RMSNorm",
}


SETUP = """
attnlab GPTs, {cfg.n_layer} layers, {cfg.n_head} heads, context {cfg.block_size}, on char-level Shakespeare
({d[chars]:,} characters, vocabulary {m[vocab_size]}; first 90% train, last 10% validate). GPT-2's block (nanoGPT's
defaults: multi-head attention, learned positions, LayerNorm, GELU, biases) at width {cfg.n_embd} ({m[params/gpt2]:,}
parameters) against: <variants>. Widths solved for the same parameter count: <widths>. Every run:
{cfg.train.max_iters} iterations at batch {cfg.batch_size} (AdamW, lr {cfg.train.lr:g} -> {cfg.train.min_lr:g},
{cfg.train.warmup_iters} warm-up, weight decay {cfg.train.weight_decay:g}, clip {cfg.train.grad_clip:g}), seeds
{d[seeds]}: within a seed, the same batches and evaluation batches for every variant. Validation loss: the mean over
{cfg.train.eval_iters} batches at the end. Cache: the bytes of one layer's decoding cache after a prefill of the whole
context, read from its tensors. Decoding: greedy with the cache, batch 1, {d[decode_tokens]} tokens after a one-token
prompt, one thread, the median of {cfg.decode_rounds} interleaved rounds. Measured on {r[device_name]}.
"""
CHANGES = {
    "gqa": "gqa ({cfg.n_kv_head} kv heads)",
    "mqa": "mqa (1 kv head)",
    "mla": "mla (d_c = {cfg.d_latent}, d_h^R = {cfg.d_rope}, rotary)",
    "window": "window (w = {cfg.window})",
    "modern": "modern (RMSNorm, SwiGLU, rotary, no biases)",
    "swiglu": "swiglu (SwiGLU FFN only)",
    "rmsnorm": "rmsnorm (RMSNorm only)",
}


def setup(cfg: Any, r: dict[str, Any]) -> str:
    m = r["metrics"]
    variants = ", ".join(CHANGES[v].format(cfg=cfg) for v in cfg.variants if v != "gpt2")
    widths = ", ".join(f"{v} {m[f'width/{v}']} ({100 * m[f'params_vs_gpt2/{v}']:+.1f}%)" for v in cfg.variants)
    return fill(SETUP, cfg, r, variants=variants, widths=widths)


def _loss(r: dict[str, Any], v: str) -> str:
    val = r["data"]["val_loss"][v]
    return f"{NAMES[v]} {r['metrics'][f'val_loss/{v}']:.4f}" + (f" ({spread(val, '.4f')})" if len(val) > 1 else "")


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, d, verdict = r["metrics"], r["data"], r["data"]["verdict"]
    n = len(d["seeds"])
    parts = [
        f"Validation loss (nats/char), {f'mean over {n} seeds (range)' if n > 1 else 'one seed'}: "
        + ", ".join(_loss(r, v) for v in cfg.variants)
        + "."
    ]
    if d["why_not_judged"] is None:
        diffs = []
        for v in cfg.variants:
            if v == "gpt2":
                continue
            diff, noise, wins = m[f"diff_vs_gpt2/{v}"], m[f"noise_vs_gpt2/{v}"], m[f"seeds_better_than_gpt2/{v}"]
            a, b = d["val_loss"]["gpt2"], d["val_loss"][v]  # the rule on the unrounded losses, as the verdict's
            word = "within" if statistics.mean(b) - statistics.mean(a) <= seed_noise(a, b) else "beyond"
            diffs.append(f"{NAMES[v]} {diff:+.4f} ({word} the noise {noise:.4f}; below GPT-2 in {wins} of "
                         f"{len(d['seeds'])} seeds)")  # fmt: skip
        parts.append(
            "Against GPT-2's block (mean difference; noise = the larger seed range): " + "; ".join(diffs) + "."
        )
    else:
        parts.append(f"Quality was not judged: {d['why_not_judged']} (the full profile runs 3 seeds).")
    caches = ", ".join(f"{NAMES[v]} {100 * m[f'cache_vs_gpt2/{v}']:.1f}%" for v in cfg.variants if v != "gpt2")
    parts.append(
        f"KV cache per layer at the full context, against GPT-2's {m['cache_bytes_per_layer/gpt2']:,} bytes: {caches} "
        f"(the window's holds w + 1 = {cfg.window + 1} of {cfg.block_size} positions)."
    )
    speeds = ", ".join(f"{NAMES[v]} {m[f'decode_tokens_per_s/{v}']:,.0f}" for v in cfg.variants)
    parts.append(
        f"Decoding tokens/s: {speeds}. At this size a step is Python and small kernels, not cache reads, so a "
        "smaller cache cannot show as speed here; what shows is each block's own work per token."
    )
    held_text = (
        "The claim held: GQA stayed within the seed noise of multi-head attention at a fraction of its cache, and "
        "the modern block and its parts were not worse than GPT-2's beyond the noise."
    )
    parts.append(closing(r["held"], verdict, held_text) if r["held"] is not None else _not_judged(verdict))
    return " ".join(parts)


def _not_judged(verdict: dict[str, Any]) -> str:
    measured = [k for k, v in verdict.items() if v is not None]
    ok = all(verdict[k] for k in measured)
    return (
        "The claim could not be judged here as a whole; what was measurable ("
        + ", ".join(measured)
        + (") held." if ok else ") did not all hold.")
    )


HEADLINE = """
validation loss: GPT-2 / GQA / modern | {m[val_loss/gpt2]:.4f} / {m[val_loss/gqa]:.4f} / {m[val_loss/modern]:.4f}
GQA - GPT-2, mean validation loss | {m[diff_vs_gpt2/gqa]:+.4f} (<gqa>)
modern - GPT-2, mean validation loss | {m[diff_vs_gpt2/modern]:+.4f} (<modern>)
KV cache per layer against MHA: GQA / MQA / MLA / window | {m[cache_vs_gpt2/gqa]:.0%} / {m[cache_vs_gpt2/mqa]:.0%} /
    {m[cache_vs_gpt2/mla]:.0%} / {m[cache_vs_gpt2/window]:.0%}
decoding tokens/s: GPT-2 / GQA / modern | {m[decode_tokens_per_s/gpt2]:,.0f} / {m[decode_tokens_per_s/gqa]:,.0f} /
    {m[decode_tokens_per_s/modern]:,.0f}
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    m, d = r["metrics"], r["data"]
    n = len(d["seeds"])

    def detail(v: str) -> str:
        lower = f"lower in {m.get(f'seeds_better_than_gpt2/{v}')} of {n} seed{'s' if n > 1 else ''}"
        if d["why_not_judged"] is not None:
            return f"{lower}; not judged"
        return f"noise {m[f'noise_vs_gpt2/{v}']:.4f}; {lower}"

    return table(HEADLINE, cfg, r, gqa=detail("gqa"), modern=detail("modern"))


WORDS = Words(setup, summary, headline)
