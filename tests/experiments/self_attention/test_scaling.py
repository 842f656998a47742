"""scaling: the tiny config asserts the qualitative claim; the measuring helpers are checked on known answers."""

import itertools
import json
import math

import pytest
import torch

from attnlab.experiments.fits import loglog_slope
from attnlab.experiments.self_attention.scaling import SPEC, Config
from attnlab.experiments.self_attention.scaling.measure import entropy, softmax_jacobian_norm

EXPERIMENT = "scaling"


def test_tiny_shows_variance_growth_and_saturation(tiny):
    m, v = tiny["metrics"], tiny["data"]["verdict"]
    assert tiny["held"] is True and all(v.values())
    assert abs(m["variance_slope"] - 1) < 0.1  # Var(q.k) = d_k (Vaswani footnote 4)
    assert m["unscaled/entropy/1024"] < 0.1 * m["unscaled/entropy/4"]  # unscaled collapses onto one key
    assert m["unscaled/max_weight/1024"] > 0.9 and m["unscaled/saturated_fraction/1024"] > 0.5
    assert m["unscaled/jacobian_median/1024"] < 0.01 * m["unscaled/jacobian_median/4"]  # its gradient vanishes
    for key in ("entropy", "jacobian_median"):  # scaled: the same softmax at every head size
        values = [m[f"scaled/{key}/{d}"] for d in (4, 64, 1024)]
        assert max(values) < 1.15 * min(values)
    assert m["scaled/saturated_fraction/1024"] == 0
    sweep = tiny["data"]["sweep"]
    assert all(a < b for a, b in itertools.pairwise(sweep["entropy"]))  # hotter = flatter
    assert sweep["entropy"][-1] == pytest.approx(math.log(64), abs=0.05)
    json.dumps(tiny)  # JSON-able as saved
    assert set(SPEC.plot(tiny)) == {"variance", "saturation", "temperature"}


def test_variance_of_a_dot_product_is_d_k_on_all_sign_vectors():
    # Known answer: q = (1, ..., 1) and k over all 2^d sign vectors: q.k = sum of d independent +-1, variance d.
    d = 6
    k = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=d)))  # (64, d)
    dots = k @ torch.ones(d)
    assert dots.var(unbiased=False).item() == pytest.approx(d)
    assert loglog_slope([1, 10, 100], [3, 30, 300]) == pytest.approx(1.0)


def test_uniform_softmax_has_maximal_entropy_and_known_jacobian():
    S = 64
    p = torch.full((S,), 1 / S, dtype=torch.float64)
    assert entropy(p).item() == pytest.approx(math.log(S))
    # J = I/S - 11^T/S^2: ||J||_F^2 = S (1/S - 1/S^2)^2 + (S^2 - S) / S^4 = 1/S - 1/S^2
    assert softmax_jacobian_norm(p).item() == pytest.approx(math.sqrt(1 / S - 1 / S**2))


def test_jacobian_norm_matches_autograd_and_stays_exact_when_saturated():
    scores = torch.randn(3, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for row in scores:
        jac = torch.autograd.functional.jacobian(lambda s: torch.softmax(s, -1), row)  # (S, S)
        norm = softmax_jacobian_norm(torch.softmax(row, -1))
        torch.testing.assert_close(norm, torch.linalg.matrix_norm(jac))
    # Two keys 40 apart: p = (1 - e, e) with e ~ 4e-18, ||J||_F = 2 p_1 p_2 (a subtraction would give 0)
    p = torch.softmax(torch.tensor([0.0, -40.0], dtype=torch.float64), -1)
    assert softmax_jacobian_norm(p).item() == pytest.approx(2 * p[0].item() * p[1].item(), rel=1e-12)
    assert softmax_jacobian_norm(p).item() > 0


@pytest.mark.parametrize(
    ("named", "fields"),
    [
        ("d_ks", dict(d_ks=(64, 16))),
        ("taus", dict(taus=(0.0, 1.0))),
        ("n_keys", dict(n_keys=1)),
        ("collapse_factor", dict(collapse_factor=1.0)),
        ("flat_tolerance", dict(flat_tolerance=1.5)),
    ],
)
def test_config_errors_name_the_field(named, fields):
    with pytest.raises(ValueError, match=named):
        Config(**fields)
