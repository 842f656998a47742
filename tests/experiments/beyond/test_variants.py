"""variants: widths solved for equal parameters, caches that follow the kv heads exactly, every variant learning on
the tiny budget, the verdict as the rule applied to the numbers (3 seeds) or not judged (1 seed); JSON, plots and
config errors. (The bf16 autocast step of every variant is in tests/experiments/test_experiments_autocast.py.)

Sweep (tiny profile at seed 0-19, i.e. seeds s, s+1, s+2 per run, x 1, 2 threads: 40 runs of 6 variants x 3 seeds):
every run held on the mechanism (parameters within 15%, GQA's cache exactly half of MHA's); validation losses ranged
3.483-3.727 nats (the largest: GQA, seed 0, one thread) against log 64 = 4.159 for a uniform guess; asserted: below
4.0, a margin of 0.27 over the largest. The quality verdict held in 36 of the 40 runs (GQA "close" and modern "not
worse" failed in 2 each): 16 iterations of a one-layer model say nothing about the claim, so the verdict is checked
against the numbers, not asserted.
"""

import json
import math
import statistics

import pytest
from matplotlib.figure import Figure

from attnlab.experiments.beyond.variants import SPEC, Config
from attnlab.experiments.beyond.variants.measure import QUALITY, count_params, model_config, noise, solve_width

EXPERIMENT = "variants"


def test_widths_give_equal_parameters_and_caches_follow_the_kv_heads(tiny):
    m, d = tiny["metrics"], tiny["data"]
    V = m["vocab_size"]
    cfg = Config.for_profile("tiny")
    for v in cfg.variants:
        assert d["params"][v] == count_params(model_config(cfg, v, d["widths"][v], V))  # the models trained
        assert abs(m[f"params_vs_gpt2/{v}"]) <= 0.15
    # width 32, 4 heads of 8, context 16: kv heads 2 (GQA), 1 (MQA); MLA's latent 16 + 4; the window's 8 + 1 slots
    assert d["widths"] == {v: 32 for v in cfg.variants}
    expected = {"gqa": 0.5, "mqa": 0.25, "mla": (16 + 4) / (2 * 32), "window": (8 + 1) / 16, "modern": 1.0}
    assert {v: m[f"cache_vs_gpt2/{v}"] for v in expected} == expected
    assert m["cache_bytes_per_layer/gpt2"] == 2 * 32 * 16 * 4
    assert d["verdict"]["params_within_tolerance"] is True and d["verdict"]["gqa_cache_fraction"] is True


def test_every_variant_learned_on_the_tiny_budget(tiny):
    val = tiny["data"]["val_loss"]
    assert math.log(tiny["metrics"]["vocab_size"]) == pytest.approx(4.159, abs=1e-3)
    assert all(x < 4.0 for v in val.values() for x in v)
    assert all(len(v) == 3 for v in val.values()) and tiny["data"]["seeds"] == [0, 1, 2]


def test_quality_verdict_is_the_rule_applied_to_the_numbers(tiny):
    val, verdict, m = tiny["data"]["val_loss"], tiny["data"]["verdict"], tiny["metrics"]
    for variant, name in QUALITY.items():
        if variant in val:
            a, b = val["gpt2"], val[variant]
            assert verdict[name] is (statistics.mean(b) - statistics.mean(a) <= noise(a, b))
            assert m[f"seeds_better_than_gpt2/{variant}"] == sum(y < x for x, y in zip(a, b, strict=True))
    assert tiny["held"] is all(verdict.values())
    assert ("Not every part held" in tiny["summary"]) is (tiny["held"] is False)


def test_one_seed_is_not_judged(tiny_runner):
    r = tiny_runner(EXPERIMENT, seeds=1, variants=("gpt2", "gqa", "modern"))
    v = r["data"]["verdict"]
    assert v["gqa_close_to_gpt2"] is None and v["modern_not_worse"] is None and r["held"] is None
    assert v["params_within_tolerance"] is True and v["gqa_cache_fraction"] is True
    assert "Quality was not judged: 1 seed(s)" in r["summary"] and "could not be judged here as a whole" in r["summary"]


def test_solve_width_takes_the_closest_count():
    """The full profile's widths (development: gqa 132, -2.4%; mqa 136, -1.1%); the neighbours are farther."""
    cfg = Config.for_profile("full")
    target = count_params(model_config(cfg, "gpt2", 128, 82))
    for variant, width in (("gqa", 132), ("mqa", 136), ("mla", 128), ("modern", 128), ("window", 128)):
        got, n = solve_width(cfg, variant, 82)
        step = 8 if variant in ("mla", "modern") else 4  # rotary positions: an even head size
        near = [count_params(model_config(cfg, variant, w, 82)) for w in (got - step, got + step)]
        assert got == width and all(abs(x - target) > abs(n - target) for x in near)
        assert abs(n / target - 1) <= cfg.param_tolerance


def test_noise_is_the_larger_seed_range():
    assert noise([1.0, 2.0, 3.0], [2.0, 2.5]) == 2.0
    assert noise([1.5], [1.7]) == 0.0


def test_words_and_figures_from_the_saved_result(tiny):
    gqa = dict(tiny["headline"])["GQA - GPT-2, mean validation loss"]
    assert gqa.startswith(f"{tiny['metrics']['diff_vs_gpt2/gqa']:+.4f} (noise ") and gqa.endswith("of 3 seeds)")
    assert "KV cache per layer at the full context, against GPT-2's 4,096 bytes: GQA 50.0%" in tiny["summary"]
    figs = SPEC.plot(json.loads(json.dumps(tiny, allow_nan=False)))  # JSON without NaN, as saved
    assert sorted(figs) == ["cache_speed", "loss"] and all(isinstance(f, Figure) for f in figs.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("variants", ("gqa", "mqa")),  # no baseline
        ("variants", ("gpt2", "rwkv")),
        ("seeds", 0),
        ("n_kv_head", 3),
        ("d_rope", 5),
        ("window", 0),
        ("param_tolerance", 1.5),
        ("decode_min_run_time", 0.0),
        ("train.warmup_iters", 2000),
    ],
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        Config.for_profile("full", **{field: value})
