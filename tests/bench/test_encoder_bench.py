"""bench encoder: structure only (never speed): registered, rows with positive times and throughputs, the markdown
table; both sides compute the same function on the inputs they are timed on."""

import json

import pytest
import torch

from attnlab import bench
from attnlab.bench.encoder import make_inputs, run, to_markdown


@pytest.fixture(scope="module")
def quick():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small inputs on a shared machine: one thread, restored after
    try:
        return run(quick=True)
    finally:
        torch.set_num_threads(threads)


def test_registered_and_run_by_default():
    assert "encoder" in bench.names() and "encoder" in bench.default_names()


def test_quick_run_rows(quick):
    rows = quick["rows"]
    assert [r["case"] for r in rows] == ["full", "padded"]
    for r in rows:
        assert r["ours_ms"] > 0 and r["torch_ms"] > 0 and r["ratio"] > 0
        assert r["ours_sentences_per_s"] == pytest.approx(r["batch"] / (r["ours_ms"] / 1e3), rel=1e-2)
        assert r["throughput_ratio"] == pytest.approx(1 / r["ratio"], rel=1e-2)
        assert r["max_abs_diff"] < 1e-4  # the same function: the comparison is like for like
    assert rows[0]["real_tokens"] == 4 * 32 and 4 * 16 < rows[1]["real_tokens"] < 4 * 32
    assert quick["config"]["batch_size"] == 4 and quick["reference"].startswith("transformers.BertModel")
    json.dumps(quick, allow_nan=False)


def test_markdown_has_the_header_and_one_line_per_row(quick):
    md = to_markdown(quick)
    assert "| case | real tokens | attnlab (ms) | BertModel (ms) | attnlab sent/s | BertModel sent/s | ratio |" in md
    assert md.count("\n| ") == 1 + len(quick["rows"])


def test_inputs_are_bert_shaped():
    ids, mask = make_inputs(32, 128, padded=True)
    lengths = mask.sum(1)
    assert ids.shape == mask.shape == (32, 128)
    assert lengths.min() == 64 and lengths.max() == 128 and bool((lengths[1:] >= lengths[:-1]).all())
    assert bool((ids[:, 0] == 101).all()) and bool((ids[torch.arange(32), lengths - 1] == 102).all())
    assert bool((ids[mask == 0] == 0).all())  # padding carries the pad id
    full_ids, full_mask = make_inputs(32, 128, padded=False)
    assert bool(full_mask.all()) and bool((full_ids[:, -1] == 102).all())
