"""The config of ``parallelism``: lengths, batch, width, the step's optimiser and the timing (defaults: the full
profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.experiments.training import adam
from attnlab.train.loop import TrainConfig

# One training step: forward, backward, Adam at lr 1e-3 (no clipping, no decay); only its time is measured.
TRAIN = adam(1e-3)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    lengths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)  # T
    batch_size: int = 32
    d_model: int = 256  # C: the width both blocks read and write
    heads: int = 4
    mlp_ratio: int = 4  # the attention block's MLP is C -> mlp_ratio*C -> C
    train: TrainConfig = TRAIN
    min_run_time: float = 0.3  # seconds of repeats per timing (median)
    rounds: int = 3  # timings of the two blocks interleaved this many times (median), against drift
    threads: int = 0  # CPU threads to try besides 1 while timing; 0: all that torch has

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"lengths": (32, 64, 128, 256), "d_model": 128, "min_run_time": 0.02, "rounds": 2},
        "tiny": {
            "lengths": (8, 16, 32),
            "batch_size": 4,
            "d_model": 32,
            "heads": 2,
            "min_run_time": 0.005,
            "rounds": 1,
        },
    }
    # on a GPU the quick lengths go to T = 512, past kernel-launch overhead (one H200: 4.7x at T=32, 57x at 512)
    GPU_PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"lengths": (32, 64, 128, 256, 512), "rounds": 3}}
    RENAMED: ClassVar[dict[str, str]] = {"lr": "train.lr"}

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.increasing("lengths", self.lengths, low=2)
        checks.ints(self, ("batch_size", "d_model", "heads", "mlp_ratio", "rounds"))
        checks.multiple("d_model", self.d_model, self.heads, "heads")
        checks.positive(self, ("min_run_time",))
        checks.ints(self, ("threads",), minimum=0)


__all__ = ["Config"]
