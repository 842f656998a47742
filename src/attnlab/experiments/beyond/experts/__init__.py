"""Experiment ``experts`` (claim C17). Design: to be written."""

from attnlab.experiments.base import assemble
from attnlab.experiments.beyond.experts.config import Config
from attnlab.experiments.beyond.experts.measure import run

SPEC = assemble("experts", __name__)

__all__ = ["SPEC", "Config", "run"]
