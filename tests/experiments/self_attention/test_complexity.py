"""complexity: memory and FLOP counts (deterministic) from the tiny config; the fitting helpers by known answers.

Times are measured and reported by the experiment but never asserted here (tests prove behaviour, not speed).
"""

import json

import pytest

from attnlab.experiments.fits import loglog_slope
from attnlab.experiments.self_attention.complexity import SPEC, Config
from attnlab.experiments.self_attention.complexity.measure import fit_memory_model


@pytest.fixture(scope="module")
def tiny(tiny_runner):
    return tiny_runner("complexity", impls=("naive", "chunked"))


def test_naive_memory_is_quadratic_and_chunked_is_not(tiny):
    m = tiny["metrics"]
    assert m["memory_slope/naive/forward"] > 1.8
    assert m["memory_slope/naive/train"] > 1.8
    assert m["memory_slope/chunked/forward"] < 1.2
    assert m["memory_slope/chunked/train"] < 1.2
    # At the longest n the naive forward holds at least the (n, n) scores: 4 bytes * n^2 per head.
    n = tiny["data"]["rows"]["naive"]["forward"]["n"][-1]
    assert m[f"peak_mib/naive/forward/n={n}"] >= 4 * n * n / 2**20
    assert m[f"peak_mib/chunked/forward/n={n}"] < m[f"peak_mib/naive/forward/n={n}"] / 10


def test_flops_are_4_n2_hs_per_head_for_both(tiny):
    # Q K^T and P V: n^2 hs multiply-adds each; chunked skips nothing without a causal mask.
    assert tiny["metrics"]["flops_per_n2hs/naive"] == pytest.approx(4.0)
    assert tiny["metrics"]["flops_per_n2hs/chunked"] == pytest.approx(4.0)


def test_budget_answers_are_consistent(tiny):
    for impl in ("naive", "chunked"):
        r = tiny["metrics"][f"max_n_within_1024MiB/{impl}/train"]
        assert r["measured"] == max(tiny["data"]["rows"][impl]["train"]["n"])  # all tiny runs fit in 1 GiB
    naive = tiny["metrics"]["max_n_within_1024MiB/naive/train"]["predicted"]
    chunked = tiny["metrics"]["max_n_within_1024MiB/chunked/train"]["predicted"]
    assert chunked > 4 * naive  # linear memory reaches a far longer context in the same budget
    json.dumps(tiny)
    assert set(SPEC.plot(tiny)) == {"time", "memory"}


def test_loglog_slope_and_memory_model_known_answers():
    assert loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)
    c0, c1, c2 = fit_memory_model([100, 200, 400, 800], [5 + 0.5 * n + 0.01 * n * n for n in (100, 200, 400, 800)])
    assert (c0, c1, c2) == pytest.approx((5, 0.5, 0.01), rel=1e-6)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="lengths"):
        Config(lengths=(512,))
    with pytest.raises(ValueError, match="impls"):
        Config(impls=("flash",))
