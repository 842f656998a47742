"""The LSTM's hand-derived backward through time: gradcheck in float64, and equal to autograd through the loop."""

import pytest
import torch
from torch.autograd import gradcheck

import attnlab.nn as ann
from attnlab.nn import lstm_bptt
from attnlab.nn.loop import TimeMasks
from attnlab.nn.lstm_bptt import _LSTMDirection

T, B, I, H = 5, 3, 2, 4


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    make = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()  # noqa: E731
    return make(T, B, I), make(B, H), make(B, H), make(4 * H, I), make(4 * H), make(4 * H, H)


@pytest.mark.parametrize("lengths", [None, [5, 2, 3], [3, 1, 2], [1, 1, 1]])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("block", [16, 2])
def test_gradcheck_direction(lengths, reverse, block, monkeypatch):
    """Both a single block and several (BLOCK=2 splits T=5 into 2+2+1 steps, and t_end < T leaves steps out)."""
    monkeypatch.setattr(lstm_bptt, "BLOCK", block)

    def fn(x, h0, c0, w_ih, b, w_hh):
        masks = TimeMasks(lengths, T, x.device)
        out, h, c = _LSTMDirection.apply(x, h0, c0, w_ih, b, w_hh, masks, reverse, True)
        return masks.finish(out), h, c

    assert gradcheck(fn, _inputs())


@pytest.mark.parametrize("lengths", [None, [6, 2, 6, 1]])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hand_bptt_equals_autograd_through_the_loop(lengths, dtype):
    torch.manual_seed(0)
    fast = ann.LSTM(5, 7, num_layers=2, bidirectional=True).to(dtype)
    slow = ann.LSTM(5, 7, num_layers=2, bidirectional=True).to(dtype)
    slow.load_state_dict(fast.state_dict())
    slow.backward = "autograd"
    x = torch.randn(6, 4, 5, dtype=dtype, requires_grad=True)
    upstream = None
    grads = []
    for m in (fast, slow):
        out, (h, c) = m(x, lengths=lengths)
        if upstream is None:
            upstream = [torch.randn_like(t) for t in (out, h, c)]
        grads.append(torch.autograd.grad((out, h, c), [x, *m.parameters()], upstream))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_autograd_path_supports_double_backward():
    torch.manual_seed(0)
    m = ann.LSTM(3, 4).double()
    m.backward = "autograd"
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: m(x)[0], (x,))


@pytest.mark.parametrize("lengths", [None, [6, 2, 6, 1]])
def test_forward_without_gradient_is_the_same_computation(lengths):
    """Under no_grad the direction keeps c and tanh(c) in two-step scratch, not (T, B, H) buffers: same numbers."""
    torch.manual_seed(0)
    m = ann.LSTM(5, 7, num_layers=2, bidirectional=True)
    x = torch.randn(6, 4, 5)
    hx = (torch.randn(4, 4, 7), torch.randn(4, 4, 7))
    with_grad = m(x, hx, lengths=lengths)
    assert with_grad[0].requires_grad
    with torch.no_grad():
        without = m(x, hx, lengths=lengths)
    torch.testing.assert_close(without, with_grad, rtol=0, atol=0)
