"""The config of ``variants``: which blocks, the baseline width the others are matched to, each variant's setting,
the seeds and the training budget every run gets (defaults: the full profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.train.loop import TrainConfig

# GPT-2's block (nanoGPT's defaults: multi-head attention, learned positions, LayerNorm, GELU, biases) and the
# variants, each named after what it changes: the attention (gqa, mqa, mla, window), the whole block (modern), or
# one part of it (swiglu, rmsnorm).
VARIANTS = ("gpt2", "gqa", "mqa", "mla", "window", "modern", "swiglu", "rmsnorm")
# nanoGPT's CPU recipe for shakespeare_char (AdamW, warm-up then cosine from 1e-3 to 1e-4, weight decay 0.1, clip 1);
# the validation loss over 200 batches, as nanoGPT reports it, halfway and at the end.
TRAIN = TrainConfig(max_iters=2000, eval_interval=1000, eval_iters=200)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """``held`` (with ``seeds`` >= 3; fewer: None, there is no seed spread to judge by): the parameter counts within
    ``param_tolerance`` of GPT-2's; GQA's measured cache the predicted fraction of MHA's; GQA's mean validation loss
    within the noise of GPT-2's (MHA), and each of modern, swiglu and rmsnorm not worse than GPT-2's by more than
    the noise, where the noise is the larger of the two seed ranges (max - min over the seeds)."""

    variants: tuple[str, ...] = VARIANTS
    seeds: int = 3  # runs per variant, seeds seed, seed + 1, ...: the same batches and evaluation for every variant
    n_embd: int = 128  # GPT-2's width; every other variant's is solved for the same parameter count
    n_head: int = 4
    n_layer: int = 4
    block_size: int = 64
    batch_size: int = 12
    n_kv_head: int = 2  # gqa (mqa: 1)
    d_latent: int = 64  # mla's d_c
    d_rope: int = 16  # mla's d_h^R
    window: int = 16  # window: w L = 64 = the context, reached only through the stack
    param_tolerance: float = 0.04  # |params / GPT-2's - 1| allowed
    decode_min_run_time: float = 0.5  # seconds of repeats per decoding timing (median)
    decode_rounds: int = 3  # timings per variant, interleaved across the variants (their median is reported)
    train: TrainConfig = TRAIN
    text_chars: int = 0  # 0: the whole built-in corpus; else its first text_chars characters

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {
            "variants": ("gpt2", "gqa", "mqa", "mla", "window", "modern"),
            "seeds": 1,
            "n_embd": 32,
            "n_layer": 2,
            "block_size": 32,
            "batch_size": 8,
            "d_latent": 16,
            "d_rope": 4,
            "param_tolerance": 0.12,  # at width 32 one step of 4 changes the count by ~25%
            "decode_min_run_time": 0.02,
            "decode_rounds": 1,
            "text_chars": 1_000_000,
            "train.max_iters": 120,
            "train.lr": 3e-3,
            "train.min_lr": 3e-4,
            "train.warmup_iters": 12,
            "train.eval_interval": 120,
            "train.eval_iters": 20,
        },
        "tiny": {
            "variants": ("gpt2", "gqa", "mqa", "mla", "window", "modern"),
            "n_embd": 32,
            "n_layer": 1,
            "block_size": 16,
            "batch_size": 4,
            "d_latent": 16,
            "d_rope": 4,
            "window": 8,
            "param_tolerance": 0.15,
            "decode_min_run_time": 0.001,
            "decode_rounds": 1,
            "text_chars": 100_000,
            "train.max_iters": 16,
            "train.lr": 3e-3,
            "train.min_lr": 3e-4,
            "train.warmup_iters": 2,
            "train.eval_interval": 16,
            "train.eval_iters": 2,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.choices("variants", self.variants, VARIANTS)
        if "gpt2" not in self.variants:
            raise ValueError(f"variants: expected 'gpt2' among them (the baseline), got {self.variants!r}")
        checks.ints(self, ("seeds", "n_embd", "n_head", "n_layer", "block_size", "batch_size", "n_kv_head"))
        checks.ints(self, ("decode_rounds",))
        checks.ints(self, ("d_latent", "window"))
        checks.ints(self, ("d_rope",), minimum=2)
        checks.multiple("n_embd", self.n_embd, self.n_head, "n_head")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_kv_head: expected a divisor of n_head={self.n_head}, got {self.n_kv_head}")
        checks.multiple("d_rope", self.d_rope, 2, "rotary pairs")
        checks.ints(self, ("text_chars",), minimum=0)
        checks.fractions(self, ("param_tolerance",), below_one=True)
        checks.positive(self, ("decode_min_run_time",))
        if self.train.warmup_iters >= self.train.max_iters:
            raise ValueError(
                f"train.warmup_iters: expected fewer than train.max_iters={self.train.max_iters}, "
                f"got {self.train.warmup_iters}"
            )


__all__ = ["TRAIN", "VARIANTS", "Config"]
