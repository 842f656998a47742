"""The config of ``recall``: the mixers, the numbers of pairs, the model, the training budget every model gets,
the seeds and the verdict's thresholds (defaults: the full profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.experiments.beyond.mixers import MIXERS
from attnlab.experiments.training import adam
from attnlab.train.loop import TrainConfig

# Adam at a constant rate, no weight decay: the Trainer's decay on matrices pulls Mamba's A_log towards zero
TRAIN = adam(3e-3, 4000, eval_interval=500)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Every model trains on batches of ``batch_size`` fresh examples, each batch with D drawn from ``pairs``, and is
    scored on ``eval_examples`` held-out examples per D. ``seeds``: training runs per mixer (seed, seed + 1, ...; 0:
    only the sizes are measured). Verdict: attention's mean accuracy at least ``recall_min`` at every D; each
    fixed-state mixer at the largest D at least ``gap`` below attention and ``drop`` below its own at the smallest."""

    mixers: tuple[str, ...] = MIXERS
    pairs: tuple[int, ...] = (2, 4, 8, 16)
    n_keys: int = 128
    n_values: int = 16
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    d_state: int = 16
    batch_size: int = 64
    train: TrainConfig = TRAIN
    eval_examples: int = 512
    seeds: int = 3
    recall_min: float = 0.9
    gap: float = 0.2
    drop: float = 0.1

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        # Training to recall takes minutes on a CPU (attention needed ~800 steps, Mamba ~2000 in development):
        # the quick profile measures the models' sizes and states only, and says the claim was not tested.
        "quick": {"seeds": 0},
        "tiny": {
            "pairs": (2, 4),
            "n_keys": 4,
            "n_values": 4,
            "n_layer": 1,
            "n_embd": 16,
            "batch_size": 8,
            "eval_examples": 16,
            "seeds": 1,
            "train.max_iters": 4,
            "train.eval_interval": 4,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.choices("mixers", self.mixers, MIXERS)
        checks.ints(self, ("n_keys", "n_values", "n_layer", "n_embd", "n_head", "d_state", "batch_size"))
        checks.increasing("pairs", self.pairs, low=1, high=min(self.n_keys, self.n_values))
        checks.ints(self, ("eval_examples",))
        checks.ints(self, ("seeds",), minimum=0)
        checks.multiple("n_embd", self.n_embd, self.n_head, "n_head")
        checks.fractions(self, ("recall_min", "gap", "drop"))


__all__ = ["Config"]
