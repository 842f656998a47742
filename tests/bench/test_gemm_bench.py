"""bench gemm: structure only (never speed), and every timed pair computes the same product."""

import json

import pytest
import torch

from attnlab import bench
from attnlab.bench.gemm import _cases, run, to_markdown


def test_registered_and_run_by_default():
    assert "gemm" in bench.names() and "gemm" in bench.default_names()


def test_each_pair_computes_the_same_product():
    for what, _, ours, theirs in _cases():
        torch.testing.assert_close(ours(), theirs(), rtol=1e-4, atol=1e-3, msg=lambda m, what=what: f"{what}: {m}")


@pytest.mark.usefixtures("one_thread")
def test_quick_run_rows_and_table():
    result = run(quick=True)
    assert len(result["rows"]) == 5 and result["onednn"] is True
    for r in result["rows"]:
        assert r["ours_ms"] > 0 and r["torch_ms"] > 0 and r["ratio"] > 0
    table = to_markdown(result)
    assert "| forward step: xw + h W_hh^T | (32, 256) @ (256, 1024) |" in table
    json.dumps(result, allow_nan=False)
