"""The config of ``depth``: depths at one width, and the training budget every depth gets (defaults: the full
profile)."""

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
    """``held`` needs both: the parameter count exactly linear in depth (every point on the fitted line, slope and
    intercept equal to the formula) and the validation loss decreasing with size (each deeper model's loss
    below that of the next shallower one)."""

    depths: tuple[int, ...] = (1, 2, 4, 8)
    n_embd: int = 128
    n_head: int = 4
    block_size: int = 64
    batch_size: int = 12
    train: TrainConfig = TRAIN
    text_chars: int = 0  # 0: the whole built-in corpus; else its first text_chars characters

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {
            "depths": (1, 2, 4),
            "n_embd": 64,
            "text_chars": 1_000_000,
            "train.max_iters": 300,
            "train.lr": 2e-3,
            "train.min_lr": 2e-4,
            "train.warmup_iters": 30,
            "train.eval_interval": 150,
            "train.eval_iters": 20,
        },
        "tiny": {
            "depths": (1, 2, 4),
            "n_embd": 32,
            "n_head": 2,
            "block_size": 32,
            "text_chars": 200_000,
            "train.max_iters": 150,
            "train.lr": 3e-3,
            "train.min_lr": 3e-4,
            "train.warmup_iters": 15,
            "train.eval_interval": 75,
            "train.eval_iters": 10,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.increasing("depths", self.depths, low=1)
        checks.ints(self, ("n_embd", "n_head", "block_size", "batch_size"))
        checks.ints(self, ("text_chars",), minimum=0)
        checks.multiple("n_embd", self.n_embd, self.n_head, "n_head")
        if self.train.warmup_iters >= self.train.max_iters:
            raise ValueError(
                f"train.warmup_iters: expected fewer than train.max_iters={self.train.max_iters}, "
                f"got {self.train.warmup_iters}"
            )


__all__ = ["Config"]
