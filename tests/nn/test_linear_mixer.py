"""The linear-attention mixer against a float64 reference written from Katharopoulos et al. 2020 (eq. 9, the
causal masked form, head by head), forward and backward; its decoding from the recurrent state against the full
forward; its state's constant size; autocast; errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.nn import MultiHeadAttention
from attnlab.nn.linear_mixer import LinearAttention, StateCache

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = {"rtol": 1e-10, "atol": 1e-12}


def randn(*shape: int, dtype=torch.float64, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def mixer(dtype=torch.float64, bias=True, device="cpu", seed=0, **kw) -> LinearAttention:
    torch.manual_seed(seed)
    m = LinearAttention(80, 2, bias=bias, **kw).to(device=device, dtype=dtype)
    if bias:
        with torch.no_grad():
            m.in_proj_bias.normal_(0, 0.5)
            m.out_proj.bias.normal_(0, 0.5)
    return m


def linear_ref(m: LinearAttention, x: Tensor, eps: float = 1e-6) -> Tensor:
    """y_i = sum_{j<=i} phi(q_i).phi(k_j) v_j / (sum_{j<=i} phi(q_i).phi(k_j) + eps), phi = elu + 1, per head."""
    B, T, E = x.shape
    nh, hs = m.num_heads, m.head_dim
    qkv = x @ m.in_proj_weight.T + (0 if m.in_proj_bias is None else m.in_proj_bias)
    q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in qkv.split(E, -1))  # (B, nh, T, hs)
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    sim = (phi_q @ phi_k.transpose(-2, -1)).tril()  # (B, nh, T, T): j <= i only
    y = (sim @ v) / (sim.sum(-1, keepdim=True) + eps)
    return m.out_proj(y.transpose(1, 2).reshape(B, T, E))


def forward_and_grads(fn, m, x, seed=9):
    y = fn(x)
    g = randn(*y.shape, dtype=y.dtype, seed=seed, device=y.device)
    return (y, *torch.autograd.grad(y, (x, *m.parameters()), g))


@pytest.mark.parametrize(("T", "chunk"), [(13, 4), (1, 64), (8, 8)])
@pytest.mark.parametrize("bias", [True, False])
def test_float64_equals_the_masked_form(T, chunk, bias, device):
    m = mixer(bias=bias, device=device, chunk_size=chunk)
    x = randn(2, T, 80, seed=1, device=device).requires_grad_()
    for a, b in zip(forward_and_grads(m, m, x), forward_and_grads(lambda x: linear_ref(m, x), m, x), strict=True):
        torch.testing.assert_close(a, b, **F64)


def test_float32_equals_the_masked_form(device):
    m = mixer(dtype=torch.float32, device=device, chunk_size=5)
    x = randn(3, 17, 80, dtype=torch.float32, seed=2, device=device).requires_grad_()
    for a, b in zip(forward_and_grads(m, m, x), forward_and_grads(lambda x: linear_ref(m, x), m, x), strict=True):
        torch.testing.assert_close(a, b)


def test_decoding_from_the_state_equals_the_full_forward(device):
    m = mixer(device=device, chunk_size=4)
    x = randn(2, 21, 80, seed=3, device=device)
    full = m(x)
    cache = StateCache()
    outs, t = [], 0
    for n in (5, 1, 1, 6, 1, 1, 1, 1, 3, 1):
        outs.append(m(x[:, t : t + n], cache=cache))
        t += n
        assert cache.length == t
        assert cache.nbytes() == 2 * 2 * (40 * 40 + 40) * 8  # (S, z) per head: constant whatever the length
    torch.testing.assert_close(torch.cat(outs, 1), full, **F64)


def test_parameters_are_those_of_multi_head_attention():
    ours, mha = LinearAttention(80, 2), MultiHeadAttention(80, 2)
    assert {n: p.shape for n, p in ours.named_parameters()} == {n: p.shape for n, p in mha.named_parameters()}


def test_under_autocast_bfloat16_forward_and_backward():
    m = mixer(dtype=torch.float32)
    x = randn(2, 9, 80, dtype=torch.float32, seed=4).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert y.dtype == torch.bfloat16
    gx, gw = torch.autograd.grad(y.float().square().sum(), (x, m.in_proj_weight))
    assert gx.dtype == gw.dtype == torch.float32 and torch.isfinite(gx).all() and torch.isfinite(gw).all()
    y32 = m(x)
    assert (y.float() - y32).abs().max() < 0.03 * y32.abs().max()  # bfloat16 keeps ~3 significant digits


def test_errors():
    with pytest.raises(ValueError, match="embed_dim: expected a multiple of num_heads=3, got 80"):
        LinearAttention(80, 3)
    with pytest.raises(ValueError, match="chunk_size: expected an integer >= 1, got 0"):
        LinearAttention(80, 2, chunk_size=0)
    m = mixer()
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, length >= 1, 80\), got \(2, 3, 40\)"):
        m(randn(2, 3, 40))
    with pytest.raises(ValueError, match=r"x: expected a 3-D tensor"):
        m(randn(3, 80))
