"""attnlab.nn.gemm: the oneDNN products equal torch's matmuls, and the LSTM on either path is torch's twin."""

import pytest
import torch
from rnn_reference import check_against_torch, layer_inputs, twins
from torch.utils.flop_counter import FlopCounterMode

import attnlab.nn as ann
from attnlab.nn import gemm

onednn = pytest.mark.parametrize("enabled", [True, False], ids=["onednn", "torch"])


@pytest.fixture
def path(monkeypatch, enabled):
    monkeypatch.setattr(gemm, "USE_ONEDNN", enabled)
    return enabled


def _rand(*shape, dtype=torch.float32, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@onednn
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weight_linear_equals_matmul(path, dtype):
    x, w, add = _rand(5, 7, dtype=dtype), _rand(11, 7, dtype=dtype, seed=1), _rand(5, 11, dtype=dtype, seed=2)
    packed = gemm.Weight(w, batch=5)
    assert (packed.packed is not None) == (path and dtype == torch.float32)
    torch.testing.assert_close(packed.linear(x), x @ w.t())
    torch.testing.assert_close(packed.linear(x, add=add), add + x @ w.t())
    torch.testing.assert_close(packed.linear(x[:2]), x[:2] @ w.t())  # fewer rows than packed for


@onednn
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_with_bias_and_transposed_operands(path, dtype):
    x, w, b = _rand(6, 4, dtype=dtype), _rand(9, 4, dtype=dtype, seed=1), _rand(9, dtype=dtype, seed=2)
    torch.testing.assert_close(gemm.linear(x, w, b), x @ w.t() + b)
    xt, wt = _rand(4, 6, dtype=dtype, seed=3), _rand(4, 9, dtype=dtype, seed=4)  # used as .t() views
    torch.testing.assert_close(gemm.linear(xt.t(), wt.t()), xt.t() @ wt)


@onednn
@pytest.mark.parametrize(("N", "K"), [(12, 5), (5, 12)], ids=["wide-dy", "wide-x"])
def test_linear_grad_weight_is_dy_t_x(path, N, K):
    dy, x = _rand(20, N), _rand(20, K, seed=1)
    torch.testing.assert_close(gemm.linear_grad_weight(dy, x), dy.t() @ x)


def test_dispatch_modes_see_standard_matmuls():
    """Under a TorchDispatchMode (here the FLOP counter) the LSTM's products are aten matmuls it can count:
    forward = the input projection 2*T*B*I*4H plus T recurrent products 2*B*H*4H."""
    T, B, I, H = 6, 3, 5, 7
    m = ann.LSTM(I, H)
    with FlopCounterMode(display=False) as flops, torch.no_grad():
        m(torch.randn(T, B, I))
    assert flops.get_total_flops() == 2 * T * B * I * 4 * H + T * 2 * B * H * 4 * H


@onednn
@pytest.mark.parametrize("lengths", [None, [5, 2, 4]], ids=["full", "lengths"])
def test_lstm_matches_torch_on_both_paths(path, lengths):
    theirs, ours = twins("LSTM", 4, 6, num_layers=2, bidirectional=True)
    check_against_torch(theirs, ours, *layer_inputs(theirs, T=5, B=3), lengths=lengths)


@onednn
def test_lstm_frozen_weights_and_input_without_grad(path):
    """Gradients flow only where asked: frozen W_hh and biases, an input that does not require grad."""
    theirs, ours = twins("LSTM", 4, 6, bidirectional=True)
    for m in (theirs, ours):
        for name, p in m.named_parameters():
            p.requires_grad_(name.startswith("weight_ih"))
    x = _rand(5, 3, 4)
    grads = []
    for m in (theirs, ours):
        out, _ = m(x)
        (out * _rand(*out.shape, seed=7)).sum().backward()
        grads.append({n: p.grad for n, p in m.named_parameters()})
    for name, g in grads[0].items():
        if g is None:
            assert grads[1][name] is None, name
        else:
            torch.testing.assert_close(grads[1][name], g, msg=lambda m, name=name: f"{name}: {m}")
    assert grads[1]["weight_hh_l0"] is None and grads[1]["weight_ih_l0"] is not None


def test_a_build_without_the_private_ops_takes_the_plain_path(monkeypatch):
    monkeypatch.setattr(gemm, "_HAS_OPS", False)
    x, w = _rand(3, 4), _rand(5, 4, seed=1)
    packed = gemm.Weight(w, batch=3)
    assert packed.packed is None
    torch.testing.assert_close(packed.linear(x), x @ w.t(), rtol=0, atol=0)
