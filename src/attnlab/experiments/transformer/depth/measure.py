"""The measuring of ``depth``: the real models' parameter counts against depth (exact line), and the validation
loss of each depth after the same training budget (see the package docstring)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch

from attnlab._checks import resolve_device
from attnlab.data.text import CharCorpus, shakespeare_text
from attnlab.experiments.fits import exact_line, loglog_slope
from attnlab.experiments.training import one_thread, train
from attnlab.models.gpt import GPT, GPTConfig

# the report may run it beside another experiment: trains on one thread; it measures parameters and loss, not time
SHARES_CORES = True


def block_params(C: int) -> int:
    """Parameters of one pre-norm block with biases: attention ``4C^2 + 4C``, FFN ``8C^2 + 5C``, norms ``4C``."""
    return 12 * C * C + 13 * C


def fixed_params(vocab_size: int, block_size: int, C: int) -> int:
    """Parameters that do not depend on depth: token and position embeddings, final LayerNorm (tied head)."""
    return vocab_size * C + block_size * C + 2 * C


def model_config(cfg: Any, depth: int, vocab_size: int) -> GPTConfig:
    return GPTConfig(
        vocab_size=vocab_size, block_size=cfg.block_size, n_layer=depth, n_head=cfg.n_head, n_embd=cfg.n_embd
    )


def load_corpus(cfg: Any) -> CharCorpus:
    text = shakespeare_text()
    corpus = CharCorpus(text[: cfg.text_chars] if cfg.text_chars else text)
    corpus.check_block_size(cfg.block_size)
    return corpus


def _train(cfg: Any, depth: int, corpus: CharCorpus, device: str) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)  # the same initialisation stream for every depth
    model = GPT(model_config(cfg, depth, corpus.vocab_size))

    def get_batch(split: str, gen: torch.Generator):
        return corpus.batch(split, cfg.batch_size, cfg.block_size, gen)

    fit = train(model, cfg.train, get_batch, seed=cfg.seed, device=device)  # the same batches for every depth
    last = fit["history"][-1]
    return {
        "val_loss": last["val"],
        "train_loss": last["train"],
        "seconds": fit["seconds"],
        "history": [{"iter": h["iter"], "train": h["train"], "val": h["val"]} for h in fit["history"]],
    }


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    corpus = load_corpus(cfg)
    V, C = corpus.vocab_size, cfg.n_embd

    # parameters: the real models' counts against depth, and the exact line through them
    counts = []
    for depth in cfg.depths:
        model = GPT(model_config(cfg, depth, V))
        counts.append(sum(p.numel() for p in model.parameters()))
    slope, intercept, residuals = exact_line(list(cfg.depths), counts)
    formula = {"per_block": block_params(C), "fixed": fixed_params(V, cfg.block_size, C)}
    exact = all(r == 0 for r in residuals) and slope == formula["per_block"] and intercept == formula["fixed"]
    non_embedding = [depth * block_params(C) for depth in cfg.depths]

    with one_thread(device):  # models this small gain nothing from intra-op threads (and lose on a shared machine)
        runs = [_train(cfg, depth, corpus, device) for depth in cfg.depths]
    val = [r["val_loss"] for r in runs]
    decreasing = all(b < a for a, b in pairwise(val))
    exponent = loglog_slope(non_embedding, val)
    verdict = {"params_linear_in_depth": exact, "loss_decreases_with_params": decreasing}
    held = all(verdict.values())

    m: dict[str, Any] = {
        "params_per_block": int(slope) if slope.denominator == 1 else float(slope),
        "params_fixed": int(intercept) if intercept.denominator == 1 else float(intercept),
        "params_per_block_formula": formula["per_block"],
        "params_fixed_formula": formula["fixed"],
        "max_abs_residual": float(max(abs(r) for r in residuals)),
        "loglog_slope_loss_vs_params": None if exponent is None else round(exponent, 4),
        "vocab_size": V,
    }
    for depth, n, r in zip(cfg.depths, counts, runs, strict=True):
        m[f"params/L={depth}"] = n
        m[f"val_loss/L={depth}"] = round(r["val_loss"], 4)
        m[f"seconds/L={depth}"] = round(r["seconds"], 2)
    return {
        "held": held,
        "metrics": m,
        "device": device,
        "data": {
            "chars": len(corpus.splits["train"]) + len(corpus.splits["val"]),
            "depths": list(cfg.depths),
            "params": counts,
            "non_embedding_params": non_embedding,
            "fit": {"slope": float(slope), "intercept": float(intercept)},
            "val_loss": val,
            "train_loss": [r["train_loss"] for r in runs],
            "seconds": [r["seconds"] for r in runs],
            "history": [r["history"] for r in runs],
            "loglog_slope": exponent,
            "verdict": verdict,
        },
    }


__all__ = ["block_params", "fixed_params", "load_corpus", "model_config", "run"]
