"""The config of ``alignment``: the date model, its training, the held-out dates and the thresholds; and a German
-> English model for the heatmaps (defaults: the full profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.experiments.seq2seq import DeEnConfig, check_cell
from attnlab.models.seq2seq import ATTENTIONS
from attnlab.train.loop import TrainConfig

TRAIN = TrainConfig(
    max_iters=1500, lr=3e-3, min_lr=3e-4, warmup_iters=75, weight_decay=0.0, eval_interval=150, eval_iters=2
)


@dataclass(frozen=True)
class AlignmentDeEn(DeEnConfig):
    """The German -> English model of the heatmaps (no gold alignment there): its hidden size and how many test
    sentences are drawn."""

    hidden: int = 64
    sentences: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.ints(self, ("hidden", "sentences"))


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """``held`` needs the argmax agreement >= ``argmax_ratio`` x chance and the mass on the gold field >=
    ``mass_ratio`` x chance (over all held-out dates)."""

    attention: str = "bahdanau"
    cell: str = "gru"
    emb: int = 32
    hidden: int = 64
    batch_size: int = 64
    train: TrainConfig = TRAIN
    eval_per_format: int = 200  # held-out dates of each source format
    vocab_sample: int = 5000  # dates drawn to build the character vocabularies
    argmax_ratio: float = 2.0
    mass_ratio: float = 2.0
    de_en: AlignmentDeEn = AlignmentDeEn()

    # quick: 250 steps at batch 32 (the date task is learned by then: accuracy ~1.0 in development), no de-en
    # model (thousands of steps for readable maps); tiny: the test's short run.
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {
            "hidden": 48,
            "batch_size": 32,
            "eval_per_format": 100,
            "train.max_iters": 250,
            "train.warmup_iters": 12,
            "train.eval_interval": 25,
            "de_en.enabled": False,
        },
        "tiny": {
            "hidden": 32,
            "batch_size": 32,
            "eval_per_format": 40,
            "vocab_sample": 2000,
            "train.max_iters": 120,
            "train.warmup_iters": 6,
            "train.eval_interval": 12,
            "de_en.enabled": False,
        },
    }
    RENAMED: ClassVar[dict[str, str]] = {**DeEnConfig.RENAMED, "de_en_hidden": "de_en.hidden"}

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.choices("attention", (self.attention,), ATTENTIONS[1:])  # a model with attention
        check_cell(self)
        checks.ints(self, ("emb", "hidden", "batch_size", "eval_per_format", "vocab_sample"))
        checks.positive(self, ("argmax_ratio", "mass_ratio"))


__all__ = ["AlignmentDeEn", "Config"]
