"""Shared by the experiments' tests: run a registered experiment's tiny profile, with its words, as the report
would (:func:`attnlab.experiments.run_experiment`), and check that a result survives JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from attnlab.experiments import get, run_experiment


def run_tiny(name: str, **overrides: Any) -> dict[str, Any]:
    """The full result of experiment ``name`` at its tiny profile (with ``overrides``), round-tripped through JSON as
    it is saved: NaN or a non-JSON value fails here."""
    spec = get(name)
    result = run_experiment(spec, spec.config_cls.for_profile("tiny", **overrides))
    return json.loads(json.dumps(result, allow_nan=False))


@pytest.fixture(scope="module")
def tiny(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The tiny result of the experiment the test module names in ``EXPERIMENT``, once per module (a module that
    needs overrides defines its own ``tiny`` with :func:`tiny_runner`)."""
    return run_tiny(request.module.EXPERIMENT)


@pytest.fixture(scope="session")
def tiny_runner():
    """:func:`run_tiny`, for modules that run a tiny profile with overrides."""
    return run_tiny
