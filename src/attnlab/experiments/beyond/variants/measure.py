"""The measuring of ``variants``: widths solved for equal parameters, every variant trained with the same budget
on the same batches for each seed, its validation loss, its decoding speed and its cache (see the package
docstring)."""

from __future__ import annotations

import statistics
from fractions import Fraction
from typing import Any

import torch

from attnlab._checks import resolve_device
from attnlab.data.text import CharCorpus, shakespeare_text
from attnlab.experiments.base import measured
from attnlab.experiments.training import one_thread, train
from attnlab.measure import median_seconds
from attnlab.models.gpt import GPT, Decoder, GPTConfig

# not beside another experiment: it times decoding (tokens/s), which sharing the cores would slow
SHARES_CORES = False

QUALITY = {"gqa": "gqa_close_to_gpt2", "modern": "modern_not_worse", "swiglu": "swiglu_not_worse",
           "rmsnorm": "rmsnorm_not_worse"}  # fmt: skip
MIN_SEEDS = 3  # below this there is no seed spread to judge "close" by


def options(cfg: Any, variant: str) -> dict[str, Any]:
    """The GPTConfig options of a variant; GPT-2's block is nanoGPT's defaults (with biases)."""
    return {
        "gpt2": {},
        "gqa": {"n_kv_head": cfg.n_kv_head},
        "mqa": {"n_kv_head": 1},
        "mla": {"attention": "mla", "pos": "rope", "d_latent": cfg.d_latent, "d_rope": cfg.d_rope},
        "window": {"window": cfg.window},
        "modern": {"pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False},
        "swiglu": {"mlp": "swiglu"},
        "rmsnorm": {"norm": "rmsnorm"},
    }[variant]


def model_config(cfg: Any, variant: str, n_embd: int, vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                     n_embd=n_embd, **options(cfg, variant))  # fmt: skip


def count_params(config: GPTConfig) -> int:
    """All parameters of the GPT ``config`` builds."""
    return sum(p.numel() for p in GPT(config).parameters())


def solve_width(cfg: Any, variant: str, vocab_size: int) -> tuple[int, int]:
    """The width whose parameter count is closest to GPT-2's at ``cfg.n_embd`` (the narrower on a tie), among the
    multiples of n_head (of 2 n_head with rotary positions, which rotate pairs); returns it and its count. The count
    grows with the width, so the two widths around GPT-2's count are the only candidates."""
    target = count_params(model_config(cfg, "gpt2", cfg.n_embd, vocab_size))
    step = cfg.n_head * (2 if options(cfg, variant).get("pos") == "rope" else 1)

    def count(width: int) -> int | None:
        try:
            return count_params(model_config(cfg, variant, width, vocab_size))
        except ValueError:  # e.g. MLA's d_latent wider than the model: too narrow to build
            return None

    width = max(step, cfg.n_embd // step * step)
    while (n := count(width)) is None or n < target:  # up to the first width at or above the target
        width += step
    above = (width, n)
    below = None
    while width > step:  # down to the first width below the target
        width -= step
        n = count(width)
        if n is None:
            break
        if n < target:
            below = (width, n)
            break
    candidates = [c for c in (below, above) if c is not None]
    return min(candidates, key=lambda c: (abs(c[1] - target), c[0]))


def load_corpus(cfg: Any) -> CharCorpus:
    text = shakespeare_text()
    corpus = CharCorpus(text[: cfg.text_chars] if cfg.text_chars else text)
    corpus.check_block_size(cfg.block_size)
    return corpus


def _train(cfg: Any, config: GPTConfig, corpus: CharCorpus, seed: int, device: str) -> tuple[GPT, dict[str, Any]]:
    torch.manual_seed(seed)
    model = GPT(config)

    def get_batch(split: str, gen: torch.Generator):
        return corpus.batch(split, cfg.batch_size, cfg.block_size, gen)

    fit = train(model, cfg.train, get_batch, seed=seed, device=device)  # the same batches for every variant
    last = fit["history"][-1]
    history = [{"iter": h["iter"], "loss": h["loss"], "val": h["val"]} for h in fit["history"]]
    return model, {"val": last["val"], "train": last["train"], "seconds": fit["seconds"], "history": history}


def cache_bytes(model: GPT, device: str) -> int:
    """Bytes the first block's decoding cache holds after a prefill of the whole context (``block_size`` tokens)."""
    T = model.config.block_size
    caches = [block.new_cache(T) for block in model.blocks]
    with torch.no_grad():
        model(torch.zeros(1, T, dtype=torch.long, device=device), caches=caches)  # (B=1, T)
    return caches[0].nbytes()


def decoder_run(model: GPT, device: str):
    """A call that decodes greedily from one token to the full context (``block_size`` positions) with a cache."""
    decoder = Decoder(model, 1, torch.device(device))
    start = torch.zeros(1, 1, dtype=torch.long, device=device)  # (B=1, 1)

    @torch.no_grad()
    def run() -> torch.Tensor:
        logits = decoder.prefill(start)  # (1, V)
        for _ in range(model.config.block_size - 1):
            logits = decoder.step(logits.argmax(-1, keepdim=True))  # (1, 1) -> (1, V)
        return logits

    return run


def noise(a: list[float], b: list[float]) -> float:
    """The larger seed range (max - min) of two variants: what changing the seed alone moves the loss by."""
    return max(max(a) - min(a), max(b) - min(b))


def _verdict(cfg: Any, val: dict[str, list[float]], params: dict[str, int], cache: dict[str, int], widths: dict):
    ref = params["gpt2"]
    v: dict[str, bool | None] = {
        "params_within_tolerance": all(abs(n / ref - 1) <= cfg.param_tolerance for n in params.values())
    }
    if "gqa" in cfg.variants:  # kv heads n_kv of size hs' against n_h of size hs: 2 n_kv hs' / (2 n_h hs)
        predicted = Fraction(cfg.n_kv_head * widths["gqa"], cfg.n_head * widths["gpt2"])
        v["gqa_cache_fraction"] = Fraction(cache["gqa"], cache["gpt2"]) == predicted < 1
    for variant, name in QUALITY.items():
        if variant in cfg.variants:
            if cfg.seeds < MIN_SEEDS:
                v[name] = None
            else:
                a, b = val["gpt2"], val[variant]
                v[name] = statistics.mean(b) - statistics.mean(a) <= noise(a, b)
    return v


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    corpus = load_corpus(cfg)
    V = corpus.vocab_size
    widths, params = {}, {}
    for variant in cfg.variants:
        widths[variant], params[variant] = solve_width(cfg, variant, V)
    seeds = [cfg.seed + s for s in range(cfg.seeds)]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in cfg.variants}
    first: dict[str, GPT] = {}  # the first seed's models, for decoding
    with one_thread(device):  # models this small gain nothing from intra-op threads (and lose on a shared machine)
        for seed in seeds:
            for variant in cfg.variants:
                model, r = _train(cfg, model_config(cfg, variant, widths[variant], V), corpus, seed, device)
                runs[variant].append(r)
                first.setdefault(variant, model)
        cache = {v: cache_bytes(first[v], device) for v in cfg.variants}
        calls = {v: decoder_run(first[v], device) for v in cfg.variants}
        rounds: dict[str, list[float]] = {v: [] for v in cfg.variants}
        for _ in range(cfg.decode_rounds):  # interleaved rounds: drift on a shared machine hits every variant alike
            for v in cfg.variants:
                rounds[v].append(median_seconds(calls[v], cfg.decode_min_run_time))
    tokens = cfg.block_size - 1  # decoded per call (after the one-token prompt)
    tokens_per_s = {v: tokens / statistics.median(t) for v, t in rounds.items()}

    val = {v: [r["val"] for r in rs] for v, rs in runs.items()}
    verdict = _verdict(cfg, val, params, cache, widths)
    m: dict[str, Any] = {"vocab_size": V, "params/gpt2": params["gpt2"]}
    for v in cfg.variants:
        mean = statistics.mean(val[v])
        m[f"val_loss/{v}"] = round(mean, 4)
        m[f"val_loss_range/{v}"] = round(max(val[v]) - min(val[v]), 4)
        m[f"width/{v}"] = widths[v]
        m[f"params/{v}"] = params[v]
        m[f"params_vs_gpt2/{v}"] = round(params[v] / params["gpt2"] - 1, 4)
        m[f"cache_bytes_per_layer/{v}"] = cache[v]
        m[f"cache_vs_gpt2/{v}"] = round(cache[v] / cache["gpt2"], 4)
        m[f"decode_tokens_per_s/{v}"] = round(tokens_per_s[v], 1)
        if v != "gpt2":
            m[f"diff_vs_gpt2/{v}"] = round(mean - statistics.mean(val["gpt2"]), 4)
            if cfg.seeds >= MIN_SEEDS:
                m[f"noise_vs_gpt2/{v}"] = round(noise(val["gpt2"], val[v]), 4)
            m[f"seeds_better_than_gpt2/{v}"] = sum(b < a for a, b in zip(val["gpt2"], val[v], strict=True))
    data = {
        "chars": len(corpus.splits["train"]) + len(corpus.splits["val"]),
        "variants": list(cfg.variants),
        "seeds": seeds,
        "val_loss": val,
        "train_loss": {v: [r["train"] for r in rs] for v, rs in runs.items()},
        "seconds": {v: [r["seconds"] for r in rs] for v, rs in runs.items()},
        "history": {v: [r["history"] for r in rs] for v, rs in runs.items()},
        "widths": widths,
        "params": params,
        "cache_bytes": cache,
        "decode_seconds": rounds,
        "decode_tokens": tokens,
        "why_not_judged": None if cfg.seeds >= MIN_SEEDS else f"{cfg.seeds} seed(s): no seed spread to judge by",
    }
    result = measured(verdict, m, data, device)
    parts = list(verdict.values())
    result["held"] = False if False in parts else None if None in parts else True
    return result


__all__ = ["cache_bytes", "count_params", "decoder_run", "model_config", "noise", "options", "run", "solve_width"]
