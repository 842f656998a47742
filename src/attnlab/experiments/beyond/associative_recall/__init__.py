"""Experiment ``recall`` (claim C16). Design: to be written."""

from attnlab.experiments.base import assemble
from attnlab.experiments.beyond.associative_recall.config import Config
from attnlab.experiments.beyond.associative_recall.measure import run

SPEC = assemble("recall", __name__)

__all__ = ["SPEC", "Config", "run"]
