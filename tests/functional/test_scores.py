"""The classic attention functions (additive, dot, general, concat) against the loop references of the papers.

Every case compares forward (context and weights) and backward (the gradient of every input, through both the
context and the weights) with :mod:`classic_reference`, which computes one score per position in a Python loop.
Shapes: B batch, T decoder steps (None: a (B, Dq) one-step query), S source positions, Dq/Dk/Dv query, key and
value sizes, A attention size.

Devices: the comparisons run ours on every device of the ``device`` fixture (:func:`ours_on` moves the inputs
there and the results back, differentiably), against the loop reference on the CPU in float64; the properties and
the argument errors run on the CPU.
"""

from __future__ import annotations

import math

import pytest
import torch
from classic_reference import (
    MASKS,
    PARAMS,
    SCORES,
    SHAPES,
    attention_loop,
    forward_backward,
    key_mask_for,
    make_inputs,
    randn,
    reference,
    reference_score,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

import attnlab.functional as AF

# float64: the same equations, summed in another order; differences are a few ulps.
F64 = {"rtol": 1e-10, "atol": 1e-12}
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)


pytestmark = pytest.mark.usefixtures("one_thread")


def ours(score: str, x: dict[str, Tensor], key_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """The functional under test on the same dict of tensors as the reference."""
    params = [x[name] for name in PARAMS[score]]
    values = x.get("values")
    if score.startswith("additive"):
        out = AF.additive_attention(x["query"], x["keys"], values, *params, key_mask=key_mask)
    elif score == "dot":
        out = AF.dot_attention(x["query"], x["keys"], values, key_mask=key_mask)
    elif score == "general":
        out = AF.general_attention(x["query"], x["keys"], values, *params, key_mask=key_mask)
    else:
        out = AF.concat_attention(x["query"], x["keys"], values, *params, key_mask=key_mask)
    assert isinstance(out, AF.AttentionOutput)
    return out.output, out.weights


def ours_on(device: str, score: str, key_mask: Tensor | None):
    """:func:`ours` on ``device`` for a dict of CPU tensors: the inputs and the mask moved there, the results moved
    back to the CPU. ``.to`` is differentiable, so the gradients reach the CPU leaves; on the CPU every move is a
    no-op."""
    mask = None if key_mask is None else key_mask.to(device)
    return lambda x: tuple(t.cpu() for t in ours(score, {k: v.to(device) for k, v in x.items()}, mask))


def score_fn(score: str, x: dict[str, Tensor]) -> Tensor:
    params = [x[name] for name in PARAMS[score]]
    fn = {
        "additive": AF.additive_scores,
        "additive-bias": AF.additive_scores,
        "dot": AF.dot_scores,
        "general": AF.general_scores,
        "concat": AF.concat_scores,
    }[score]
    return fn(x["query"], x["keys"], *params)


def assert_matches_reference(score, x, key_mask, tol, device="cpu"):
    c, w, grads = forward_backward(ours_on(device, score, key_mask), x)
    c_ref, w_ref, grads_ref = forward_backward(lambda t: reference(score, t, key_mask), x)
    torch.testing.assert_close(c, c_ref.to(c.dtype), **tol)
    torch.testing.assert_close(w, w_ref.to(w.dtype), **tol)
    for name in x:
        torch.testing.assert_close(grads[name], grads_ref[name].to(grads[name].dtype), **tol, msg=name)


# --- against the papers' equations -----------------------------------------------------------------------------


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("separate_values", [False, True], ids=["values=keys", "values"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("score", SCORES)
def test_float64_matches_loop_reference(score, shape, separate_values, mask, device):
    x = make_inputs(score, shape, separate_values=separate_values)
    key_mask = key_mask_for(mask, x["keys"].shape[0], x["keys"].shape[1])
    assert_matches_reference(score, x, key_mask, F64, device)


@pytest.mark.parametrize("score", SCORES)
def test_float32_matches_float64_reference(score, device):
    x = make_inputs(score, "T4", dtype=torch.float32)
    key_mask = key_mask_for("pad", 2, 6)
    assert_matches_reference(score, x, key_mask, {}, device)  # assert_close's float32 defaults


@pytest.mark.parametrize("shape", ["step", "T4"])
@pytest.mark.parametrize("score", SCORES)
def test_score_functions_match_reference_scores(score, shape, device):
    x = make_inputs(score, shape)
    _, _, scores_ref = attention_loop(reference_score(score, x), x["query"], x["keys"])
    scores = score_fn(score, {k: v.to(device) for k, v in x.items()}).cpu()
    assert scores.shape == scores_ref.shape  # (B, S) for one step, (B, T, S)
    torch.testing.assert_close(scores, scores_ref, **F64)
    weights = ours_on(device, score, None)(x)[1]
    torch.testing.assert_close(weights, torch.softmax(scores, -1), **F64)  # the weights are softmax(scores)


def test_attend_is_masked_softmax_then_mix():
    scores, values = randn(2, 3, 4), randn(2, 4, 5, seed=1)
    mask = torch.tensor([[True, False, True, True], [False, False, False, False]])
    out = AF.attend(scores, values, mask)
    expected_w = torch.softmax(scores[0].masked_fill(~mask[0], -math.inf), -1)
    torch.testing.assert_close(out.weights[0], expected_w, **F64)
    torch.testing.assert_close(out.output[0], expected_w @ values[0], **F64)
    assert torch.equal(out.weights[1], torch.zeros(3, 4)) and torch.equal(out.output[1], torch.zeros(3, 5).double())
    one = AF.attend(scores[:, 0], values, mask)  # (B, S) scores: one step
    torch.testing.assert_close(one.output, out.output[:, 0], **F64)


# --- known answers ---------------------------------------------------------------------------------------------


def test_luong_scores_are_not_scaled():
    q = torch.tensor([[1.0, 0.0]], dtype=torch.float64)  # (B=1, D=2)
    keys = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]], dtype=torch.float64)  # (1, S=2, 2): scores 2 and 0
    e2 = math.exp(2.0)
    expected = torch.tensor([[e2 / (e2 + 1), 1 / (e2 + 1)]], dtype=torch.float64)
    torch.testing.assert_close(AF.dot_attention(q, keys).weights, expected, **F64)  # not softmax([2, 0] / sqrt 2)
    W_a = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)  # h^T W_a k = k_2: scores 0 and 3
    e3 = math.exp(3.0)
    out = AF.general_attention(q, keys, None, W_a)
    torch.testing.assert_close(out.weights, torch.tensor([[1 / (1 + e3), e3 / (1 + e3)]], dtype=torch.float64))
    torch.testing.assert_close(out.output, out.weights @ keys[0])  # values default to the keys


def test_additive_known_answer():
    # A = Dq = Dk = 1, W = U = v = 1: e_j = tanh(s + h_j); s = 0, h = (0, atanh 0.5) -> e = (0, 0.5)
    one = torch.ones(1, 1, dtype=torch.float64)
    s = torch.zeros(1, 1, dtype=torch.float64)
    h = torch.tensor([[[0.0], [math.atanh(0.5)]]], dtype=torch.float64)
    out = AF.additive_attention(s, h, None, one, one, one[0])
    p1 = math.exp(0.5) / (1 + math.exp(0.5))
    torch.testing.assert_close(out.weights, torch.tensor([[1 - p1, p1]], dtype=torch.float64), **F64)
    torch.testing.assert_close(out.output, torch.tensor([[p1 * math.atanh(0.5)]], dtype=torch.float64), **F64)
    # W = U = 0: every score is v^T tanh(0) = 0, uniform weights, the context is the mean of the values
    x = make_inputs("additive", "T4")
    out = AF.additive_attention(x["query"], x["keys"], x["values"], 0 * x["W"], 0 * x["U"], x["v"])
    torch.testing.assert_close(out.weights, torch.full((2, 4, 6), 1 / 6, dtype=torch.float64), **F64)
    torch.testing.assert_close(out.output, x["values"].mean(1, keepdim=True).expand(2, 4, 2), **F64)


# --- masks -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["step", "T4"])
@pytest.mark.parametrize("score", SCORES)
def test_row_without_real_keys_is_zero_with_zero_gradient(score, shape, device):
    x = make_inputs(score, shape)
    B, S = x["keys"].shape[:2]
    key_mask = key_mask_for("dead", B, S)  # batch row 0: all padding
    c, w, grads = forward_backward(ours_on(device, score, key_mask), x)
    assert torch.equal(c[0], torch.zeros_like(c[0])) and torch.equal(w[0], torch.zeros_like(w[0]))
    assert torch.isfinite(c).all() and torch.isfinite(w).all()
    assert all(torch.isfinite(g).all() for g in grads.values())
    for name in ("query", "keys", "values"):
        assert torch.equal(grads[name][0], torch.zeros_like(grads[name][0])), name
    assert w[1:].sum(-1).sub(1).abs().max() < 1e-12  # the other rows are still distributions


@SETTINGS
@given(
    score=st.sampled_from(SCORES),
    shape=st.sampled_from(list(SHAPES)),
    seed=st.integers(0, 10_000),
)
def test_property_weights_are_distributions_over_real_keys(score, shape, seed):
    x = make_inputs(score, shape, seed=seed)
    B, S = x["keys"].shape[:2]
    key_mask = key_mask_for("pad", B, S, seed=seed)
    w = ours(score, x, key_mask)[1]  # (B, [T,] S)
    m = key_mask if w.dim() == 2 else key_mask.unsqueeze(1)
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1], dtype=w.dtype), **F64)
    assert torch.equal(w.masked_select(~m.expand_as(w)), torch.zeros(int((~m.expand_as(w)).sum()), dtype=w.dtype))


@SETTINGS
@given(
    score=st.sampled_from(SCORES),
    shape=st.sampled_from(["step", "T4", "T1"]),
    seed=st.integers(0, 10_000),
)
def test_property_padded_keys_change_nothing(score, shape, seed):
    x = make_inputs(score, shape, seed=seed)
    B, S = x["keys"].shape[:2]
    key_mask = key_mask_for("pad", B, S, seed=seed)
    pad = ~key_mask.unsqueeze(-1)  # (B, S, 1)
    y = dict(x)
    y["keys"] = torch.where(pad, 100 * randn(*x["keys"].shape, seed=seed + 50), x["keys"])
    y["values"] = torch.where(pad, 100 * randn(*x["values"].shape, seed=seed + 51), x["values"])
    c1, w1 = ours(score, x, key_mask)
    c2, w2 = ours(score, y, key_mask)
    torch.testing.assert_close(c2, c1, **F64)
    torch.testing.assert_close(w2, w1, **F64)
    if (~key_mask).any():  # and the garbage was there to be ignored: without the mask it shows
        assert not torch.allclose(ours(score, y, None)[0], c1)


@pytest.mark.parametrize("score", SCORES)
def test_all_steps_at_once_equal_step_by_step(score):
    x = make_inputs(score, "T4")
    key_mask = key_mask_for("pad", 2, 6)
    c, w = ours(score, x, key_mask)  # (B, T, Dv), (B, T, S)
    for t in range(x["query"].shape[1]):
        c_t, w_t = ours(score, {**x, "query": x["query"][:, t]}, key_mask)  # a (B, Dq) query
        torch.testing.assert_close(c_t, c[:, t], **F64)
        torch.testing.assert_close(w_t, w[:, t], **F64)


# --- errors name the argument ----------------------------------------------------------------------------------


def _additive(**override):
    x = make_inputs("additive-bias", "T4")
    args = {"query": x["query"], "keys": x["keys"], "values": x["values"], **{k: x[k] for k in ("W", "U", "v", "b")}}
    args.update(override)
    key_mask = args.pop("key_mask", None)
    return AF.additive_attention(*args.values(), key_mask=key_mask)


@pytest.mark.parametrize(
    ("override", "error", "pattern"),
    [
        ({"query": torch.zeros(2, 4, 5, 1, dtype=torch.float64)}, ValueError, r"^query: expected a 2-D or 3-D"),
        ({"query": torch.zeros(2, 4, 5, dtype=torch.int64)}, TypeError, r"^query: expected a floating-point"),
        ({"keys": torch.zeros(2, 6, dtype=torch.float64)}, ValueError, r"^keys: expected a 3-D"),
        ({"keys": torch.zeros(3, 6, 3, dtype=torch.float64)}, ValueError, r"^keys: expected batch size 2"),
        ({"keys": torch.zeros(2, 0, 3, dtype=torch.float64)}, ValueError, r"^keys: expected at least one position"),
        ({"keys": torch.zeros(2, 6, 3, dtype=torch.float32)}, TypeError, r"^keys: expected dtype torch.float64"),
        ({"values": torch.zeros(2, 5, 2, dtype=torch.float64)}, ValueError, r"^values: expected batch and length"),
        ({"values": torch.zeros(2, 6, dtype=torch.float64)}, ValueError, r"^values: expected a 3-D"),
        ({"key_mask": torch.ones(2, 6)}, TypeError, r"^key_mask: expected a bool tensor"),
        ({"key_mask": torch.ones(2, 5, dtype=torch.bool)}, ValueError, r"^key_mask: expected shape \(2, 6\)"),
        ({"key_mask": [[True] * 6] * 2}, TypeError, r"^key_mask: expected a torch.Tensor"),
        ({"W": torch.zeros(5, 4, dtype=torch.float64)}, ValueError, r"^W: expected shape \(5, 5\) \(A, Dq\)"),
        ({"U": torch.zeros(5, 4, dtype=torch.float64)}, ValueError, r"^U: expected shape \(5, 3\) \(A, Dk\)"),
        ({"v": torch.zeros(5, 1, dtype=torch.float64)}, ValueError, r"^v: expected a 1-D"),
        ({"b": torch.zeros(4, dtype=torch.float64)}, ValueError, r"^b: expected shape \(5\) \(A,\), got \(4\)"),
        ({"W": torch.zeros(5, 5, dtype=torch.float32)}, TypeError, r"^W: expected dtype torch.float64"),
    ],
)
def test_additive_errors_name_the_argument(override, error, pattern):
    with pytest.raises(error, match=pattern):
        _additive(**override)


def test_luong_errors_name_the_argument():
    q, k = randn(2, 4), randn(2, 6, 3)
    with pytest.raises(ValueError, match=r"^keys: the dot score needs Dk == Dq = 4"):
        AF.dot_attention(q, k)
    with pytest.raises(ValueError, match=r"^keys: the dot score needs Dk == Dq = 4"):
        AF.dot_scores(q, k)
    with pytest.raises(ValueError, match=r"^W_a: expected shape \(4, 3\) \(Dq, Dk\)"):
        AF.general_attention(q, k, None, randn(3, 4))
    with pytest.raises(ValueError, match=r"^W_a: expected shape \(5, 7\) \(A, Dq \+ Dk\)"):
        AF.concat_attention(q, k, None, randn(5, 6), randn(5))
    with pytest.raises(ValueError, match=r"^v_a: expected a 1-D"):
        AF.concat_scores(q, k, randn(5, 7), randn(5, 1))
    with pytest.raises(TypeError, match=r"^W_a: expected a torch.Tensor"):
        AF.general_scores(q, k, None)


def test_attend_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"^scores: expected a 2-D or 3-D"):
        AF.attend(randn(4), randn(1, 4, 2))
    with pytest.raises(ValueError, match=r"^values: expected shape \(2, 4, 3\)"):
        AF.attend(randn(2, 4), randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"^key_mask: expected shape \(2, 4\)"):
        AF.attend(randn(2, 4), randn(2, 4, 3), torch.ones(4, dtype=torch.bool))
