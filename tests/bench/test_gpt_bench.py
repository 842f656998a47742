"""bench gpt: structure only (never speed): registered, rows with positive times, the markdown table; the torch
twin computes the same function as ours, so the comparison is like for like."""

import json

import pytest
import torch

from attnlab import bench
from attnlab.bench.gpt import TRAIN, GPTConfig, make_pair, run, to_markdown


@pytest.fixture(scope="module")
def quick():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small model on a shared machine: one thread, restored after
    try:
        return run(quick=True)
    finally:
        torch.set_num_threads(threads)


def test_registered_and_run_by_default():
    assert "gpt" in bench.names() and "gpt" in bench.default_names()


def test_quick_run_rows_have_positive_times(quick):
    rows = quick["rows"]
    assert [r["case"] for r in rows] == [
        "training step (forward, backward, AdamW)",
        "generation, no KV cache",
        "generation, ours with KV cache",
    ]
    for r in rows:
        assert r["ours_ms"] > 0 and r["torch_ms"] > 0 and r["ratio"] > 0
        assert r["ours_tokens_per_s"] == pytest.approx(r["tokens"] / (r["ours_ms"] / 1e3), rel=1e-2)
    assert rows[0]["tokens"] == 12 * 64 and rows[1]["tokens"] == quick["config"]["new_tokens"] == 50
    assert quick["config"]["generation_block_size"] == 512 and quick["cache_speedup"] > 0
    json.dumps(quick, allow_nan=False)


def test_markdown_has_the_header_and_one_line_per_row(quick):
    md = to_markdown(quick)
    assert "| case | tokens | attnlab (ms) | torch.nn (ms) | attnlab tok/s | torch.nn tok/s | ratio | note |" in md
    assert md.count("\n| ") == 1 + len(quick["rows"])  # the header line and the rows
    assert "KV cache speed-up" in md


@pytest.mark.parametrize("block_size", [64, 512])
def test_twin_computes_the_same_function(block_size):
    ours, theirs = make_pair(GPTConfig(**{**TRAIN, "block_size": block_size}))
    x, y = torch.randint(65, (2, 40)), torch.randint(65, (2, 40))
    a, b = ours(x, y), theirs(x, y)  # training mode: both on their general paths
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.loss, b.loss)
    ours.eval(), theirs.eval()
    prompt = x[:1, :3]
    want = theirs.generate(prompt, 12, temperature=0.0)
    assert torch.equal(ours.generate(prompt, 12, temperature=0.0, use_cache=True), want)
    assert torch.equal(ours.generate(prompt, 12, temperature=0.0, use_cache=False), want)
