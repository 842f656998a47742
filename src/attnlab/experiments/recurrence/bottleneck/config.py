"""The config of ``bottleneck``: part (a), the synthetic task, and part (b), German -> English (defaults: the full
profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.experiments.seq2seq import DeEnConfig, check_cell
from attnlab.models.seq2seq import ATTENTIONS
from attnlab.train.loop import TrainConfig

TASKS = ("reverse", "copy")
# AdamW at the peak learning rate after 5% linear warm-up, cosine decay to a tenth, clipping 1, no weight decay.
TRAIN = TrainConfig(
    max_iters=2000, lr=3e-3, min_lr=3e-4, warmup_iters=100, weight_decay=0.0, eval_interval=200, eval_iters=2
)

# part (b): 5% warm-up, cosine to a tenth; dropout (not weight decay) regularises the small corpus
DE_EN_TRAIN = TrainConfig(
    max_iters=4000, lr=2e-3, min_lr=2e-4, warmup_iters=200, weight_decay=0.0, eval_interval=400, eval_iters=2
)


@dataclass(frozen=True)
class BottleneckDeEn(DeEnConfig):
    """Part (b): the models compared at ``budget`` parameters, BLEU per source-length bucket (``buckets``: the
    upper edges, in tokens), and the p-value below which a BLEU difference counts (paired approximate
    randomization)."""

    models: tuple[str, ...] = ("none", "bahdanau")
    budget: int = 2_000_000
    buckets: tuple[int, ...] = (4, 6, 8, 10, 12)
    significance: float = 0.05
    train: TrainConfig = DE_EN_TRAIN

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.choices("de_en.models", self.models, ATTENTIONS)
        checks.ints(self, ("budget",))
        checks.increasing("de_en.buckets", self.buckets, low=1, high=self.max_len)
        checks.fractions(self, ("significance",))


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """``held`` for part (a) needs all of: the no-attention model learns the short strings (accuracy at the shortest
    length >= ``learn_threshold``); it breaks down (at the longest length its accuracy is below
    ``breakdown_fraction`` of that at the shortest); and every attention model learns the short strings too and
    holds (at the longest length at least ``hold_fraction`` of its accuracy at the shortest). Part (b): every
    attention model's test BLEU is above the no-attention model's, and the difference is significant: sacrebleu's
    paired approximate randomization test (10,000 trials; Riezler and Maxwell 2005) gives ``p < significance``.

    The quick profile runs part (a) only, with the no-attention and Bahdanau decoders: part (b) needs thousands of
    steps to say anything (after 400 steps at batch 64, both models scored about 0.5 BLEU, greedy outputs like
    "he is the <unk>."), minutes that the quick report does not have; ``--de-en.enabled true`` turns it on.
    """

    task: str = "reverse"
    models: tuple[str, ...] = ("none", "bahdanau", "luong-general")
    cell: str = "gru"
    emb: int = 32
    param_budget: int = 100_000
    n_symbols: int = 10
    min_len: int = 2
    max_len: int = 30
    eval_lengths: tuple[int, ...] = (5, 10, 15, 20, 25, 30)
    eval_examples: int = 500
    batch_size: int = 64
    train: TrainConfig = TRAIN
    learn_threshold: float = 0.8
    breakdown_fraction: float = 0.5
    hold_fraction: float = 0.75
    de_en: BottleneckDeEn = BottleneckDeEn()

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        # two decoders (Bahdanau's and none); the third, Luong's, in the full profile
        "quick": {
            "models": ("none", "bahdanau"),
            "max_len": 20,
            "eval_lengths": (4, 8, 12, 16, 20),
            "param_budget": 60_000,
            "batch_size": 32,
            "eval_examples": 200,
            "train.max_iters": 400,
            "train.warmup_iters": 20,
            "train.eval_interval": 40,
            "de_en.enabled": False,
        },
        "tiny": {
            "models": ("none", "bahdanau"),
            "max_len": 10,
            "eval_lengths": (3, 6, 10),
            "param_budget": 30_000,
            "batch_size": 32,
            "eval_examples": 100,
            "train.max_iters": 300,
            "train.lr": 5e-3,
            "train.min_lr": 5e-4,
            "train.warmup_iters": 15,
            "train.eval_interval": 30,
            "de_en.enabled": False,
        },
    }
    RENAMED: ClassVar[dict[str, str]] = {**DeEnConfig.RENAMED, "de_en_budget": "de_en.budget"}

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.choice("task", self.task, TASKS)
        checks.choices("models", self.models, ATTENTIONS)
        check_cell(self)
        checks.ints(self, ("emb", "param_budget", "n_symbols", "min_len", "max_len", "eval_examples", "batch_size"))
        if self.max_len < self.min_len:
            raise ValueError(f"max_len: expected >= min_len={self.min_len}, got {self.max_len}")
        checks.increasing("eval_lengths", self.eval_lengths, low=self.min_len, high=self.max_len)
        checks.fractions(self, ("learn_threshold", "breakdown_fraction", "hold_fraction"))


__all__ = ["TASKS", "BottleneckDeEn", "Config"]
