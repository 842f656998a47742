"""The config of ``vanishing-gradients``: the lag, the cells' size, the memory task, the training budget, and
the radii and clipping of the exploding part (defaults: the full profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.experiments.recall import RECALL, RecallTask
from attnlab.experiments.training import adam
from attnlab.train.loop import TrainConfig

# Adam at a constant learning rate with gradient-norm clipping 1 (no warm-up, no decay, no weight decay): the
# cells differ in the cell alone. Solving is checked every eval_interval steps.
TRAIN = adam(3e-3, 3000, grad_clip=1.0, eval_interval=25)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    lag: int = 50  # distractors between the symbol and the query: the sequence has lag + 2 steps
    hidden_size: int = 64
    embed_size: int = 16
    seeds: int = 3  # seed, seed + 1, ...: gradients averaged, "solved" by majority
    task: RecallTask = RECALL
    train: TrainConfig = TRAIN
    probe_examples: int = 64
    radii: tuple[float, ...] = (0.5, 0.9, 1.0, 1.1, 1.5, 2.0)
    probe_scale: float = 0.1  # inputs of the radius sweep: small, so tanh stays in its linear range
    clip_max_norm: float = 1.0
    clip_batches: int = 20
    margin: float = 1.05  # "clearly slower decay": a per-step factor at least this many times the RNN's

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"lag": 20, "seeds": 1, "train.max_iters": 300, "train.eval_interval": 20},
        "tiny": {
            "lag": 8,
            "hidden_size": 32,
            "seeds": 1,
            "probe_examples": 32,
            "clip_batches": 4,
            "train.max_iters": 150,
            "train.eval_interval": 15,
            "task.eval_examples": 128,
        },
    }
    RENAMED: ClassVar[dict[str, str]] = {"seq_len": "lag"}

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.ints(self, ("lag", "hidden_size", "embed_size", "seeds", "probe_examples", "clip_batches"))
        checks.positive(self, ("probe_scale", "clip_max_norm", "margin"))
        checks.increasing("radii", self.radii, minimum=2, low=1e-9)


__all__ = ["Config"]
