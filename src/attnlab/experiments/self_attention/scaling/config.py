"""The config of ``scaling``: head sizes, keys per query, sample sizes, the temperature sweep and the tolerances that
decide ``held`` (defaults: the full profile)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Head sizes, keys per query and sample sizes; the tolerances that decide ``held``.

    ``held`` needs all of: the slope of log var(q.k) on log d_k within ``slope_tolerance`` of 1 and every
    var/d_k within ``variance_tolerance`` of 1; the scaled entropy and median Jacobian norm within
    ``flat_tolerance`` (relative) of their values at the smallest d_k; the unscaled entropy and median Jacobian
    norm at the largest d_k at least ``collapse_factor`` times smaller than at the smallest; entropy rising and
    the largest weight falling with tau in the sweep.
    """

    d_ks: tuple[int, ...] = (4, 16, 64, 256, 1024)
    n_keys: int = 64  # S
    n_queries: int = 1024  # per d_k and seed
    seeds: int = 3
    taus: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0, 16.0)
    tau_d_k: int = 64  # the head size of the temperature sweep
    slope_tolerance: float = 0.1
    variance_tolerance: float = 0.2
    flat_tolerance: float = 0.15
    collapse_factor: float = 10.0

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"n_queries": 512, "seeds": 2},
        "tiny": {"d_ks": (4, 64, 1024), "n_queries": 256, "seeds": 1, "taus": (1 / 16, 1 / 4, 1.0, 4.0, 16.0)},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.ints(self, ("n_keys",), minimum=2)
        checks.ints(self, ("n_queries", "seeds", "tau_d_k"))
        checks.increasing("d_ks", self.d_ks, low=1)
        checks.increasing("taus", self.taus, low=1e-300, high=math.inf)
        checks.fractions(self, ("slope_tolerance", "variance_tolerance", "flat_tolerance"), below_one=True)
        if not isinstance(self.collapse_factor, (int, float)) or not 1 < self.collapse_factor < math.inf:
            raise ValueError(f"collapse_factor: expected a finite number > 1, got {self.collapse_factor!r}")


__all__ = ["Config"]
