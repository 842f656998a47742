"""decode-cost: the mechanism, exact and machine-independent, on the tiny profile (per position of context,
attention's counted FLOPs grow by 4 L C and its decoding memory by 2 L C x 4 bytes; linear attention's and Mamba's
are constant, their states the formulas' sizes); the FLOP formula given for torch's CPU attention kernel against
the matrix products it replaces; slopes and verdict recomputed from the stored times; figures and config errors.
Times are measured, never asserted: the tiny profile's contexts (16-64) lie before any crossover."""

import pytest
import torch
from matplotlib.figure import Figure
from torch.utils.flop_counter import FlopCounterMode

from attnlab.experiments.beyond.decode_cost import SPEC, Config
from attnlab.experiments.beyond.decode_cost.measure import COUNTED, quantile
from attnlab.experiments.fits import loglog_slope

EXPERIMENT = "decode-cost"


def test_counts_per_position_are_exact(tiny):
    cfg = Config.for_profile("tiny")
    s = tiny["data"]["series"]
    L, C = cfg.n_layer, cfg.n_embd
    att = s["attention"]
    assert att["flops_exact"] and att["flops_per_position"] == 4 * L * C  # Q K^T and P V over one more position
    assert att["bytes_exact"] and att["bytes_per_position"] == 2 * L * C * 4 and att["bytes_fixed"] == 0
    assert att["longest_context"] == cfg.memory_budget_mib * 2**20 // (2 * L * C * 4)
    hs = C // cfg.n_head
    state = {"linear": cfg.n_head * (hs * hs + hs), "ssm": 2 * s["ssm"]["width"] * (cfg.d_state + 3)}  # S, z; h, conv
    for mixer, numbers in state.items():
        assert s[mixer]["flops_exact"] and s[mixer]["flops_per_position"] == 0
        assert s[mixer]["bytes_exact"] and s[mixer]["bytes_per_position"] == 0
        assert s[mixer]["bytes_fixed"] == L * numbers * 4 and s[mixer]["longest_context"] is None
        assert tiny["data"]["verdict"][f"{mixer}_flops_and_memory_constant"] is True
    assert tiny["data"]["verdict"]["attention_flops_and_memory_grow"] is True


def test_slopes_and_verdict_follow_from_the_stored_times(tiny):
    cfg, data, m = Config.for_profile("tiny"), tiny["data"], tiny["metrics"]
    fit = [i for i, n in enumerate(data["lengths"]) if n >= cfg.fit_from]
    assert data["fit_lengths"] == [32, 64] and data["timed_contexts"] == [n + 1 + cfg.rounds for n in data["lengths"]]
    for mixer, s in data["series"].items():
        assert all(len(x) == cfg.rounds for x in s["samples"])
        assert s["seconds_per_token"] == pytest.approx([quantile(x, 0.25) for x in s["samples"]])
        xs = [data["timed_contexts"][i] for i in fit]
        slope = loglog_slope(xs, [s["seconds_per_token"][i] for i in fit])
        assert m[f"time_slope/{mixer}"] == round(slope, 3)
    v = data["verdict"]
    assert v["attention_time_grows"] is (data["series"]["attention"]["time_slope"] > cfg.growing_min)
    for mixer in ("linear", "ssm"):
        assert v[f"{mixer}_time_flat"] is (abs(data["series"][mixer]["time_slope"]) <= cfg.flat_max)
    assert tiny["held"] is all(v.values())
    assert ("Not every part held" in tiny["summary"]) is (tiny["held"] is False)


def test_quantile_known_answers():
    assert quantile([5.0, 1.0, 3.0, 2.0, 4.0], 0.25) == 2.0
    assert quantile([1.0, 2.0], 0.5) == 1.5


def test_cpu_attention_flops_equal_the_matrix_products():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 11, 8), torch.randn(2, 3, 11, 8)
    with FlopCounterMode(display=False, custom_mapping=COUNTED) as fused:
        torch.nn.functional.scaled_dot_product_attention(q, k, v)
    with FlopCounterMode(display=False) as explicit:
        torch.softmax(q @ k.transpose(-2, -1) / 8**0.5, -1) @ v
    assert fused.get_total_flops() == explicit.get_total_flops() == 4 * 2 * 3 * 5 * 11 * 8


def test_result_draws_its_figures(tiny):
    figs = SPEC.plot(tiny)
    assert set(figs) == {"time", "counts"} and all(isinstance(f, Figure) for f in figs.values())
    assert tiny["headline"][0][0].startswith("time slope over n >= 32")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lengths", (16, 32)),
        ("lengths", (64, 32, 16)),
        ("fit_from", 64),  # the last length: a fit needs two
        ("fit_from", 48),  # not one of the lengths
        ("mixers", ("attention", "rnn")),
        ("n_embd", 30),  # not a multiple of n_head=4
        ("rounds", 0),
        ("flat_max", 0.0),
        ("memory_budget_mib", 0),
    ],
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=f"^{field}"):
        Config.for_profile("tiny", **{field: value})
