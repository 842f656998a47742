"""kv-cache: the bytes of every real decoding cache equal the papers' formulas exactly (a mechanism: deterministic,
no margin); DeepSeek's 93.3% from the measured layers; the budget arithmetic; JSON, plots and config errors."""

import json

import pytest
import torch
from matplotlib.figure import Figure

from attnlab.experiments.beyond.kv_cache import SPEC, Config
from attnlab.experiments.beyond.kv_cache.measure import formula, layer_cache_elements, model_config
from attnlab.nn import KVCache, MultiHeadAttention
from attnlab.nn.mla import LatentCache, MultiHeadLatentAttention

EXPERIMENT = "kv-cache"


def test_every_cache_equals_its_formula_at_every_length_and_layer(tiny):
    # tiny: C = 64, 8 heads of 8, GQA 2 kv heads, MLA d_c = 32, d_h^R = 4, window 8, float32 (4 bytes)
    v, m = tiny["data"]["variants"], tiny["metrics"]
    known = {"mha": 2 * 8 * 8, "gqa": 2 * 2 * 8, "mqa": 2 * 8, "mla": 32 + 4}
    for name, elements in known.items():
        assert m[f"elements/{name}"] == m[f"formula/{name}"] == elements
        assert v[name]["bytes"] == [[elements * S * 4] * 2 for S in (4, 16, 33)]  # [length][layer]
    assert v["window"]["bytes"] == [[2 * 8 * 8 * (8 + 1) * 4] * 2] * 3  # the same w + 1 positions at every length
    assert all(tiny["data"]["verdict"][f"formula_exact/{k}"] for k in v)
    assert m["fraction_of_mha/gqa"] == 0.25 and m["fraction_of_mha/mqa"] == 0.125


def test_longest_context_within_the_budget(tiny):
    m = tiny["metrics"]  # 1 MiB for 4 layers of 4-byte elements
    for name in ("mha", "gqa", "mqa", "mla"):
        assert m[f"longest_context/{name}"] == 2**20 // (4 * m[f"elements/{name}"] * 4)
    assert m["longest_context/mha"] == 512
    assert m["longest_context/window"] is None and m["reach/window"] == 8 * 4  # fits at any length; reaches w L


def test_deepseek_reduction_from_both_configurations(tiny):
    m = tiny["metrics"]
    assert m["deepseek/67b_elements_per_layer"] == 2 * 8 * 128 and m["deepseek/v2_elements_per_layer"] == 512 + 64
    assert m["deepseek/67b_bytes_per_token"] == 2048 * 95 * 2 == 389_120
    assert m["deepseek/v2_bytes_per_token"] == 576 * 60 * 6 / 8 == 25_920
    assert round(m["deepseek/reduction"], 3) == 0.933 and tiny["data"]["verdict"]["deepseek_reduction_93.3"]
    assert m["deepseek/reduction_same_precision"] == pytest.approx(1 - 576 * 60 / (2048 * 95), abs=1e-6)
    assert m["deepseek/reduction_vs_mha_same_dims"] == pytest.approx(1 - 576 / 32768, abs=1e-6)


def test_a_cache_holding_repeated_kv_heads_would_fail_the_formula():
    """The check can fail: a multi-head layer's cache is n_h / n_kv times GQA's formula, and MLA's up-projected keys
    and values (2 n_h d_h) are not its latent (d_c + d_h^R)."""
    torch.manual_seed(0)
    assert layer_cache_elements(MultiHeadAttention(64, 8, bias=False), KVCache(8), 0, "cpu") == 128
    assert layer_cache_elements(MultiHeadAttention(64, 8, num_kv_heads=2), KVCache(8), 0, "cpu") == 32
    assert layer_cache_elements(MultiHeadLatentAttention(64, 8, 16, 4), LatentCache(8), 0, "cpu") == 20
    cfg = Config.for_profile("tiny")
    assert formula(cfg, "gqa")["per_token"] == 32 != 128
    assert model_config(cfg, "gqa", 16).n_kv_head == 2 and model_config(cfg, "window", 16).window == 8


def test_held_words_and_figures_follow_the_result(tiny):
    assert tiny["held"] is all(tiny["data"]["verdict"].values()) is True
    assert "Every cache equalled its formula exactly" in tiny["summary"]
    assert "93.3% less (the paper: 93.3%)" in tiny["summary"]
    rows = dict(tiny["headline"])
    assert rows["elements per token per layer: MHA / GQA / MQA / MLA"].startswith("128 / 32 / 16 / 36")
    figs = SPEC.plot(json.loads(json.dumps(tiny, allow_nan=False)))  # JSON without NaN, as saved
    assert sorted(figs) == ["cache", "deepseek"] and all(isinstance(f, Figure) for f in figs.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_kv_head", 3),  # does not divide n_head = 16
        ("n_embd", 1000),  # not a multiple of n_head
        ("d_latent", 2048),  # wider than the model
        ("d_rope", 3),
        ("window", 0),
        ("lengths", (64, 32)),
        ("budget_mib", 0),
    ],
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        Config.for_profile("full", **{field: value})
