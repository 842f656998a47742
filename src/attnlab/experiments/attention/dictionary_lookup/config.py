"""The config of ``dictionary-lookup``: the dictionary, the temperature grid, the learned lookup and the thresholds
that decide ``held`` (defaults: the full profile)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from attnlab.experiments import checks
from attnlab.experiments.base import ExperimentConfig
from attnlab.experiments.training import adam
from attnlab.train.loop import TrainConfig

# Adam at a constant learning rate, no clipping: the learned lookup's only parameter is W_a.
TRAIN = adam(1e-2, 800, eval_interval=20)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """The dictionary, the temperature grid, the learned lookup, and the thresholds that decide ``held``.

    ``held`` needs all of (per seed where there are seeds):

    - ``sharpens_to_hard``: the distance of the blend to the hard lookup's value falls as tau falls (monotone over
      the grid) and is at most ``hard_tolerance`` at the smallest tau;
    - ``low_tau_gradient_vanishes``: at the smallest tau the median Jacobian norm is at most ``vanish_ratio`` times
      its largest median over the grid, and most queries (> 50%) are dead;
    - ``high_tau_blurs``: at the largest tau the squared error is at least ``blur_fraction`` of that of the uniform
      blend (the mean of all values, what a lookup that knows nothing returns), and the decoded accuracy at most
      half the argmax accuracy;
    - ``high_tau_smooth``: at the largest tau no query is dead;
    - ``soft_lookup_learns``: trained at ``train_taus[0]``, accuracy at least ``learn_target`` and at least 0.5
      above its value before training, in every seed;
    - ``hard_lookup_has_no_gradient``: the hard lookup's loss is not connected to ``W_a`` (no gradient) while the
      soft lookup's gradient at the same point is non-zero, in every seed;
    - ``sharp_start_learns_less``: trained at the smallest of ``train_taus`` (same budget), accuracy at least
      ``train_margin`` below that at ``train_taus[0]``, in every seed.
    """

    n_keys: int = 64  # N stored items
    key_dim: int = 32  # d
    value_dim: int = 16  # dv
    noise: float = 0.25  # sigma, per component of the query noise; the Bayes temperature is sigma^2
    n_queries: int = 8000  # per seed
    taus: tuple[float, ...] = tuple(2.0**k for k in range(-10, 4))  # 1/1024 ... 8
    seeds: int = 5
    dead_threshold: float = 1e-6  # a Jacobian norm below this counts as no gradient
    cue_dim: int = 32  # dx
    cue_noise: float = 0.1  # sigma_x
    train_taus: tuple[float, ...] = (1.0, 0.01, 0.001)  # the first, the largest, is the reference run
    batch_size: int = 128
    train: TrainConfig = TRAIN
    n_eval: int = 2000
    hard_tolerance: float = 1e-2
    vanish_ratio: float = 1e-6
    blur_fraction: float = 0.9
    learn_target: float = 0.9
    train_margin: float = 0.3

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"n_queries": 2000, "seeds": 2, "train.max_iters": 400},
        "tiny": {
            "n_queries": 1000,
            "seeds": 1,
            "taus": (2.0**-10, 2.0**-8, 2.0**-6, 2.0**-4, 2.0**-2, 1.0, 4.0),
            "train_taus": (1.0, 0.001),
            "train.max_iters": 300,
            "n_eval": 1000,
        },
    }
    RENAMED: ClassVar[dict[str, str]] = {"eval_every": "train.eval_interval"}

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.ints(self, ("n_keys",), minimum=2)
        checks.ints(self, ("key_dim", "value_dim", "n_queries", "seeds", "cue_dim", "batch_size", "n_eval"))
        checks.increasing("taus", self.taus, minimum=3, low=1e-300, high=math.inf)
        if len(set(self.train_taus)) != len(self.train_taus) or self.train_taus[0] != max(self.train_taus):
            raise ValueError(
                f"train_taus: expected distinct temperatures, the largest first (the reference run), "
                f"got {self.train_taus!r}"
            )
        for tau in self.train_taus:
            if not 0 < tau < math.inf:
                raise ValueError(f"train_taus: expected positive finite temperatures, got {self.train_taus!r}")
        checks.positive(self, ("dead_threshold",))
        for name in ("noise", "cue_noise", "hard_tolerance", "vanish_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        checks.fractions(self, ("blur_fraction", "learn_target", "train_margin"))


__all__ = ["Config"]
