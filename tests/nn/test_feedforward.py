"""The feed-forward networks: SwiGLU against Shazeer 2020's equation with three separate matrices, GELU against
torch's Linear -> GELU -> Linear, forward and backward; SwiGLU's width for equal parameters; errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from attnlab.nn.feedforward import dense_layers, feed_forward, hidden_size

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = {"rtol": 1e-12, "atol": 1e-12}


def randn(*shape: int, dtype=torch.float64, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def swiglu_ref(x: Tensor, W: Tensor, V: Tensor, W2: Tensor, b: Tensor | None, c: Tensor | None, b2) -> Tensor:
    """Shazeer 2020, eq. 6: FFN_SwiGLU(x) = (Swish_1(x W + b) * (x V + c)) W_2 (+ b_2), Swish_1(z) = z sigmoid(z)."""
    a, v = x @ W.T, x @ V.T
    if b is not None:
        a, v = a + b, v + c
    h = a * torch.sigmoid(a) * v
    out = h @ W2.T
    return out if b2 is None else out + b2


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(3, 7), (1, 1), (5,)], ids=["B3-T7", "T1", "unbatched"])
def test_swiglu_equals_the_equation(dtype, bias, shape, device):
    torch.manual_seed(0)
    l1, l2 = dense_layers(40, "swiglu", bias=bias, dtype=dtype, device=device)
    H = hidden_size(40, "swiglu")
    assert (l1.weight.shape, l2.weight.shape) == ((2 * H, 40), (40, H))
    x = randn(*shape, 40, dtype=dtype, seed=1, device=device).requires_grad_()
    W, V = l1.weight[:H], l1.weight[H:]  # the gate over the value, as documented
    b, c = (None, None) if l1.bias is None else (l1.bias[:H], l1.bias[H:])
    params = [x, *l1.parameters(), *l2.parameters()]
    y = feed_forward(x, l1, l2, "swiglu")
    y_ref = swiglu_ref(x, W, V, l2.weight, b, c, l2.bias)
    g = randn(*y.shape, dtype=dtype, seed=2, device=device)
    tol = F64 if dtype == torch.float64 else {}
    torch.testing.assert_close(y, y_ref, **tol)
    for a, r in zip(torch.autograd.grad(y, params, g), torch.autograd.grad(y_ref, params, g), strict=True):
        torch.testing.assert_close(a, r, **tol)


def test_gelu_is_torchs_linear_gelu_linear(device):
    torch.manual_seed(0)
    l1, l2 = dense_layers(24, "gelu", dtype=torch.float64, device=device)
    ref = nn.Sequential(l1, nn.GELU(), l2)
    x = randn(2, 5, 24, seed=3, device=device)
    torch.testing.assert_close(feed_forward(x, l1, l2, "gelu"), ref(x), **F64)
    assert l1.weight.shape == (96, 24)


def test_swiglu_width_keeps_the_parameters_of_gelu():
    """Three C x H matrices with H = round(8C/3) against GELU's two C x 4C: within one column's worth."""
    for C in (32, 128, 384, 768):
        H = hidden_size(C, "swiglu")
        assert abs(3 * C * H - 8 * C * C) <= 3 * C
    assert hidden_size(128, "gelu") == 512 and hidden_size(128, "swiglu") == 341


def test_dropout_applies_after_the_activation():
    torch.manual_seed(0)
    l1, l2 = dense_layers(8, "swiglu", dtype=torch.float64)
    x = randn(4, 8, seed=4)
    zero = feed_forward(x, l1, l2, "swiglu", nn.Dropout(1.0).train())
    torch.testing.assert_close(zero, l2.bias.expand(4, 8), **F64)  # everything dropped: only W_2's bias


def test_under_autocast_bfloat16_forward_and_backward():
    torch.manual_seed(0)
    l1, l2 = dense_layers(32, "swiglu")
    x = randn(3, 32, dtype=torch.float32, seed=5).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = feed_forward(x, l1, l2, "swiglu")
    assert y.dtype == torch.bfloat16
    grads = torch.autograd.grad(y.float().square().sum(), (x, l1.weight, l2.weight))
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    y32 = feed_forward(x, l1, l2, "swiglu")
    assert (y.float() - y32).abs().max() < 0.03 * y32.abs().max()


def test_errors():
    with pytest.raises(ValueError, match=r"mlp: expected one of \('gelu', 'swiglu'\), got 'relu'"):
        hidden_size(8, "relu")
    with pytest.raises(ValueError, match=r"mlp: expected one of \('gelu', 'swiglu'\), got 'geglu'"):
        feed_forward(randn(2, 8), *dense_layers(8, "gelu", dtype=torch.float64), "geglu")
    with pytest.raises(ValueError, match="d_hidden: expected an integer >= 1, got 0"):
        dense_layers(8, "gelu", d_hidden=0)
