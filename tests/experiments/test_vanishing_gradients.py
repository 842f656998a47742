"""vanishing-gradients: the tiny config asserts the qualitative claim; the measuring helpers are checked."""

import json

import pytest
import torch

import attnlab.nn as ann
from attnlab.experiments.vanishing_gradients import Config, gradient_profile, per_step_factor, plot, run


@pytest.fixture(scope="module")
def tiny():
    return run(Config.for_profile("tiny"))


def test_tiny_shows_vanishing_exploding_and_clipping(tiny):
    m, v = tiny["metrics"], tiny["data"]["verdict"]
    assert m["factor/rnn/init"] < 0.9  # geometric decay of the plain RNN
    assert v["rnn_decays_geometrically"]
    assert v["lstm_slower_than_rnn_init"] and v["gru_slower_than_rnn_init"]
    assert m["factor/rnn_rho=0.5"] < 1 < m["factor/rnn_rho=2"]  # vanishing below radius 1, exploding above
    assert m["clip/max_update_clipped"] <= m["clip/update_bound"] * (1 + 1e-6) < m["clip/max_update_unclipped"]
    assert v["lstm_slower_than_rnn_trained"] is None  # no training in the tiny profile: not measured
    json.dumps(tiny)  # JSON-able as saved
    figs = plot(tiny)
    assert set(figs) == {"decay", "exploding", "clipping"}


def test_per_step_factor_recovers_a_geometric_rate():
    assert per_step_factor([k * -0.25 for k in range(10)]) == pytest.approx(10**-0.25)


def test_gradient_profile_of_a_linear_rnn_is_the_matrix_power():
    # Known answer: a relu RNN with W_hh = a*I, W_ih = I, no bias, positive inputs is linear:
    # h_T = sum_t a^(T-t) x_t, so dL/dx_t = a^(T-t) u, of norm a^d.
    m = ann.RNN(3, 3, nonlinearity="relu", bias=False)
    with torch.no_grad():
        m.weight_hh_l0.copy_(0.5 * torch.eye(3))
        m.weight_ih_l0.copy_(torch.eye(3))
    x = torch.rand(6, 2, 3) + 0.1
    prof = gradient_profile(m, x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(prof, torch.arange(6.0) * torch.log10(torch.tensor(0.5)))


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="seq_len"):
        Config(seq_len=2)
    with pytest.raises(ValueError, match="memory_channels"):
        Config(input_size=4, memory_channels=5)
    with pytest.raises(ValueError, match="radii"):
        Config(radii=(0.0,))
