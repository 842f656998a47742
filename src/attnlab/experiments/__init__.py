"""The lab: one experiment per claim of the chapter, one folder per section.

==================  ===========================================  =============================================
folder              section of the chapter                       experiments (contract names)
==================  ===========================================  =============================================
``recurrence``      3.1 recurrent networks and their limits      vanishing-gradients, long-range, bottleneck
``attention``       3.2 the attention mechanism                  alignment, gradient-paths, dictionary-lookup
``self_attention``  3.3 scaled dot-product and multi-head        scaling, heads, complexity, parallelism, paths
``transformer``     the capstone: blocks that compose            depth, pronoun
``beyond``          what comes after attention                   kv-cache, variants, receptive-field,
                                                                 decode-cost, recall, experts
==================  ===========================================  =============================================

Each section's ``__init__`` says which library modules implement it, which experiments measure its claims and
which exercises practise it. ``_MODULES`` order is the report's order; the names are part of the public contract
(``attnlab exp NAME``, the report's section ids, ``results.json``).

How to add an experiment
------------------------
1. Make a package ``<section>/<name>/`` (``name`` the contract name with ``_`` for ``-``) with five modules:

   - ``__init__.py``: the design, argued before running: what is measured, why that design tests the claim
     (the paper whose setup it follows), and what counts as held and as not held; then
     ``SPEC = assemble("contract-name", __name__)``.
   - ``config.py``: ``Config``, a frozen dataclass deriving from :class:`~attnlab.experiments.base.
     ExperimentConfig`, validated with :mod:`attnlab.experiments.checks`, with ``PROFILES`` ``quick``, ``full``
     and ``tiny`` (dotted keys for nested configs), and ``GPU_PROFILES`` where a GPU needs other sizes. A config
     that trains holds a :class:`~attnlab.train.loop.TrainConfig` as ``train`` and trains through
     :func:`attnlab.experiments.training.train`.
   - ``measure.py``: ``run(cfg) -> {"held", "metrics", "data", "device"}``, numbers and series only (at most ~250
     lines). Models it trains live in :mod:`attnlab.models` with their tests; measuring tools shared with other
     experiments live once in :mod:`~attnlab.experiments.fits`, :mod:`~attnlab.experiments.sequential`,
     :mod:`~attnlab.experiments.training` or :mod:`~attnlab.experiments.seq2seq`. ``SHARES_CORES = True`` when
     nothing it measures depends on time or on the cores it gets (it trains on one thread, or counts): the
     report may then run it beside another experiment (``attnlab report --jobs``); one that times itself or
     needs every core leaves it out and runs alone.
   - ``figures.py``: ``plot(result) -> {name: Figure}``, from the saved result only, with
     :mod:`attnlab.experiments.figures`; the report shows ``MAIN_FIGURE`` first.
   - ``words.py``: ``TITLE``, ``CLAIM``, ``SOURCE``, ``MAIN_FIGURE`` and ``WORDS``: the setup, the summary and
     the 3-6 headline numbers, filled from the result (:mod:`attnlab.experiments.words` for the verdict).

2. Add ``"contract-name": "<section>.<name>"`` to ``_MODULES`` below, where the report should show it.
3. Tests in ``tests/experiments/<section>/test_<name>.py``: the tiny profile asserts only what held over a sweep
   of at least 20 seeds x {1, 2} threads, with the margin and the measured spread in the test's docstring; one
   training step of its models under ``torch.autocast("cpu", dtype=torch.bfloat16)``
   (``tests/experiments/test_autocast.py``).
"""

from __future__ import annotations

import importlib

from attnlab.experiments.base import ExperimentConfig, ExperimentSpec, execute, run_experiment

# contract name -> package under attnlab.experiments; the order is the report's.
_MODULES = {
    "vanishing-gradients": "recurrence.vanishing_gradients",
    "long-range": "recurrence.long_range",
    "bottleneck": "recurrence.bottleneck",
    "alignment": "attention.alignment",
    "gradient-paths": "attention.gradient_paths",
    "dictionary-lookup": "attention.dictionary_lookup",
    "scaling": "self_attention.scaling",
    "heads": "self_attention.heads",
    "complexity": "self_attention.complexity",
    "parallelism": "self_attention.parallelism",
    "paths": "self_attention.paths",
    "depth": "transformer.depth",
    "pronoun": "transformer.pronoun",
    "kv-cache": "beyond.kv_cache",
    "variants": "beyond.variants",
    "receptive-field": "beyond.receptive_field",
    "decode-cost": "beyond.decode_cost",
    "recall": "beyond.associative_recall",
    "experts": "beyond.experts",
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


__all__ = ["ExperimentConfig", "ExperimentSpec", "execute", "get", "names", "run_experiment"]
