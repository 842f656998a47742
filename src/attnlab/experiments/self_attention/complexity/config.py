"""The config of ``complexity``: the implementations, lengths, head shape, memory budgets and timing (defaults: the
full profile on the CPU; ``GPU_PROFILES`` on a GPU)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig

IMPLS = ("naive", "chunked", "torch")


@dataclass(frozen=True)
class Config(ExperimentConfig):
    lengths: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192)
    heads: int = 8
    head_size: int = 64
    impls: tuple[str, ...] = IMPLS
    budgets_mib: tuple[int, ...] = (1024, 8192)
    min_run_time: float = 0.5  # seconds of repeats per timing (median)
    # Above this many MiB of predicted peak an impl is not run at a length (protects the machine); the
    # budgets are answered from the runs below it.
    max_run_mib: int = 6144

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"lengths": (256, 512, 1024, 2048), "heads": 4, "min_run_time": 0.05},
        # Lengths past the chunked tile size (512), so its linear memory shows; one small head keeps it fast.
        "tiny": {"lengths": (1024, 2048, 4096), "heads": 1, "head_size": 16, "min_run_time": 0.01},
    }
    GPU_PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {
            "lengths": (1024, 2048, 4096, 8192, 16384, 32768),
            "max_run_mib": 98_304,
            "budgets_mib": (8192, 65536),
        },
        "quick": {
            "lengths": (2048, 4096, 8192, 16384),
            "min_run_time": 0.1,
            "max_run_mib": 98_304,
            "budgets_mib": (8192, 65536),
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.increasing("lengths", self.lengths, low=1)
        checks.ints(self, ("heads", "head_size", "max_run_mib"))
        checks.choices("impls", self.impls, IMPLS)
        checks.increasing("budgets_mib", self.budgets_mib, minimum=1, low=1)
        checks.positive(self, ("min_run_time",))


__all__ = ["IMPLS", "Config"]
