"""Exercise 3.1 ``bptt``: backpropagation through time by hand for a tanh RNN, checked against float64 autograd
through ``torch.nn.RNNCell`` steps and with ``torch.autograd.gradcheck`` (the learner's gradient as a backward)."""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn
from torch.autograd.gradcheck import GradcheckError

from attnlab.exercises.engine import Check, Exercise, Mistake
from attnlab.exercises.trial import Fail, Trial


def bptt(h, weight_hh, grad_last):
    """dL/dh_{t-1} = W_hh^T (dL/dh_t * (1 - h_t^2)), from dL/dh_T back to dL/dh_1."""
    grads = [grad_last]  # dL/dh_T
    for t in range(h.shape[1] - 1, 0, -1):
        da = grads[-1] * (1 - h[:, t] ** 2)  # through tanh: dh_t/da_t = 1 - h_t^2, (B, H)
        grads.append(da @ weight_hh)  # da_t/dh_{t-1} = W_hh: (B, H) @ (H, H), i.e. W_hh^T applied to each row
    return torch.stack(grads[::-1], 1)  # (B, T, H): dL/dh_1 .. dL/dh_T


def _unroll(t: Trial, B: int, T: int, H: int, dtype=torch.float64, scale: float = 1.0):
    """States h_1..h_T of a tanh RNN cell run for T steps (kept in the graph), and its W_hh."""
    with t.seeded():
        cell = nn.RNNCell(3, H, dtype=dtype)
    with torch.no_grad():
        cell.weight_hh.mul_(scale)
    xs = t.randn(T, B, 3, dtype=dtype)
    h = t.randn(B, H, dtype=dtype).requires_grad_()
    states = []
    for x_t in xs.unbind(0):
        h = cell(x_t, h)
        states.append(h)
    return states, cell.weight_hh.detach()


def _run(t: Trial, h: Tensor, w: Tensor, g: Tensor) -> Tensor:
    out = t.call(h, w, g)
    return t.tensor(out, h.shape, h.dtype, "dL/dh")


def _against_autograd(t: Trial, B: int, T: int, H: int, dtype=torch.float64, scale: float = 1.0) -> None:
    states, w = _unroll(t, B, T, H, torch.float64, scale)
    g = t.randn(B, H, dtype=torch.float64)
    want = torch.stack(torch.autograd.grad(states[-1], states, g), 1)  # (B, T, H): dL/dh_t for L = <g, h_T>
    h = torch.stack(states, 1).detach()
    got = _run(t, h.to(dtype), w.to(dtype), g.to(dtype))
    t.close(got, want.to(dtype), f"dL/dh_t for t = 1..{T} (B={B}, H={H}, {dtype}) against autograd")


class _Through(torch.autograd.Function):
    """h_T from h_1 by the recurrence (inputs fixed); its backward is the learner's bptt."""

    @staticmethod
    def forward(ctx, h1, xw, w_hh, trial):
        hs = [h1]
        for t in range(1, xw.shape[1]):
            hs.append(torch.tanh(xw[:, t] + hs[-1] @ w_hh.T))  # (B, H)
        h = torch.stack(hs, 1)  # (B, T, H)
        ctx.save_for_backward(h, w_hh)
        ctx.trial = trial
        return h[:, -1]

    @staticmethod
    def backward(ctx, grad_last):
        h, w_hh = ctx.saved_tensors
        return _run(ctx.trial, h, w_hh, grad_last)[:, 0], None, None, None


def _gradcheck(t: Trial) -> None:
    B, T, H = 2, 5, 4
    h1 = t.randn(B, H, dtype=torch.float64, scale=0.5).requires_grad_()
    xw, w = t.randn(B, T, H, dtype=torch.float64), t.randn(H, H, dtype=torch.float64, scale=0.5)
    try:
        torch.autograd.gradcheck(lambda h: _Through.apply(h, xw, w, t), (h1,), eps=1e-6, atol=1e-5)
    except GradcheckError as exc:
        raise Fail(
            "gradcheck: your dL/dh_1, used as the backward of h_1 -> h_T, differs from the numerical derivative "
            f"({str(exc).splitlines()[0]})"
        ) from None


def _contract(t: Trial) -> None:
    _run(t, t.randn(2, 4, 3).tanh(), t.randn(3, 3), t.randn(2, 3))


def _last_is_given(t: Trial) -> None:
    h, w, g = t.randn(2, 1, 5).tanh(), t.randn(5, 5), t.randn(2, 5)
    t.close(_run(t, h, w, g)[:, 0], g, "T = 1: dL/dh_1 is the given dL/dh_T")
    h = t.randn(3, 4, 5).tanh()
    t.close(_run(t, h, w, g.new_ones(3, 5))[:, -1], g.new_ones(3, 5), "dL/dh_T (the last row) is the given gradient")


def _variant(**knobs):
    return functools.partial(_bptt_with, **knobs)


def _bptt_with(h, weight_hh, grad_last, *, tanh_grad="1-h^2", transpose=True, step_of_h="t", newest_first=False):
    grads = [grad_last]
    for t in range(h.shape[1] - 1, 0, -1):
        ht = h[:, t - 1] if step_of_h == "t-1" else h[:, t]
        d = {"1-h^2": 1 - ht**2, "1-h": 1 - ht, "none": torch.ones_like(ht)}[tanh_grad]
        grads.append((grads[-1] * d) @ (weight_hh if transpose else weight_hh.T))
    return torch.stack(grads if newest_first else grads[::-1], 1)


MISTAKES = (
    Mistake(
        "bptt.no_tanh_derivative",
        "gradients through time that forget the tanh derivative",
        "each step back passes through tanh: multiply by 1 - h_t^2 before W_hh^T. Without it the gradient "
        "neither vanishes nor saturates as the real one does",
        _variant(tanh_grad="none"),
    ),
    Mistake(
        "bptt.tanh_derivative_1_minus_h",
        "tanh'(a) taken as 1 - h",
        "d tanh(a)/da = 1 - tanh(a)^2 = 1 - h_t^2 (squared)",
        _variant(tanh_grad="1-h"),
    ),
    Mistake(
        "bptt.no_transpose",
        "the Jacobian not transposed",
        "h_t = tanh(W_hh h_{t-1} + ...) gives dL/dh_{t-1} = W_hh^T (dL/dh_t * (1 - h_t^2)); with row vectors "
        "(B, H) that is da @ W_hh, not da @ W_hh.T",
        _variant(transpose=False),
    ),
    Mistake(
        "bptt.wrong_step",
        "the tanh derivative taken at the wrong step",
        "going from h_t back to h_{t-1} passes through tanh at step t: use 1 - h_t^2, not 1 - h_{t-1}^2",
        _variant(step_of_h="t-1"),
    ),
    Mistake(
        "bptt.reversed",
        "the gradients returned newest first",
        "out[:, t] is dL/dh_{t+1}: oldest step first, so out[:, -1] is the given dL/dh_T",
        _variant(newest_first=True),
    ),
)

EXERCISE = Exercise(
    name="bptt",
    section="3.1",
    title="Backpropagation through time by hand",
    task=(
        "A tanh RNN ran h_t = tanh(W_ih x_t + b + W_hh h_{t-1}) for T steps; a loss L depends on h_T only, and "
        "grad_last = dL/dh_T is given. Return dL/dh_t for every step, passing the gradient back through each "
        "step's Jacobian dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh. (This product of Jacobians is why gradients vanish "
        "or explode over long spans.)"
    ),
    equation="dL/dh_{t-1} = W_hh^T (dL/dh_t * (1 - h_t^2)),  dL/dh_T = grad_last",
    shapes="h (B, T, H) holds h_1..h_T; weight_hh (H, H); grad_last (B, H); returns (B, T, H): dL/dh_1..dL/dh_T",
    returns="the gradients (B, T, H), oldest step first",
    reference=bptt,
    solution=(bptt,),
    checks=(
        Check("shape and dtype", "(2, 4, 3) states give (2, 4, 3) gradients", "", _contract),
        Check("the given gradient", "T = 1, and the last step is dL/dh_T itself", "", _last_is_given),
        Check(
            "against autograd",
            "T = 6, H = 5, float64 autograd through torch.nn.RNNCell",
            "",
            lambda t: _against_autograd(t, 3, 6, 5),
        ),
        Check("gradcheck", "your gradient as the backward of h_1 -> h_T, against finite differences", "", _gradcheck),
        Check(
            "long spans",
            "T = 30, float32: the norm vanishes as autograd's does",
            "",
            lambda t: _against_autograd(t, 2, 30, 8, torch.float32),
        ),
        Check(
            "odd shapes",
            "batch 1, H = 59, a large W_hh (exploding)",
            "",
            lambda t: _against_autograd(t, 1, 7, 59, scale=3.0),
        ),
    ),
    mistakes=MISTAKES,
)
