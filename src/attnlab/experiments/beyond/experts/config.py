"""The config of ``experts``: the numbers of experts, the model, the training budget every model gets and the
seeds (defaults: the full profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.train.loop import TrainConfig

# nanoGPT's CPU recipe for shakespeare_char: AdamW, warm-up then cosine from 1e-3 to 1e-4, weight decay 0.1, clip 1.
TRAIN = TrainConfig(max_iters=2000, lr=1e-3, min_lr=1e-4, warmup_iters=100, eval_interval=500, eval_iters=100)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """``experts``: E for each model, 1 first (the dense FFN); every E > 1 routes each token to ``top_k`` experts
    of width ``4C / top_k`` (as many FLOPs as the dense FFN). ``seeds``: training runs per model (seed, seed + 1,
    ...; 0: only the parameters and FLOPs are counted). ``balance_batches``: validation batches the router's load is
    read on after training."""

    experts: tuple[int, ...] = (1, 2, 4, 8)
    top_k: int = 2
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    block_size: int = 64
    batch_size: int = 12
    train: TrainConfig = TRAIN
    text_chars: int = 0  # 0: the whole built-in corpus; else its first text_chars characters
    seeds: int = 3
    balance_batches: int = 8

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        # Losses that separate from the seeds' spread take minutes of training on a CPU: the quick profile counts
        # the full profile's models (parameters, FLOPs per token) and says the claim was not tested.
        "quick": {"seeds": 0, "text_chars": 100_000},
        "tiny": {
            "experts": (1, 2, 4),
            "n_layer": 1,
            "n_embd": 32,
            "n_head": 2,
            "block_size": 16,
            "batch_size": 4,
            "text_chars": 50_000,
            "seeds": 1,
            "train.max_iters": 20,
            "train.warmup_iters": 2,
            "train.eval_interval": 20,
            "train.eval_iters": 2,
            "balance_batches": 1,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.increasing("experts", self.experts, low=1)
        if self.experts[0] != 1:
            raise ValueError(f"experts: expected the dense model (1) first, got {self.experts!r}")
        checks.ints(self, ("top_k", "n_layer", "n_embd", "n_head", "block_size", "batch_size", "balance_batches"))
        checks.ints(self, ("seeds",), minimum=0)
        checks.ints(self, ("text_chars",), minimum=0)
        checks.multiple("n_embd", self.n_embd, self.n_head, "n_head")
        if self.experts[1] < self.top_k:
            raise ValueError(f"experts: expected every E > 1 to be at least top_k={self.top_k}, got {self.experts!r}")
        checks.multiple("n_embd", 4 * self.n_embd, self.top_k, "top_k (experts of width 4C / top_k)")


__all__ = ["Config"]
