"""The config of ``pronoun``: model size, training budget, evaluation sizes and the thresholds that decide ``held``
(defaults: the full profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.train.loop import TrainConfig

# AdamW with light weight decay, warm-up then cosine to a tenth; one evaluation (4 batches) at the end.
TRAIN = TrainConfig(
    max_iters=3000, lr=3e-3, min_lr=3e-4, warmup_iters=100, weight_decay=0.01, eval_interval=3000, eval_iters=4
)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """``held`` needs a majority of seeds in which both the model's held-out accuracy and the strongest link from
    "it" on held-out sentences reach 0.5 + ``margin``."""

    d_model: int = 64
    nhead: int = 4
    num_layers: int = 2
    batch_size: int = 64
    lexicon_fraction: float = 0.5  # share of each batch that is lexicon (masked-word) sentences
    train: TrainConfig = TRAIN
    eval_pairs: int = 500  # minimal pairs (2 sentences each) per evaluation set
    seeds: int = 5
    margin: float = 0.2
    min_weight: float = 0.1  # a row "points to" a noun with at least this weight on it (uniform over 10 words)
    pretrained_pairs: int = 200  # minimal pairs read by the pretrained all-MiniLM-L6-v2 (0: skip that part)

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {
            "seeds": 2,
            "eval_pairs": 300,
            "pretrained_pairs": 100,
            "train.max_iters": 400,
            "train.eval_interval": 400,
        },
        "tiny": {
            "seeds": 1,
            "eval_pairs": 200,
            "pretrained_pairs": 0,
            "train.max_iters": 600,
            "train.eval_interval": 600,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.ints(self, ("d_model", "nhead", "num_layers", "eval_pairs", "seeds"))
        checks.ints(self, ("batch_size",), minimum=2)
        checks.ints(self, ("pretrained_pairs",), minimum=0)
        checks.multiple("d_model", self.d_model, self.nhead, "nhead")
        if not 0 <= self.lexicon_fraction < 1:
            raise ValueError(f"lexicon_fraction: expected a number in [0, 1), got {self.lexicon_fraction!r}")
        if not isinstance(self.margin, (int, float)) or not 0 < self.margin < 0.5:
            raise ValueError(f"margin: expected a number in (0, 0.5), got {self.margin!r}")
        if not isinstance(self.min_weight, (int, float)) or not 0 < self.min_weight <= 0.5:
            raise ValueError(f"min_weight: expected a number in (0, 0.5], got {self.min_weight!r}")


__all__ = ["Config"]
