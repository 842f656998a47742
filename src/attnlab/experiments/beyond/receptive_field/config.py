"""The config of ``receptive-field``: the windows, the depths and the model (defaults: the full profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig

MISTRAL = {"window": 4096, "layers": 32}  # Mistral 7B, Table 1 and section 2: "approximately 131K tokens"


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """``held`` needs, for every window w and depth L: the gradient of the last position's output nonzero at every
    input position up to w L back and exactly zero beyond; and, as the control, full causal attention reaching every
    position with one layer. The sequence is ``max(windows) (max(depths) + 2)`` long, so the zeros are seen."""

    windows: tuple[int, ...] = (4, 8, 16)
    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    n_embd: int = 32
    n_head: int = 4
    n_kv_head: int = 2  # Mistral's block in miniature: grouped-query attention, rotary positions, RMSNorm, SwiGLU
    vocab_size: int = 32

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"windows": (4, 8), "depths": (1, 2, 3, 4, 5, 6)},
        "tiny": {"windows": (2, 3), "depths": (1, 2, 3), "n_embd": 16},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.increasing("windows", self.windows, minimum=1, low=1)
        checks.increasing("depths", self.depths, minimum=1, low=1)
        checks.ints(self, ("n_embd", "n_head", "n_kv_head"))
        checks.ints(self, ("vocab_size",), minimum=2)
        checks.multiple("n_embd", self.n_embd, 2 * self.n_head, "2 n_head (rotary pairs)")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_kv_head: expected a divisor of n_head={self.n_head}, got {self.n_kv_head}")

    @property
    def length(self) -> int:
        """The sequence length n: room for the farthest reach, w L, and w more positions past it."""
        return max(self.windows) * (max(self.depths) + 2)


__all__ = ["MISTRAL", "Config"]
