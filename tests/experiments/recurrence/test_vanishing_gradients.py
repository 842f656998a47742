"""vanishing-gradients: the tiny profile's mechanism (known answers for the probe, the factors at
initialisation, the radius sweep, clipping, the open forget gate), the verdict recomputed, the figures, the config.

The tiny profile (lag 8, hidden 32, 150 steps, one seed) asserts only what held over the seed/thread sweep
(seeds 0-19 x 1 and 2 threads; the figures are in ``test_tiny_shows_the_mechanism``'s docstring).
"""

import math

import matplotlib
import pytest
import torch

import attnlab.nn as ann
from attnlab.experiments.recurrence.vanishing_gradients import SPEC, Config
from attnlab.experiments.recurrence.vanishing_gradients.measure import orthogonal_rnn, state_gradients

matplotlib.use("Agg")
EXPERIMENT = "vanishing-gradients"


def test_tiny_shows_the_mechanism(tiny):
    """Swept over seeds 0-19 x {1, 2} threads (40 runs of the tiny profile); measured range -> asserted bound:

    - the RNN's per-step factor at initialisation 0.445-0.527 -> < 0.9 (the claim's own threshold);
    - LSTM (forget bias 1) along c over the RNN along h, at initialisation: 1.48-1.79 -> >= 1.3 (the verdict's
      1.05, strengthened);
    - mean forget gate, PyTorch's initialisation 0.482-0.519 -> within 0.05 of 0.5; forget bias 1 minus
      PyTorch's 0.213-0.235 -> > 0.15;
    - radius 0.5: x0.4977-0.4979, radius 2: x1.357-1.403 per step -> < 1 < ...; clipped steps exactly at the
      bound 0.1, unclipped 6.7-11.4 -> above it;
    - the LSTM with forget bias 1 solved lag 8 in every run (60-120 of the 150 steps) -> solved. Whether the RNN
      and the GRU solve it within 150 steps varies with the seed (26 and 14 of 40 runs did not / did), and the
      LSTM with PyTorch's initialisation ended at 0.21-0.92 (never solved, but within 0.03 of the threshold): not
      asserted."""
    m, v = tiny["metrics"], tiny["data"]["verdict"]
    assert m["factor/rnn/h/init"] < 0.9
    assert m["factor/lstm_forget1/c/init"] >= 1.3 * m["factor/rnn/h/init"] and v["open_forget_gate_carries"]
    assert m["gate/lstm_forget1/init"] > m["gate/lstm/init"] + 0.15
    assert abs(m["gate/lstm/init"] - 0.5) < 0.05  # sigma(~0): PyTorch's biases are small
    assert m["factor/rnn_rho=0.5"] < 1 < m["factor/rnn_rho=2"]
    assert v["vanishes_below_radius_1"] and v["explodes_above_radius_1"]
    assert m["clip/max_update_clipped"] <= m["clip/update_bound"] * (1 + 1e-6) < m["clip/max_update_unclipped"]
    assert m["solved/lstm_forget1"]


def test_held_is_the_verdict_and_the_words_say_it(tiny):
    v = tiny["data"]["verdict"]
    assert tiny["held"] is all(v.values())
    assert ("Not every part held" in tiny["summary"]) is (tiny["held"] is False)
    for name in ("rnn", "gru", "lstm", "lstm_forget1"):
        runs = tiny["data"]["cells"][name]["runs"]
        assert all(r["solved"] == (r["accuracy"] >= 0.95) for r in runs)  # solved means the threshold was met
        assert all(r["iters"] <= 150 and r["curve"][-1][0] == r["iters"] for r in runs)
    assert len(tiny["headline"]) == 5


def test_the_words_say_seed_by_seed_who_learned_the_lag():
    from attnlab.experiments.recurrence.vanishing_gradients.words import _learned

    def result(*runs):
        solved = sum(ok for ok, _, _ in runs) > len(runs) / 2
        cell = {"runs": [{"solved": ok, "iters": n, "accuracy": a} for ok, n, a in runs]}
        return {"data": {"cells": {"gru": cell}}, "metrics": {"solved/gru": solved}}

    assert _learned(result((True, 300, 0.97)), "gru", 300) == "GRU solved it in 300 steps"
    assert _learned(result((False, 300, 0.13)), "gru", 300) == "GRU did not within 300 steps (accuracy 0.13)"
    some = result((True, 2400, 1.0), (False, 3000, 0.14), (False, 3000, 0.12))
    assert _learned(some, "gru", 3000) == (
        "GRU solved it in 1 of 3 seeds, not a majority (after 2400 steps; the others ended at accuracy 0.14 / 0.12)"
    )
    most = result((True, 2400, 1.0), (True, 1800, 0.96), (False, 3000, 0.12))
    assert "2 of 3 seeds, a majority (after 2400 / 1800 steps" in _learned(most, "gru", 3000)


def test_state_gradients_of_a_linear_rnn_are_the_matrix_power():
    # Known answer: a relu RNN with W_hh = a*I, W_ih = I, no bias, positive inputs is linear: h_T = sum_t a^(T-t) x_t,
    # so dL/dh_t = a^(T-t) u, of norm a^d for a unit u.
    m = ann.RNN(3, 3, nonlinearity="relu", batch_first=True)
    with torch.no_grad():
        m.weight_hh_l0.copy_(0.5 * torch.eye(3))
        m.weight_ih_l0.copy_(torch.eye(3))
        m.bias_ih_l0.zero_()
        m.bias_hh_l0.zero_()
    x = torch.rand(2, 6, 3) + 0.1
    u = torch.tensor([1.0, 0.0, 0.0])
    got = state_gradients(m, "rnn", x, u)["h"]
    torch.testing.assert_close(torch.tensor(got), torch.arange(6.0) * math.log10(0.5), atol=1e-6, rtol=0)


def test_state_gradients_along_the_cell_state_are_powers_of_the_forget_gate():
    # Known answer: an LSTM whose weights are zero has constant gates: f = sigma(b_f), o = sigma(b_o). With the
    # input gate shut (b_i = -30) the state stays 0, dL/dc_T = o u, and the carousel gives dL/dc_{T-d} = f^d o u.
    H, f_bias = 4, 0.8
    lstm = ann.LSTM(2, H, batch_first=True)
    with torch.no_grad():
        for p in lstm.parameters():
            p.zero_()
        lstm.bias_ih_l0[:H] = -30.0  # i
        lstm.bias_ih_l0[H : 2 * H] = f_bias  # f
    u = torch.ones(H) / 2  # unit norm
    got = state_gradients(lstm, "lstm", torch.randn(3, 7, 2), u)
    f = 1 / (1 + math.exp(-f_bias))
    expected = [d * math.log10(f) + math.log10(0.5) for d in range(7)]  # o = sigma(0) = 0.5
    torch.testing.assert_close(torch.tensor(got["c"]), torch.tensor(expected), atol=1e-5, rtol=0)
    assert got["gate"] == pytest.approx(f)


def test_orthogonal_rnn_has_every_singular_value_rho():
    m = orthogonal_rnn(16, 1.5, seed=0)
    torch.testing.assert_close(torch.linalg.svdvals(m.weight_hh_l0), torch.full((16,), 1.5))


def test_plot_draws_from_the_saved_result(tiny):
    figs = SPEC.plot(tiny)
    assert set(figs) == {"decay", "learning", "exploding", "clipping"}
    assert SPEC.main_figure == "decay"


@pytest.mark.parametrize(
    ("field", "value"),
    [("lag", 0), ("hidden_size", 0), ("radii", (0.0, 1.0)), ("radii", (2.0, 1.0)), ("margin", 0.0),
     ("task.solve", 1.5), ("train.max_iters", 0)],
)  # fmt: skip
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field.split(".")[-1]):
        Config.for_profile("tiny", **{field: value})
