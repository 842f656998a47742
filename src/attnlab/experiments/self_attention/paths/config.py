"""The config of ``paths``: the sweeps of n, d and k for the FLOP counts, and the lengths of the path probes
(defaults: the full profile); and the table they are compared with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig

LAYERS = ("attention", "recurrent", "convolution")  # the rows whose complexity is measured
PATH_LAYERS = ("attention", "restricted", "recurrent", "convolution", "dilated")
PAPER = {  # Vaswani et al. 2017, Table 1
    "attention": {"complexity": "O(n^2 d)", "sequential": "O(1)", "path": "O(1)"},
    "recurrent": {"complexity": "O(n d^2)", "sequential": "O(n)", "path": "O(n)"},
    "convolution": {"complexity": "O(k n d^2)", "sequential": "O(1)", "path": "O(log_k n) dilated, O(n/k) contiguous"},
    "restricted": {"complexity": "O(r n d)", "sequential": "O(1)", "path": "O(n/r)"},
}
# The exponents of each complexity: Table 1's O(.) in n, d (and k).
PAPER_EXPONENTS = {
    "attention": {"n": 2.0, "d": 1.0},
    "recurrent": {"n": 1.0, "d": 2.0},
    "convolution": {"n": 1.0, "d": 2.0, "k": 1.0},
}


@dataclass(frozen=True)
class Config(ExperimentConfig):
    flop_lengths: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048)  # n, at d = flop_width
    flop_width: int = 64
    flop_widths: tuple[int, ...] = (16, 32, 64, 128, 256, 512)  # d, at n = flop_length
    flop_length: int = 256
    heads: int = 4
    kernel_size: int = 3  # k of every convolution (but the k sweep)
    kernel_sizes: tuple[int, ...] = (2, 3, 5, 9)  # k, at n = flop_length, d = flop_width
    window: int = 4  # r: restricted attention lets position i see keys i-r+1 .. i
    path_lengths: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 100, 128, 256, 512, 1024, 2048)
    path_width: int = 8
    # Restricted attention needs ~n/(r-1) dense layers of (n, n) weights to connect 1 and n: memory ~ n^3.
    restricted_max_length: int = 256
    tolerance: float = 0.05  # |measured exponent - Table 1's| allowed

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {
            "flop_lengths": (16, 32, 64, 128, 256, 512, 1024),
            "flop_widths": (16, 32, 64, 128, 256),
            "path_lengths": (2, 4, 8, 16, 32, 64, 100, 128, 256, 512),
            "restricted_max_length": 128,
        },
        "tiny": {
            "flop_lengths": (8, 16, 32, 64),
            "flop_width": 16,
            "flop_widths": (8, 16, 32),
            "flop_length": 32,
            "heads": 2,
            "kernel_sizes": (2, 3, 5),
            "path_lengths": (2, 3, 8, 17, 100),
            "path_width": 4,
            "restricted_max_length": 32,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("flop_lengths", "flop_widths", "kernel_sizes"):
            checks.increasing(name, getattr(self, name), low=1)
        checks.increasing("path_lengths", self.path_lengths, low=2)  # a path from 1 to n needs n >= 2
        if self.kernel_sizes[0] < 2:
            raise ValueError(f"kernel_sizes: expected kernel sizes >= 2, got {self.kernel_sizes!r}")
        checks.ints(self, ("flop_width", "flop_length", "heads", "path_width", "restricted_max_length"))
        checks.ints(self, ("kernel_size", "window"), minimum=2)  # a reach of at least one position
        bad = [d for d in (self.flop_width, *self.flop_widths) if d % self.heads]
        if bad:
            raise ValueError(f"flop_widths: expected multiples of heads={self.heads}, got {bad}")
        checks.fractions(self, ("tolerance",), below_one=True)


__all__ = ["LAYERS", "PAPER", "PAPER_EXPONENTS", "PATH_LAYERS", "Config"]
