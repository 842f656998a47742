"""The hand-derived backward of additive and dot-product attention: gradcheck, and equality with autograd.

``AdditiveAttentionFunction`` / ``DotAttentionFunction`` are checked directly with ``torch.autograd.gradcheck`` in
float64 (both outputs, the context and the weights, are differentiated), then the four ``*_manual`` functions
against their autograd twins on the same inputs, every input's gradient compared.
"""

from __future__ import annotations

import pytest
import torch
from classic_reference import MASKS, PARAMS, SCORES, forward_backward, key_mask_for, make_inputs, randn
from torch.autograd import gradcheck

import attnlab.functional as AF
from attnlab.functional.attention_backward import AdditiveAttentionFunction, DotAttentionFunction

F64 = {"rtol": 1e-10, "atol": 1e-12}


pytestmark = pytest.mark.usefixtures("one_thread")


def _leaves(*tensors):
    return tuple(t.detach().clone().requires_grad_() for t in tensors)


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("separate_values", [False, True], ids=["values=keys", "values"])
def test_gradcheck_additive_function(separate_values, bias, mask):
    B, S, Dq, Dk, A, Dv = 3, 4, 3, 2, 5, 2
    s, h, x, W, U, v, b = _leaves(
        randn(B, Dq), randn(B, S, Dk, seed=1), randn(B, S, Dv, seed=2), randn(A, Dq, seed=3), randn(A, Dk, seed=4),
        randn(A, seed=5), randn(A, seed=6),
    )  # fmt: skip
    key_mask = key_mask_for(mask, B, S)
    inputs = (s, h, W, U, v, *((x,) if separate_values else ()), *((b,) if bias else ()))

    def fn(s, h, W, U, v, *rest):
        values = rest[0] if separate_values else None
        bb = rest[-1] if bias else None
        return AdditiveAttentionFunction.apply(s, h, values, W, U, v, bb, key_mask)

    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("separate_values", [False, True], ids=["values=keys", "values"])
def test_gradcheck_dot_function(separate_values, mask):
    B, S, D, Dv = 3, 5, 4, 3
    q, h, x = _leaves(randn(B, D), randn(B, S, D, seed=1), randn(B, S, Dv, seed=2))
    key_mask = key_mask_for(mask, B, S)
    if separate_values:
        assert gradcheck(lambda q, h, x: DotAttentionFunction.apply(q, h, x, key_mask), (q, h, x))
    else:
        assert gradcheck(lambda q, h: DotAttentionFunction.apply(q, h, None, key_mask), (q, h))


def run(score: str, x: dict, key_mask, *, manual: bool):
    params = [x[name] for name in PARAMS[score]]
    kind = "additive" if score.startswith("additive") else score
    fn = getattr(AF, f"{kind}_attention_manual" if manual else f"{kind}_attention")
    if kind == "dot":
        out = fn(x["query"], x["keys"], x.get("values"), key_mask=key_mask)
    else:
        out = fn(x["query"], x["keys"], x.get("values"), *params, key_mask=key_mask)
    return out.output, out.weights


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("separate_values", [False, True], ids=["values=keys", "values"])
@pytest.mark.parametrize("shape", ["step", "T4", "S1", "B1-step"])
@pytest.mark.parametrize("score", SCORES)
def test_manual_equals_autograd(score, shape, separate_values, mask):
    x = make_inputs(score, shape, separate_values=separate_values)
    key_mask = key_mask_for(mask, *x["keys"].shape[:2])
    c, w, grads = forward_backward(lambda t: run(score, t, key_mask, manual=True), x)
    c_ref, w_ref, grads_ref = forward_backward(lambda t: run(score, t, key_mask, manual=False), x)
    torch.testing.assert_close(c, c_ref, **F64)
    torch.testing.assert_close(w, w_ref, **F64)
    assert set(grads) == set(x)
    for name in x:
        torch.testing.assert_close(grads[name], grads_ref[name], **F64, msg=name)


@pytest.mark.parametrize("score", SCORES)
def test_manual_equals_autograd_float32(score):
    x = make_inputs(score, "T4", dtype=torch.float32)
    key_mask = key_mask_for("pad", 2, 6)
    c, w, grads = forward_backward(lambda t: run(score, t, key_mask, manual=True), x)
    c_ref, w_ref, grads_ref = forward_backward(lambda t: run(score, t, key_mask, manual=False), x)
    torch.testing.assert_close(c, c_ref)
    torch.testing.assert_close(w, w_ref)
    for name in x:
        torch.testing.assert_close(grads[name], grads_ref[name], msg=name)


@pytest.mark.parametrize("score", SCORES)
def test_manual_runs_the_hand_written_backward(score):
    x = make_inputs(score, "step")
    c, w = run(score, {k: t.requires_grad_() for k, t in x.items()}, None, manual=True)
    expected = "DotAttentionFunctionBackward" if score in ("dot", "general") else "AdditiveAttentionFunctionBackward"
    assert c.grad_fn.name() == w.grad_fn.name() == expected


def test_one_key_known_answer():
    # S = 1: the weight is 1 whatever the score, so nothing upstream of the score gets a gradient, and the
    # keys (= values) get exactly dc.
    x = make_inputs("additive-bias", "S1", separate_values=False)
    query = x["query"][:, 0]  # (B, Dq)
    d_c = randn(2, 4, seed=3)
    leaves = _leaves(query, x["keys"], x["W"], x["U"], x["v"], x["b"])
    out = AF.additive_attention_manual(leaves[0], leaves[1], None, *leaves[2:])
    assert torch.equal(out.weights, torch.ones(2, 1, dtype=torch.float64))
    grads = torch.autograd.grad(out.output, leaves, d_c)
    for name, g in zip(("query", "W", "U", "v", "b"), (grads[0], *grads[2:]), strict=True):
        assert torch.equal(g, torch.zeros_like(g)), name
    torch.testing.assert_close(grads[1], d_c.unsqueeze(1), **F64)  # dH = P^T dC with P = 1
