"""paths: Vaswani et al. Table 1 measured (FLOP exponents, sequential products, path lengths through gradients)
from the tiny config, with known answers; the search and the expected values checked on their own."""

import json

import pytest

from attnlab.experiments.self_attention.paths import SPEC, Config
from attnlab.experiments.self_attention.paths.config import PAPER
from attnlab.experiments.self_attention.paths.probes import (
    band_mask,
    expected_path,
    first_nonzero,
    layer_path_probe,
    recurrent_path_probe,
)
from attnlab.experiments.self_attention.paths.words import table

EXPERIMENT = "paths"


def test_flop_exponents_and_constants_are_table_1s(tiny):
    m = tiny["metrics"]
    for key, want in (
        ("attention/n", 2.0),
        ("attention/d", 1.0),
        ("recurrent/n", 1.0),
        ("recurrent/d", 2.0),
        ("convolution/n", 1.0),
        ("convolution/d", 2.0),
        ("convolution/k", 1.0),
    ):
        assert m[f"flops_exponent/{key}"] == pytest.approx(want, abs=1e-3)
    # Known answers, in FLOPs (2 per multiply-add): Q K^T and P V 4 n^2 d; the Q, K, V, O projections 8 n d^2;
    # an RNN 4 n d^2 (W_ih and W_hh); a convolution 2 k n d^2.
    assert m["flops_per_n2d/attention_core/n=64"] == pytest.approx(4.0)
    assert m["flops_per_nd2/attention_projections/n=64"] == pytest.approx(8.0)
    assert m["flops_per_nd2/recurrent/n=64"] == pytest.approx(4.0)
    assert m["flops_per_knd2/convolution/n=64"] == pytest.approx(2.0)
    # 4 n^2 d = 4 n d^2 at n = d: the paper's "cheaper than recurrent when n < d".
    assert m["crossover_n/attention_core_vs_recurrent/d=16"] == pytest.approx(16.0)


def test_sequential_products(tiny):
    by_n, lengths = tiny["data"]["by_n"], tiny["data"]["flop_lengths"]
    assert by_n["recurrent"]["matmul_depth"] == [n + 1 for n in lengths]  # W_ih once, W_hh once per step
    assert set(by_n["attention"]["matmul_depth"]) == {4}  # in-proj, Q K^T, P V, out-proj
    assert set(by_n["restricted"]["matmul_depth"]) == {4}
    assert set(by_n["convolution"]["matmul_depth"]) == {1}


def test_path_lengths_from_gradients(tiny):
    paths = tiny["data"]["paths"]
    for kind, p in paths.items():
        assert p["measured"] == p["expected"], kind
    assert tiny["metrics"]["path/attention/n=100"] == 1  # "one attention step apart"
    assert tiny["metrics"]["path/recurrent/n=100"] == 99  # "RNN: 99 steps"
    assert paths["convolution"]["measured"] == [1, 1, 4, 8, 50]  # n = 2, 3, 8, 17, 100 with k = 3
    assert paths["dilated"]["measured"] == [1, 1, 2, 3, 5]
    assert paths["restricted"]["measured"] == [1, 1, 3, 6]  # r = 4 reaches 3 back; n <= 32 only
    # The search's bracket: exactly zero one below the answer, nonzero at it.
    for p in paths.values():
        for found, probes in zip(p["measured"], p["probes"], strict=True):
            assert probes[str(found)] > 0
            assert probes[str(found - 1)] == 0.0


def test_gradient_is_exactly_zero_without_a_path():
    cfg = Config.for_profile("tiny")
    conv = layer_path_probe("convolution", 17, cfg)
    assert conv(7) == 0.0 and conv(8) > 0  # 7 layers of k=3 reach 14 back; 16 are needed
    rnn = recurrent_path_probe(17, cfg)
    assert rnn(15) == 0.0 and rnn(16) > 1e-3  # 16 transitions; the orthogonal weights keep the gradient O(1)
    attention = layer_path_probe("attention", 50, cfg)
    assert attention(0) == 0.0 and attention(1) > 0


def test_first_nonzero_known_answers():
    for answer in (0, 1, 2, 37, 64, 100):
        found, probes = first_nonzero(lambda m, a=answer: float(m >= a), cap=100)
        assert found == answer
        assert answer == 0 or probes[answer - 1] == 0.0
    assert first_nonzero(lambda m: 0.0, cap=10)[0] is None
    _, probes = first_nonzero(lambda m: float(m >= 1000), cap=4096)
    assert len(probes) < 30  # doubling then bisection: logarithmic in the answer


def test_expected_paths_and_band_mask():
    assert [expected_path("dilated", n, 3, 4) for n in (2, 3, 4, 9, 10, 27, 28)] == [1, 1, 2, 2, 3, 3, 4]
    assert expected_path("convolution", 100, 3, 4) == 50
    assert expected_path("restricted", 100, 3, 4) == 33
    assert expected_path("recurrent", 100, 3, 4) == 99
    assert expected_path("attention", 100, 3, 4) == 1
    m = band_mask(4, 2)
    assert m.tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [False, True, True, False],
        [False, False, True, True],
    ]


def test_table_held_json_and_figures(tiny):
    rows = table(Config.for_profile("tiny"), tiny)
    assert [r["layer"] for r in rows] == [
        "self-attention",
        "recurrent",
        "convolutional",
        "self-attention (restricted)",
    ]
    assert rows[0]["paper"] == PAPER["attention"] and rows[1]["paper"] == PAPER["recurrent"]
    assert "O(n^2 d) | n^2.00 d^1.00" in tiny["summary"]
    assert tiny["held"] is all(tiny["data"]["verdict"].values()) is True
    json.dumps(tiny)
    assert set(SPEC.plot(tiny)) == {"flops", "sequential", "path_length"}


@pytest.mark.parametrize(
    ("named", "fields"),
    [
        ("path_lengths", dict(path_lengths=(1, 4))),
        ("flop_widths", dict(heads=3)),
        ("window", dict(window=1)),
        ("kernel_sizes", dict(kernel_sizes=(1, 3))),
        ("tolerance", dict(tolerance=0.0)),
    ],
)
def test_config_errors_name_the_field(named, fields):
    with pytest.raises(ValueError, match=named):
        Config(**fields)
