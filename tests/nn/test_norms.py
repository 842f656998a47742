"""RMSNorm against torch.nn.RMSNorm with copied weights (forward and backward, float64/float32/bfloat16), under
autocast, and its errors; make_norm's choice."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from attnlab.nn.norms import RMSNorm, make_norm

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = {"rtol": 1e-12, "atol": 1e-12}


def randn(*shape: int, dtype=torch.float64, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def twins(shape, eps, dtype, device, affine=True):
    theirs = nn.RMSNorm(shape, eps=eps, elementwise_affine=affine, dtype=dtype, device=device)
    if affine:
        with torch.no_grad():
            theirs.weight.copy_(randn(*theirs.weight.shape, dtype=dtype, seed=7, device=device))  # not all ones
    ours = RMSNorm(shape, eps=eps, elementwise_affine=affine, dtype=dtype, device=device)
    ours.load_state_dict(theirs.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return theirs, ours


def forward_and_grads(m: nn.Module, x: Tensor, g: Tensor):
    y = m(x)
    return (y, *torch.autograd.grad(y, (x, *m.parameters()), g))


CASES = [((40,), None, (3, 5, 40)), ((40,), 1e-5, (1, 1, 40)), ((5, 7), None, (2, 5, 7)), ((59,), 0.1, (59,))]


@pytest.mark.parametrize(("shape", "eps", "xshape"), CASES, ids=["d40", "d40-eps-T1", "two-dims", "unbatched"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("affine", [True, False])
def test_equals_torch_rmsnorm_forward_and_backward(shape, eps, xshape, dtype, affine, device):
    theirs, ours = twins(shape, eps, dtype, device, affine)
    x = (3 * randn(*xshape, dtype=dtype, seed=1, device=device)).requires_grad_()
    g = randn(*xshape, dtype=dtype, seed=2, device=device)
    tol = F64 if dtype == torch.float64 else {}
    for a, b in zip(forward_and_grads(ours, x, g), forward_and_grads(theirs, x, g), strict=True):
        torch.testing.assert_close(a, b, **tol)


def test_bfloat16_equals_torch_within_its_rounding(device):
    """torch normalises bfloat16 in float32 and rounds once at the end; so do we: on the CPU the same bits (a
    fused GPU kernel may sum in another order: there, bfloat16's own tolerance)."""
    theirs, ours = twins((40,), None, torch.bfloat16, device)
    x = 3 * randn(4, 40, dtype=torch.bfloat16, seed=3, device=device)
    tol = {"rtol": 0, "atol": 0} if device == "cpu" else {}
    torch.testing.assert_close(ours(x), theirs(x), **tol)


def test_rms_of_the_output_is_one_without_gain():
    """The defining property (Zhang & Sennrich 2019, eq. 4): with g = 1 and eps -> 0, RMS(y) = 1 and y is
    invariant to re-scaling x (but not to shifting it: no centring)."""
    m = RMSNorm(16, eps=0.0, dtype=torch.float64)
    x = randn(5, 16, seed=4) + 2.0
    y = m(x)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(5, dtype=torch.float64), **F64)
    torch.testing.assert_close(m(7.5 * x), y, **F64)
    assert (y.mean(-1).abs() > 0.1).all()  # not centred, unlike LayerNorm


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")  # torch's own RMSNorm, not ours
def test_under_autocast_bfloat16_forward_and_backward():
    """A float32 module under CPU autocast: bfloat16 activations in, bfloat16 out (as torch.nn.RMSNorm), the
    float32 gain gets a float32 gradient equal to torch's."""
    theirs, ours = twins((24,), None, torch.float32, "cpu")
    lin = nn.Linear(24, 24)
    x = randn(3, 24, dtype=torch.float32, seed=5)
    results = []
    for m in (ours, theirs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = m(lin(x))
        assert y.dtype == torch.bfloat16
        (gw,) = torch.autograd.grad(y.float().sum(), (m.weight,))
        assert gw.dtype == torch.float32
        results += [y, gw]
    torch.testing.assert_close(results[0], results[2])
    torch.testing.assert_close(results[1], results[3])


def test_make_norm_builds_layernorm_or_rmsnorm():
    ln = make_norm("layernorm", 8, bias=False)
    assert isinstance(ln, nn.LayerNorm) and ln.bias is None
    rms = make_norm("rmsnorm", 8)
    assert isinstance(rms, RMSNorm) and [n for n, _ in rms.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match=r"norm: expected one of \('layernorm', 'rmsnorm'\), got 'batchnorm'"):
        make_norm("batchnorm", 8)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"normalized_shape": 0}, r"normalized_shape: expected positive integers, got 0"),
        ({"normalized_shape": (4, -1)}, r"normalized_shape: expected positive integers, got \(4, -1\)"),
        ({"normalized_shape": 4, "eps": -1.0}, r"eps: expected None or a number >= 0, got -1.0"),
    ],
)
def test_error_constructor(kw, message):
    with pytest.raises(ValueError, match=message):
        RMSNorm(**kw)


def test_error_inputs():
    m = RMSNorm((5, 7))
    with pytest.raises(ValueError, match=r"x: expected trailing shape \(5, 7\), got \(2, 7, 5\)"):
        m(torch.zeros(2, 7, 5))
    with pytest.raises(TypeError, match=r"x: expected a floating-point tensor, got dtype torch\.int64"):
        m(torch.zeros(2, 5, 7, dtype=torch.long))
