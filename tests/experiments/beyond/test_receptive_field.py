"""receptive-field: the reach of sliding-window attention through L layers, read from gradients, is w L exactly, with
every position inside it reached and none beyond (held in every run of the tiny profile over seeds 0-19 x 1, 2
threads: a wiring fact, no margin); the control reaches everything; JSON, plots and config errors."""

import json

import pytest
from matplotlib.figure import Figure

from attnlab.experiments.beyond.receptive_field import SPEC, Config
from attnlab.experiments.beyond.receptive_field.measure import probe, reach

EXPERIMENT = "receptive-field"


def test_reach_is_w_times_L_exactly(tiny):
    m, grads, n = tiny["metrics"], tiny["data"]["grads"], tiny["data"]["length"]
    assert n == 3 * (3 + 2)
    for w in (2, 3):
        for L, g in zip((1, 2, 3), grads[str(w)], strict=True):
            assert m[f"reach/w={w}/L={L}"] == w * L
            assert all(x > 0 for x in g[: w * L + 1]) and all(x == 0 for x in g[w * L + 1 :])
        assert m[f"reach_per_layer/w={w}"] == w
    assert m["reach/full/L=1"] == n - 1 and all(x > 0 for x in tiny["data"]["full"])
    assert m["mistral_reach"] == 4096 * 32 == 131_072
    assert tiny["held"] is True and all(tiny["data"]["verdict"].values())


def test_the_probe_sees_what_the_mask_allows():
    """A window of 1 through 2 layers reaches exactly 2 back; the reach helper reads the farthest nonzero."""
    cfg = Config.for_profile("tiny", windows=(1,), depths=(2,))
    g = probe(cfg, 2, 1, "cpu")
    assert reach(g) == 2 and len(g) == cfg.length == 1 * (2 + 2)
    assert reach([3.0, 0.0, 1e-300, 0.0]) == 2


def test_words_and_figures_from_the_saved_result(tiny):
    assert "Each is w L" in tiny["summary"] and "131,072" in tiny["summary"]
    assert dict(tiny["headline"])["reach through 3 layers, w = 2 / 3"] == "6 / 9 (w L = 6 / 9)"
    figs = SPEC.plot(json.loads(json.dumps(tiny, allow_nan=False)))  # JSON without NaN, as saved
    assert sorted(figs) == ["gradient", "reach"] and all(isinstance(f, Figure) for f in figs.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [("windows", (0, 2)), ("windows", (4, 2)), ("depths", ()), ("n_embd", 36), ("n_kv_head", 3), ("vocab_size", 1)],
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        Config.for_profile("full", **{field: value})
