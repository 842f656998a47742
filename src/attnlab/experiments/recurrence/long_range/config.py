"""The config of ``long-range``: distances, models, the parameter budget, the task and the training budget every
model gets at every distance (defaults: the full profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.experiments.recall import RECALL, RecallTask
from attnlab.experiments.training import adam
from attnlab.train.loop import TrainConfig

MODELS = ("rnn", "lstm", "gru", "attention")
TRAIN = adam(3e-3, 3000, grad_clip=1.0, eval_interval=25)  # the same optimiser and budget for every model


@dataclass(frozen=True)
class Config(ExperimentConfig):
    distances: tuple[int, ...] = (1, 10, 25, 50, 100)
    models: tuple[str, ...] = MODELS
    embed_size: int = 16
    param_budget: int = 10_000  # parameters of every model (embedding + layer + readout)
    seeds: int = 3
    task: RecallTask = RECALL
    train: TrainConfig = TRAIN

    # The loop over time is Python, so a step costs ~ d steps of a cell: quick keeps d <= 20, one seed and a small
    # budget (300 steps, ~10 s on 2 cores); the full profile 3000 steps, d <= 100 and three seeds.
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"distances": (1, 5, 10, 20), "seeds": 1, "train.max_iters": 300, "train.eval_interval": 20},
        "tiny": {
            "distances": (1, 8),
            "param_budget": 6000,
            "seeds": 1,
            "train.max_iters": 150,
            "train.eval_interval": 15,
            "task.eval_examples": 128,
        },
    }
    RENAMED: ClassVar[dict[str, str]] = {"cells": "models", "n_seeds": "seeds"}

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.increasing("distances", self.distances, minimum=2, low=1)
        checks.choices("models", self.models, MODELS)
        checks.ints(self, ("embed_size", "param_budget", "seeds"))


__all__ = ["MODELS", "Config"]
