"""The config of ``decode-cost``: the mixers, the context lengths, where the slopes are fitted, the model and the
timing (defaults: the full profile on the CPU)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.experiments.beyond.mixers import MIXERS


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """``fit_from``: the slopes are fitted over the lengths ``n >= fit_from`` (fixed here, before measuring: see the
    package docstring). ``flat_max`` and ``growing_min``: the slopes that count as flat (linear attention, SSM) and
    as growing (softmax attention). ``rounds``: timed steps per mixer and length (interleaved, median).
    ``memory_budget_mib``: the decoding memory per sequence against which the longest context is stated."""

    mixers: tuple[str, ...] = MIXERS
    lengths: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
    fit_from: int = 2048
    batch_size: int = 8
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    d_state: int = 16
    vocab_size: int = 65
    rounds: int = 48
    flat_max: float = 0.1
    growing_min: float = 0.5
    memory_budget_mib: int = 1024

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"lengths": (256, 512, 1024, 2048), "fit_from": 512, "n_layer": 1, "batch_size": 16, "rounds": 24},
        "tiny": {"lengths": (16, 32, 64), "fit_from": 32, "n_layer": 1, "n_embd": 32, "batch_size": 2, "rounds": 2},
    }
    # On a GPU one eager decoding step is launch-bound (a few hundred kernels): the cache dominates only at a larger
    # batch and width and longer contexts. Not yet run on a GPU (an estimate from the H200's bandwidth).
    GPU_PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {
            "lengths": (1024, 2048, 4096, 8192, 16384, 32768),
            "fit_from": 8192,
            "batch_size": 32,
            "n_embd": 512,
            "n_head": 8,
            "memory_budget_mib": 65536,
        },
        "quick": {
            "lengths": (1024, 2048, 4096, 8192, 16384),
            "fit_from": 4096,
            "batch_size": 32,
            "n_embd": 512,
            "n_head": 8,
            "memory_budget_mib": 65536,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.choices("mixers", self.mixers, MIXERS)
        checks.increasing("lengths", self.lengths, minimum=3, low=1)
        if self.fit_from not in self.lengths[:-1]:
            raise ValueError(
                f"fit_from: expected one of the lengths before the last {self.lengths[:-1]} (a fit needs two), "
                f"got {self.fit_from!r}"
            )
        checks.ints(self, ("batch_size", "n_layer", "n_embd", "n_head", "d_state", "vocab_size", "rounds"))
        checks.ints(self, ("memory_budget_mib",))
        checks.multiple("n_embd", self.n_embd, self.n_head, "n_head")
        checks.positive(self, ("flat_max", "growing_min"))


__all__ = ["Config"]
