"""Experiment ``long-range``: the tiny profile's measurements, the equal-parameter rule, the reach, the verdict, the
plot, the config.

Each model is trained at each distance until solved or out of budget; the tiny profile (distances 1 and 8, 150
steps, one seed) asserts only what held over the seed/thread sweep (see ``test_tiny_measures_what_holds``).
"""

import matplotlib
import pytest

from attnlab.experiments.recurrence.long_range import SPEC, Config
from attnlab.experiments.recurrence.long_range.measure import _verdict, build, count, reach, solve_hidden_size

matplotlib.use("Agg")
EXPERIMENT = "long-range"


def test_tiny_measures_what_holds(tiny):
    """Swept over seeds 0-19 x {1, 2} threads (40 runs of the tiny profile: d = 1 and 8, 150 steps):

    - every model solved d=1 in every run (RNN in 15-30 steps, LSTM 30-60, GRU 45-75, attention 30-45) -> solved;
    - the LSTM (forget bias 1) solved d=8 in every run (75-120 steps), attention in every run (45-60) -> solved;
    - the RNN solved d=8 in 32 runs of 40, the GRU in 14 (accuracy at the end 0.23-1.00 and 0.17-1.00): whether a
      150-step budget reaches d=8 varies with the seed for them, so it is not asserted (the verdict's
      ``rnn_fails_far`` held in 8 runs, ``gated_reach_further`` in 4). The design, not the tiny budget, is what the
      quick and full profiles measure."""
    results, chance = tiny["data"]["results"], tiny["data"]["chance"]
    assert chance == pytest.approx(1 / 8)
    for name, r in results.items():  # every model learns the task at the shortest distance
        assert r["solved"][0], name
    assert all(results["lstm"]["solved"]) and max(results["lstm"]["steps"]) <= 150
    assert all(results["attention"]["solved"])  # one attention step from the query to the symbol at every d


def test_result_layout(tiny):
    m, data = tiny["metrics"], tiny["data"]
    assert data["distances"] == [1, 8]
    for name in ("rnn", "lstm", "gru", "attention"):
        r = data["results"][name]
        assert m[f"acc/{name}/d=8"] == pytest.approx(r["accuracy"]["mean"][-1], abs=1e-4)
        assert m[f"reach/{name}"] == reach(data["distances"], r["solved"])
        assert [len(c) >= 1 for c in r["curves"]] == [True, True]
        for solved, acc in zip(r["solved"], r["accuracy"]["mean"], strict=True):
            assert solved == (acc >= data["solve"])  # one seed: solved means the threshold was met
    assert tiny["held"] is all(data["verdict"].values())
    assert ("Not every part held" in tiny["summary"]) is (tiny["held"] is False)


def test_equal_parameter_count(tiny):
    params = tiny["data"]["params"]
    assert max(params.values()) <= 1.05 * min(params.values())
    assert tiny["metrics"]["params_spread"] <= 0.05
    hidden = tiny["data"]["hidden_size"]
    assert hidden["rnn"] > hidden["gru"] > hidden["lstm"]  # 1, 3 and 4 gates share one budget


@pytest.mark.parametrize("profile", ["quick", "full", "tiny"])
def test_solved_hidden_size_matches_a_real_model(profile):
    cfg = Config.for_profile(profile)
    counts = {}
    for name in cfg.models:
        H = solve_hidden_size(name, cfg)
        step = 2 if name == "attention" else 1  # the attention width is a multiple of its heads
        real = {
            h: sum(p.numel() for p in build(name, h, cfg, max(cfg.distances)).parameters())
            for h in (H - step, H, H + step)
        }
        assert real[H] == count(name, H, cfg)  # the formula is the real model's count
        for other in (H - step, H + step):  # H is the nearest to the budget
            assert abs(real[H] - cfg.param_budget) <= abs(real[other] - cfg.param_budget)
        counts[name] = real[H]
    assert max(counts.values()) <= 1.05 * min(counts.values())


def test_reach_known_answers():
    assert reach([1, 5, 10], [True, True, False]) == 5
    assert reach([1, 5, 10], [True, False, True]) == 1  # every distance up to it must be solved
    assert reach([1, 5, 10], [False, True, True]) == 0


def _results(rnn, lstm, gru, attention=(True, True, True)):
    return {n: {"solved": list(s), "reach": reach([1, 5, 10], list(s))}
            for n, s in (("rnn", rnn), ("lstm", lstm), ("gru", gru), ("attention", attention))}  # fmt: skip


@pytest.mark.parametrize(
    ("results", "held"),
    [
        (_results((True, False, False), (True, True, True), (True, True, False)), True),
        (_results((True, True, True), (True, True, True), (True, True, True)), False),  # the RNN does not fail far
        (_results((True, True, False), (True, True, False), (True, True, True)), False),  # the LSTM reaches no further
        (_results((False, False, False), (True, True, True), (True, True, True)), False),  # the RNN never learned
        (_results((True, False, False), (True, True, True), (True, True, True), (True, True, False)), False),
    ],
)
def test_held_is_computed_from_the_measurements(results, held):
    verdict = _verdict(Config.for_profile("quick", distances=(1, 5, 10)), results)
    assert all(verdict.values()) is held


def test_held_is_none_without_a_gated_cell():
    cfg = Config.for_profile("tiny", models=("rnn", "attention"))
    assert _verdict(cfg, {"rnn": {"solved": [True, False], "reach": 1}}) is None


def test_plot_draws_from_the_result(tiny):
    figs = SPEC.plot(tiny)
    assert set(figs) == {"accuracy", "training"}
    assert len(figs["accuracy"].axes[0].lines) == 4 + 2  # four models, chance and the solved line


@pytest.mark.parametrize(
    ("field", "value"),
    [("distances", ()), ("distances", (10, 5)), ("distances", (0, 5)), ("models", ("rnn", "transformer")),
     ("models", ("rnn", "rnn")), ("task.n_symbols", 1), ("train.lr", 0.0), ("param_budget", 0), ("seeds", 0)],
)  # fmt: skip
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field.split(".")[-1]):
        Config.for_profile("tiny", **{field: value})
