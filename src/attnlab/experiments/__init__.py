"""The experiments, one per claim of the chapter. ``REGISTRY`` maps each contract name to its spec.

Names are part of the public contract (``attnlab exp NAME``, the report's section ids, ``results.json``).
"""

from __future__ import annotations

import importlib

from attnlab.experiments.base import ExperimentConfig, ExperimentSpec, execute

# contract name -> module under attnlab.experiments; order is the order of the report.
_MODULES = {
    # 3.1 recurrence and its limits
    "vanishing-gradients": "vanishing_gradients",
    "long-range": "long_range",
    "bottleneck": "bottleneck",
    # 3.2 attention
    "alignment": "alignment",
    "gradient-paths": "gradient_paths",
    "dictionary-lookup": "dictionary_lookup",
    # 3.3 scaled dot-product and multi-head attention
    "scaling": "scaling",
    "heads": "heads",
    "complexity": "complexity",
    "parallelism": "parallelism",
    "paths": "paths",
    # the transformer and beyond
    "depth": "depth",
    "pronoun": "pronoun",
}


def names() -> list[str]:
    """The registered experiments, in report order."""
    return list(_MODULES)


def get(name: str) -> ExperimentSpec:
    """The spec of one experiment; a clear ValueError for an unknown name."""
    if name not in _MODULES:
        raise ValueError(f"experiment: expected one of {', '.join(_MODULES)}; got {name!r}")
    module = importlib.import_module(f"attnlab.experiments.{_MODULES[name]}")
    return module.SPEC


__all__ = ["ExperimentConfig", "ExperimentSpec", "execute", "get", "names"]
