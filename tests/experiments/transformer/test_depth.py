"""depth: parameters exactly linear in depth (the formula, the real models, the exact fit); the tiny profile's
loss against size; held computed from the measurements; JSON, plot and config errors."""

import itertools
import json
from fractions import Fraction

import matplotlib
import pytest
import torch

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


def test_tiny_loss_falls_with_size(tiny):
    # Robust on the tiny budget (checked on seeds 0-4 while developing): every model learned well beyond the
    # uniform guess (log V), and the deepest model ends below the single block with a negative log-log slope.
    # Whether every step in depth helps is within noise at this budget (monotone in two seeds of five), so the
    # verdict is only checked against the numbers (next test), not asserted.
    data, m = tiny["data"], tiny["metrics"]
    val = data["val_loss"]
    assert all(v < 0.9 * torch.log(torch.tensor(float(m["vocab_size"]))).item() for v in val)
    assert val[-1] < val[0] - 0.03
    assert m["loglog_slope_loss_vs_params"] < 0
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
