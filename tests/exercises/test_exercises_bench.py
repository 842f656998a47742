"""bench exercises: structure only (never speed): it checks the reference solution through the command line."""

import json

from attnlab import bench
from attnlab.bench.exercises import run, to_markdown


def test_registered_and_run_by_default():
    assert "exercises" in bench.names() and "exercises" in bench.default_names()


def test_one_exercise_through_the_command_line():
    result = run(names=["causal_mask"])
    (row,) = result["rows"]
    assert row["exercise"] == "causal_mask" and row["passed"] is True and row["checks"] == 5 and row["seconds"] > 0
    table = to_markdown(result)
    assert "| causal_mask | 5 | yes |" in table
    json.dumps(result, allow_nan=False)
