"""RNNCell, LSTMCell, GRUCell against torch's cells, gradcheck, and known answers computed by hand.

The comparisons with torch's cells run on every device of the ``device`` fixture (the CPU, and CUDA where present);
gradcheck and the known answers run on the CPU in float64.
"""

from __future__ import annotations

import math

import pytest
import torch
from rnn_reference import F64, cell_inputs, check_against_torch, randn, twins
from torch import nn
from torch.func import functional_call

import attnlab.nn as ann

# (class name, extra constructor kwargs): every cell, the RNN cell with both nonlinearities.
CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}), ("GRUCell", {})]
CELL_IDS = ["rnn-tanh", "rnn-relu", "lstm", "gru"]


# --- against torch's cells, forward and backward ------------------------------------------------------


@pytest.mark.parametrize("with_hx", [True, False], ids=["hx", "no-hx"])
@pytest.mark.parametrize("B", [3, 1, None], ids=["B3", "B1", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize(("name", "kw"), CELLS, ids=CELL_IDS)
def test_cell_matches_torch_float32(name, kw, bias, B, with_hx, device):
    theirs, ours = twins(name, 5, 7, bias=bias, device=device, **kw)
    check_against_torch(theirs, ours, *cell_inputs(theirs, B, with_hx=with_hx))


@pytest.mark.parametrize("with_hx", [True, False], ids=["hx", "no-hx"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize(("name", "kw"), CELLS, ids=CELL_IDS)
def test_cell_matches_torch_float64(name, kw, bias, with_hx, device):
    theirs, ours = twins(name, 6, 4, bias=bias, dtype=torch.float64, device=device, **kw)
    check_against_torch(theirs, ours, *cell_inputs(theirs, 5, with_hx=with_hx), tol=F64)


@pytest.mark.parametrize(("I", "H"), [(1, 1), (17, 13)])
@pytest.mark.parametrize(("name", "kw"), CELLS, ids=CELL_IDS)
def test_cell_odd_sizes(name, kw, I, H, device):
    theirs, ours = twins(name, I, H, device=device, **kw)
    check_against_torch(theirs, ours, *cell_inputs(theirs, 2))


@pytest.mark.parametrize(("name", "kw"), CELLS, ids=CELL_IDS)
def test_cell_omitted_hx_equals_zero_hx(name, kw):
    _, ours = twins(name, 3, 4, **kw)
    x = randn(2, 3)
    zero = torch.zeros(2, 4)
    hx = (zero, zero) if name == "LSTMCell" else zero
    torch.testing.assert_close(ours(x), ours(x, hx), rtol=0, atol=0)


@pytest.mark.parametrize(("name", "kw"), CELLS, ids=CELL_IDS)
def test_cell_unbatched_equals_batch_of_one(name, kw):
    _, ours = twins(name, 3, 4, **kw)
    x, hx = cell_inputs(ours, None)
    unbatched = ours(x, hx)
    batched = ours(x[None], tuple(s[None] for s in hx) if isinstance(hx, tuple) else hx[None])
    if isinstance(unbatched, tuple):
        assert [u.shape for u in unbatched] == [torch.Size([4])] * 2
        batched = tuple(b.squeeze(0) for b in batched)
    else:
        assert unbatched.shape == (4,)
        batched = batched.squeeze(0)
    torch.testing.assert_close(unbatched, batched, rtol=0, atol=0)


# --- gradcheck: inputs, states and parameters in float64 ----------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize(("name", "kw"), CELLS, ids=CELL_IDS)
def test_cell_gradcheck(name, kw, bias):
    torch.manual_seed(0)
    cell = getattr(ann, name)(3, 2, bias=bias, dtype=torch.float64, **kw)
    x, hx = cell_inputs(cell, 2)
    states = list(hx) if isinstance(hx, tuple) else [hx]
    names = [n for n, _ in cell.named_parameters()]
    n_states = len(states)

    def f(x, *rest):
        states, params = rest[:n_states], rest[n_states:]
        hx = tuple(states) if name == "LSTMCell" else states[0]
        return functional_call(cell, dict(zip(names, params, strict=True)), (x, hx))

    leaves = [t.detach().clone().requires_grad_(True) for t in (x, *states, *cell.parameters())]
    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-7, rtol=1e-5)


# --- known answers: weights set by hand, outputs computed on paper ------------------------------------


def _set(cell: nn.Module, **values: list) -> nn.Module:
    """Zero every parameter, then set the named ones to the given values (float64)."""
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        for n, v in values.items():
            getattr(cell, n).copy_(torch.tensor(v, dtype=torch.float64))
    return cell


def _t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


def test_rnn_cell_known_answers():
    # I = H = 1: h' = tanh(w_ih x + b_ih + w_hh h + b_hh)
    cell = _set(ann.RNNCell(1, 1, dtype=torch.float64), weight_ih=[[1.0]])
    assert cell(_t(1.0)).item() == pytest.approx(math.tanh(1.0), rel=1e-15)
    cell = _set(ann.RNNCell(1, 1, dtype=torch.float64), weight_hh=[[0.5]], bias_ih=[0.25], bias_hh=[-0.5])
    # x is ignored (w_ih = 0): h' = tanh(0.5 * 2 + 0.25 - 0.5) = tanh(0.75)
    assert cell(_t(3.0), _t(2.0)).item() == pytest.approx(math.tanh(0.75), rel=1e-15)
    relu = _set(ann.RNNCell(1, 1, nonlinearity="relu", dtype=torch.float64), weight_ih=[[1.0]], bias_hh=[0.5])
    assert relu(_t(-2.0)).item() == 0.0  # relu(-1.5)
    assert relu(_t(2.0)).item() == 2.5  # relu(2.5): no squashing


def test_rnn_cell_known_answer_two_units():
    # H = 2 with W_hh swapping the units: h' = tanh((h_2, h_1)), and W_ih routing x to unit 1 only.
    cell = _set(ann.RNNCell(1, 2, dtype=torch.float64), weight_ih=[[1.0], [0.0]], weight_hh=[[0, 1], [1, 0]])
    out = cell(_t(0.5), _t(0.25, -1.0))
    torch.testing.assert_close(out, _t(math.tanh(0.5 - 1.0), math.tanh(0.25)), rtol=1e-15, atol=0)


def test_lstm_cell_known_answers():
    # All zero: i = f = o = sigmoid(0) = 1/2, g = tanh(0) = 0, so c' = c/2, h' = tanh(c')/2.
    cell = _set(ann.LSTMCell(1, 1, dtype=torch.float64))
    h, c = cell(_t(7.0), (_t(-3.0), _t(2.0)))
    assert c.item() == 1.0
    assert h.item() == pytest.approx(0.5 * math.tanh(1.0), rel=1e-15)
    # g's block (third of i|f|g|o) gets bias 1: c' = f c + i g = 0.5 * 2 + 0.5 * tanh(1)
    cell = _set(ann.LSTMCell(1, 1, dtype=torch.float64), bias_ih=[0.0, 0.0, 1.0, 0.0])
    h, c = cell(_t(0.0), (_t(0.0), _t(2.0)))
    c_want = 1.0 + 0.5 * math.tanh(1.0)
    assert c.item() == pytest.approx(c_want, rel=1e-15)
    assert h.item() == pytest.approx(0.5 * math.tanh(c_want), rel=1e-15)


def test_lstm_cell_gate_order():
    # Packing i|f|g|o: forget gate saturated open (f = sigmoid(40) = 1 in float64), input gate shut
    # (i = sigmoid(-40) ~ 4e-18), output gate open: c' = c exactly and h' = tanh(c).
    cell = _set(ann.LSTMCell(1, 1, dtype=torch.float64), bias_hh=[-40.0, 40.0, 5.0, 40.0])
    h, c = cell(_t(1.0), (_t(0.3), _t(0.8)))
    assert c.item() == pytest.approx(0.8, rel=1e-15)
    assert h.item() == pytest.approx(math.tanh(0.8), rel=1e-15)
    # The same with the output gate shut: h' ~ 0 while c' = c.
    cell = _set(ann.LSTMCell(1, 1, dtype=torch.float64), bias_hh=[-40.0, 40.0, 5.0, -40.0])
    h, c = cell(_t(1.0), (_t(0.3), _t(0.8)))
    assert abs(h.item()) < 1e-15
    assert c.item() == pytest.approx(0.8, rel=1e-15)


def test_lstm_cell_known_answer_input_weights():
    # W_ii = W_ig = 1 (rows 0 and 2), c = 0: c' = sigmoid(x) tanh(x), h' = tanh(c') / 2.
    cell = _set(ann.LSTMCell(1, 1, dtype=torch.float64), weight_ih=[[1.0], [0.0], [1.0], [0.0]])
    x = 0.7
    h, c = cell(_t(x))
    c_want = math.tanh(x) / (1 + math.exp(-x))
    assert c.item() == pytest.approx(c_want, rel=1e-14)
    assert h.item() == pytest.approx(0.5 * math.tanh(c_want), rel=1e-14)


def test_gru_cell_known_answers():
    # All zero: r = z = 1/2, n = tanh(0) = 0, h' = (1 - z) n + z h = h/2.
    cell = _set(ann.GRUCell(1, 1, dtype=torch.float64))
    assert cell(_t(5.0), _t(0.6)).item() == pytest.approx(0.3, rel=1e-15)
    # n's input bias (third of r|z|n) = 1: h' = 0.5 * tanh(1) + 0.5 * h
    cell = _set(ann.GRUCell(1, 1, dtype=torch.float64), bias_ih=[0.0, 0.0, 1.0])
    assert cell(_t(5.0), _t(0.6)).item() == pytest.approx(0.5 * math.tanh(1.0) + 0.3, rel=1e-15)
    # z's bias saturated (z = 1): h' = h whatever n is.
    cell = _set(ann.GRUCell(1, 1, dtype=torch.float64), bias_ih=[0.0, 40.0, 3.0])
    assert cell(_t(5.0), _t(0.6)).item() == pytest.approx(0.6, rel=1e-15)


def test_gru_cell_reset_after_hidden_matmul():
    # PyTorch's deviation from Cho et al.: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)). With h = 0 and
    # b_hn = 1 only: n = tanh(r * 1) = tanh(0.5); the paper's form (b_hn outside r) would give tanh(1).
    cell = _set(ann.GRUCell(1, 1, dtype=torch.float64), bias_hh=[0.0, 0.0, 1.0])
    assert cell(_t(0.0), _t(0.0)).item() == pytest.approx(0.5 * math.tanh(0.5), rel=1e-15)


# --- state_dict and parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize(("name", "kw"), CELLS, ids=CELL_IDS)
def test_cell_state_dict_matches_torch(name, kw, bias):
    torch.manual_seed(0)
    theirs = getattr(nn, name)(3, 5, bias=bias, **kw)
    ours = getattr(ann, name)(3, 5, bias=bias, **kw)
    sd_t, sd_o = theirs.state_dict(), ours.state_dict()
    assert list(sd_o) == list(sd_t)
    assert [v.shape for v in sd_o.values()] == [v.shape for v in sd_t.values()]
    # both ways: torch's cell loads ours and then computes what ours computes
    theirs.load_state_dict(sd_o)
    x, hx = cell_inputs(ours, 2)
    torch.testing.assert_close(ours(x, hx), theirs(x, hx))


@pytest.mark.parametrize(("name", "kw"), CELLS, ids=CELL_IDS)
def test_cell_init_range_and_dtype(name, kw):
    H = 9
    torch.manual_seed(0)
    cell = getattr(ann, name)(4, H, dtype=torch.float64, **kw)
    bound = 1 / math.sqrt(H)
    for n, p in cell.named_parameters():
        assert p.dtype == torch.float64, n
        assert p.abs().max().item() <= bound, n
        assert p.std().item() > bound / 4, n  # not all zero or constant
