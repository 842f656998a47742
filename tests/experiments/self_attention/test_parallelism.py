"""parallelism: sequential-step counts (deterministic) from the tiny config; the counter and the width solver by
known answers.

Times and speed ratios are measured and reported by the experiment but never asserted here (tests prove
behaviour, not speed).
"""

import json

import pytest
import torch

import attnlab.nn as ann
from attnlab.experiments.self_attention.parallelism import SPEC, Config
from attnlab.experiments.sequential import SequentialDepth, count_step
from attnlab.models.blocks import (
    AttentionBlock,
    LSTMBlock,
    attention_block_params,
    lstm_block_params,
    solve_lstm_hidden,
)

EXPERIMENT = "parallelism"


def test_lstm_needs_2T_sequential_matmuls_and_attention_a_constant(tiny):
    lengths = tiny["data"]["lengths"]
    lstm = tiny["data"]["series"]["lstm"]["matmul_depth"]
    attn = tiny["data"]["series"]["attention"]["matmul_depth"]
    # One product with W_hh per position forward (h_{t-1} W_hh^T) and one backward (dh_{t-1} = da_t W_hh),
    # plus a constant (input projection, readout, their backward).
    offsets = {d - 2 * T for d, T in zip(lstm, lengths, strict=True)}
    assert len(offsets) == 1 and 0 < offsets.pop() <= 8
    assert tiny["metrics"]["seq_matmuls_per_position/lstm"] == pytest.approx(2.0)
    assert len(set(attn)) == 1 and attn[0] <= 16  # O(1): the same chain at every T
    assert len(set(tiny["data"]["series"]["attention"]["ops"])) == 1  # not even one more op as T grows
    v = tiny["data"]["verdict"]
    assert v["lstm_sequential_steps_grow_with_T"] and v["attention_sequential_steps_constant"]


def test_held_is_computed_and_the_summary_reports_the_ratio(tiny):
    m, v = tiny["metrics"], tiny["data"]["verdict"]
    assert tiny["held"] is all(v.values())
    assert v["wall_clock_ratio_reaches_5x"] is (m["ratio_at_longest"] >= 5.0)
    assert f"{m['ratio_at_longest']:.2f}x" in tiny["summary"]
    assert "structural part of the claim held" in tiny["summary"]
    # FLOPs grow with T for both (the LSTM linearly), whatever the timings.
    flops = tiny["data"]["series"]["lstm"]["flops"]
    assert flops == sorted(flops) and m["flops_exponent/lstm"] == pytest.approx(1.0, abs=0.01)
    for model in ("lstm", "attention"):  # on the CPU each block counts at its faster thread count
        s = tiny["data"]["series"][model]
        assert s["seconds"] == [min(ts) for ts in zip(*s["seconds_at"].values(), strict=True)]
    json.dumps(tiny)
    assert set(SPEC.plot(tiny)) == {"time", "ratio", "sequential"}


def test_blocks_have_equal_parameters(tiny):
    p = tiny["data"]["params"]
    assert abs(p["lstm"] - p["attention"]) / p["attention"] < 0.01
    for C, r in ((32, 4), (128, 4), (96, 2)):
        H = solve_lstm_hidden(C, attention_block_params(C, r))
        assert sum(q.numel() for q in AttentionBlock(C, 4, r).parameters()) == attention_block_params(C, r)
        assert sum(q.numel() for q in LSTMBlock(C, H).parameters()) == lstm_block_params(C, H)
        for other in (H - 1, H + 1):  # the solved width is the closest in parameters
            target = attention_block_params(C, r)
            assert abs(lstm_block_params(C, H) - target) <= abs(lstm_block_params(C, other) - target)
    assert solve_lstm_hidden(128, attention_block_params(128, 4)) == 156  # 4H^2 + 648H + 128 = 198,272


def test_sequential_depth_known_answers():
    x, w = torch.randn(3, 4), torch.randn(4, 4)
    with SequentialDepth() as chain:
        y = x
        for _ in range(5):
            y = y @ w  # each product needs the previous one
    assert chain.matmul_depth == 5 and chain.depth == 5
    with SequentialDepth() as wide:
        ys = [x @ w for _ in range(5)]  # independent products: one parallel step
        torch.stack(ys).sum(0)
    assert wide.matmul_depth == 1 and wide.depth == 3
    with SequentialDepth() as inplace:
        y = x.clone()
        for _ in range(3):
            y.mul_(2)  # in place: each write waits for the previous one
        y.view(12).view(4, 3).t()  # views compute nothing
    assert inplace.depth == 4 and inplace.matmul_depth == 0


def test_recurrent_forward_is_T_plus_1_dependent_products():
    rnn = ann.RNN(3, 5)
    for T in (4, 9):
        c = count_step(lambda rnn=rnn, T=T: rnn(torch.randn(T, 2, 3)))
        assert c.matmul_depth == T + 1  # W_ih for all steps at once, then W_hh once per step
        assert c.flops == 2 * 2 * T * (3 * 5 + 5 * 5)  # (B=2) x 2 flops per multiply-add x (W_ih + W_hh)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="lengths"):
        Config(lengths=(64,))
    with pytest.raises(ValueError, match="d_model"):
        Config(d_model=30, heads=4)
    with pytest.raises(ValueError, match="threads"):
        Config(threads=-1)
    with pytest.raises(ValueError, match="min_run_time"):
        Config(min_run_time=0.0)
