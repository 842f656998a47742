"""depth: parameters exactly linear in depth (the formula, the real models, the exact fit); the tiny profile's
loss against size; held computed from the measurements; JSON, plot and config errors."""

import itertools
import json
import math
from fractions import Fraction

import matplotlib
import pytest

from attnlab.experiments.fits import exact_line
from attnlab.experiments.transformer.depth import SPEC, Config
from attnlab.experiments.transformer.depth.measure import block_params, fixed_params, model_config
from attnlab.models.gpt import GPT
from attnlab.nn import TransformerEncoderLayer

matplotlib.use("Agg")
EXPERIMENT = "depth"


@pytest.mark.parametrize("C", [8, 32, 48, 128])
def test_block_formula_counts_a_real_block(C):
    block = TransformerEncoderLayer(C, 4, 4 * C, 0.0, "gelu", norm_first=True)
    assert sum(p.numel() for p in block.parameters()) == block_params(C) == 12 * C * C + 13 * C


@pytest.mark.parametrize("profile", ["tiny", "quick", "full"])
def test_real_models_lie_on_the_line(profile):
    cfg = Config.for_profile(profile)
    V = 65
    counts = [sum(p.numel() for p in GPT(model_config(cfg, d, V)).parameters()) for d in cfg.depths]
    slope, intercept, residuals = exact_line(list(cfg.depths), counts)
    assert residuals == [0] * len(counts)
    assert slope == block_params(cfg.n_embd) and intercept == fixed_params(V, cfg.block_size, cfg.n_embd)


def test_exact_line_known_answers():
    assert exact_line([1, 2, 3], [5, 7, 9]) == (2, 3, [0, 0, 0])
    slope, _intercept, residuals = exact_line([1, 2, 4], [1, 2, 5])  # not on a line
    assert any(r != 0 for r in residuals) and sum(residuals) == 0
    assert isinstance(slope, Fraction) and slope == Fraction(19, 14)


def test_tiny_params_exactly_linear(tiny):
    m, data = tiny["metrics"], tiny["data"]
    C, V = 32, m["vocab_size"]
    assert m["params_per_block"] == block_params(C) == 12_704
    assert m["params_fixed"] == fixed_params(V, 32, C) == V * C + 32 * C + 2 * C
    assert m["max_abs_residual"] == 0 and data["verdict"]["params_linear_in_depth"] is True
    assert data["params"] == [m["params_fixed"] + d * m["params_per_block"] for d in data["depths"]]


def test_tiny_every_depth_learns(tiny):
    """What the tiny budget shows robustly: every model learned well beyond the uniform guess (log V). Swept over
    seeds 0-19 at 1 thread and 0-1 at 2 (the experiment runs on one thread): the worst validation loss was
    0.67-0.75 of log V (bound 0.9). Whether depth lowers the loss is *not* robust at this budget, so it is not
    asserted here (the quick and full profiles measure it): the deepest model's loss was below the single
    block's by -0.10 to +0.35 (6 of 22 runs not by 0.03, the bound this test used to assert after 5 seeds), the
    log-log slope -0.086 to +0.025, monotone in 10 of 22; with depths (1, 4) and twice the steps, 1 of 20 seeds
    still had the deeper model worse. The verdict is checked against these numbers in the next test."""
    data, m = tiny["data"], tiny["metrics"]
    assert all(v < 0.9 * math.log(m["vocab_size"]) for v in data["val_loss"])
    assert all(len(h) == 2 and h[-1]["iter"] == 150 for h in data["history"])


def test_held_is_the_verdict_of_the_measurements(tiny):
    v = tiny["data"]["verdict"]
    val = tiny["data"]["val_loss"]
    assert v["loss_decreases_with_params"] is all(b < a for a, b in itertools.pairwise(val))
    assert tiny["held"] is all(v.values())
    assert ("did not hold" in tiny["summary"]) is (tiny["held"] is False)


def test_result_is_json_and_plots(tiny):
    assert {"held", "metrics", "setup", "summary", "data", "headline", "device"} <= set(tiny)
    json.dumps(tiny, allow_nan=False)
    figs = SPEC.plot(json.loads(json.dumps(tiny)))
    assert set(figs) == {"params", "loss"}
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("depths", (4,)),
        ("depths", (2, 1)),
        ("depths", (0, 2)),
        ("n_embd", 30),  # not a multiple of n_head=4
        ("n_head", 0),
        ("train.max_iters", 0),
        ("train.warmup_iters", 2000),
        ("train.eval_interval", 0),
        ("train.lr", 0.0),
        ("train.min_lr", 1.0),
        ("text_chars", -1),
    ],
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field.split(".")[-1]):
        Config.for_profile("full", **{field: value})
