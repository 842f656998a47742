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
