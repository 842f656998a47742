"""The config of ``kv-cache``: the model width, each variant's setting, the prefill lengths and the memory budget
(defaults: the full profile); and the two DeepSeek configurations the 93.3% is computed from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig

VARIANTS = ("mha", "gqa", "mqa", "mla", "window")

# The two models DeepSeek-V2's "KV cache reduced by 93.3%" compares (checked against their published configurations,
# see the package docstring). ``bits``: bits per cached element as deployed (the 67B in BF16; DeepSeek-V2 section
# 3.2.3: "compress each element in its KV cache into 6 bits on average").
DEEPSEEK = {
    "67b": {"layers": 95, "heads": 64, "kv_heads": 8, "head_size": 128, "bits": 16},
    "v2": {"layers": 60, "heads": 128, "head_size": 128, "d_latent": 512, "d_rope": 64, "bits": 6},
}
PAPER_REDUCTION = 0.933  # DeepSeek-V2's abstract: "reduces the KV cache by 93.3%" against DeepSeek 67B


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """``held`` needs every measured cache to equal its paper's formula exactly at every length and layer (the
    window's constant), and the DeepSeek reduction computed from the measured per-layer caches to round to 93.3%."""

    n_embd: int = 1024
    n_head: int = 16  # head size n_embd / n_head = 64
    n_kv_head: int = 4  # GQA's kv heads (MQA: 1)
    d_latent: int = 256  # MLA's d_c (DeepSeek-V2's ratio: 4 head sizes)
    d_rope: int = 32  # MLA's d_h^R (DeepSeek-V2's ratio: half a head)
    window: int = 256
    n_layer: int = 2
    lengths: tuple[int, ...] = (256, 1024, 4096)  # prefill lengths
    budget_mib: int = 4096  # cache memory for one sequence
    budget_layers: int = 24  # layers of the model the budget is for

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"lengths": (32, 128), "n_layer": 1},
        "tiny": {
            "n_embd": 64,
            "n_head": 8,
            "n_kv_head": 2,
            "d_latent": 32,
            "d_rope": 4,
            "window": 8,
            "lengths": (4, 16, 33),
            "budget_mib": 1,
            "budget_layers": 4,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.ints(self, ("n_embd", "n_head", "n_kv_head", "d_latent", "window", "n_layer", "budget_mib"))
        checks.ints(self, ("budget_layers",))
        checks.ints(self, ("d_rope",), minimum=2)
        checks.multiple("n_embd", self.n_embd, self.n_head, "n_head")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_kv_head: expected a divisor of n_head={self.n_head}, got {self.n_kv_head}")
        checks.multiple("d_rope", self.d_rope, 2, "rotary pairs")
        if self.d_latent > self.n_embd:
            raise ValueError(f"d_latent: expected at most n_embd={self.n_embd}, got {self.d_latent}")
        checks.increasing("lengths", self.lengths, low=1)


__all__ = ["DEEPSEEK", "PAPER_REDUCTION", "VARIANTS", "Config"]
