"""bench gpt: structure only (never speed): registered, rows with positive times, the markdown table; nanoGPT's
model computes the same function as ours from the same weights, so the comparison is like for like."""

import json

import pytest
import torch

from attnlab import bench
from attnlab.bench.gpt import RECIPES, VOCAB, GPTConfig, make_pair, run, to_markdown


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
    assert quick["config"]["generation_block_size"] == 512 and quick["config"]["prompt_tokens"] == 8
    assert quick["cache_speedup"] > 0 and quick["cached_tokens_equal_uncached"] is True
    assert quick["device"] == "cpu"
    json.dumps(quick, allow_nan=False)


def test_markdown_has_the_header_and_one_line_per_row(quick):
    md = to_markdown(quick)
    assert "| case | tokens | attnlab (ms) | nanoGPT (ms) | attnlab tok/s | nanoGPT tok/s | ratio | note |" in md
    assert md.count("\n| ") == 1 + len(quick["rows"])  # the header line and the rows
    assert "KV cache speed-up" in md and "(same tokens)" in md


@pytest.mark.parametrize("kind", ["cpu", "cuda"])
def test_nanogpt_computes_the_same_function(kind):
    """Both recipes' shapes (shrunk in depth), with and without biases: logits, loss and every gradient equal."""
    model_cfg = {**RECIPES[kind][0], "n_layer": 2}
    for bias in (False, True):
        ours, ref = make_pair(GPTConfig(vocab_size=VOCAB, bias=bias, **model_cfg))
        x, y = torch.randint(VOCAB, (2, 40)), torch.randint(VOCAB, (2, 40))
        a, b = ours(x, y), ref(x, y)
        torch.testing.assert_close(a.logits, b.logits)
        torch.testing.assert_close(a.loss, b.loss)
        a.loss.backward(), b.loss.backward()
        torch.testing.assert_close(ours.wte.weight.grad, ref.wte.weight.grad)
        torch.testing.assert_close(ours.blocks[0].self_attn.in_proj_weight.grad, ref.h[0].c_attn.weight.grad)
        ours.eval(), ref.eval()
        prompt = x[:1, :3]
        want = ref.generate(prompt, 12, temperature=0.0)
        assert torch.equal(ours.generate(prompt, 12, temperature=0.0, use_cache=True), want)
        assert torch.equal(ours.generate(prompt, 12, temperature=0.0, use_cache=False), want)


def test_gemm_refuses_another_device():
    with pytest.raises(ValueError, match=r"^device: 'cuda:9' is not available|^--device: gemm"):
        bench.run("gemm", quick=True, device="cuda:9")
