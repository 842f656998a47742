"""Every registered experiment: its contract name resolves to its module's SPEC, which carries that name and the
module's Config (one check for all, instead of a copy in each experiment's test file)."""

import importlib

import pytest

from attnlab.experiments import _MODULES, get, names


@pytest.mark.parametrize("name", names())
def test_registered_under_its_contract_name(name):
    module = importlib.import_module(f"attnlab.experiments.{_MODULES[name]}")
    spec = get(name)
    assert spec is module.SPEC and spec.name == name and spec.config_cls is module.Config


def test_sections_name_the_exercises_that_exist_each_once():
    """Each lab section's docstring names its exercises (the learner's map from a section to its practice): every
    name is in the catalogue, and the sections together name the whole catalogue once."""
    import importlib
    import re

    from attnlab import exercises

    named: list[str] = []
    for section in ("recurrence", "attention", "self_attention", "transformer"):
        doc = importlib.import_module(f"attnlab.experiments.{section}").__doc__
        listed = doc.split("Exercises (:mod:`attnlab.exercises`):", 1)[1].split("\n\n", 1)[0]
        named += re.findall(r"``(\w+)``", listed)
    assert sorted(named) == sorted(exercises.names())
