"""Multi-head latent attention (DeepSeek-V2) against a float64 reference written head by head from the paper's
equations (9)-(19), with rotary embeddings from their complex-number definition (RoFormer); the absorbed
computation against the plain one; cached decoding (growing and rolling) against the full forward; the cache
measured at d_c + d_h^R numbers per token; autocast; errors.

Shapes: B batch, T length, C = 80 model width, n_h = 2 heads of d_h = 40, d_c = 24, d_c' = 20, d_h^R = 8.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from attnlab.functional import AttentionMask
from attnlab.nn.mla import LatentCache, MultiHeadLatentAttention
from attnlab.nn.positional import apply_rotary

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = {"rtol": 1e-10, "atol": 1e-12}
CAUSAL = AttentionMask(causal="lower_right")


def randn(*shape: int, dtype=torch.float64, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def mla(dtype=torch.float64, bias=True, device="cpu", seed=0, **kw) -> MultiHeadLatentAttention:
    torch.manual_seed(seed)
    m = MultiHeadLatentAttention(80, 2, 24, 8, 20, bias=bias, **kw).to(device=device, dtype=dtype)
    with torch.no_grad():  # norms' gains away from 1 and biases away from 0, so a slip in either shows
        for name, p in m.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    return m


def rope_ref(x: Tensor, offset: int = 0, base: float = 10000.0) -> Tensor:
    """RoFormer (Su et al. 2021, eq. 34): the pair (x_2i, x_2i+1) as the complex number x_2i + i x_2i+1, times
    e^{i p theta_i}, theta_i = base^(-2i / d), at position p. x: (..., T, d)."""
    T, d = x.shape[-2], x.shape[-1]
    f64 = {"dtype": torch.float64, "device": x.device}
    theta = base ** (-torch.arange(0, d, 2, **f64) / d)  # (d/2,)
    p = torch.arange(offset, offset + T, **f64).unsqueeze(1)  # (T, 1)
    rot = torch.polar(torch.ones(T, d // 2, **f64), p * theta)  # e^{i p theta}: (T, d/2)
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())  # (..., T, d/2)
    return torch.view_as_real(z * rot).flatten(-2).to(x.dtype)


def mla_ref(m: MultiHeadLatentAttention, x: Tensor, allowed: Tensor) -> Tensor:
    """Eq. (9)-(19) head by head, with a ``(T, T)`` bool mask ``allowed``; differentiable in x and m's weights."""
    nh, hs, dr = m.num_heads, m.head_dim, m.d_rope

    def lin(layer, h):
        return h @ layer.weight.T + (0 if layer.bias is None else layer.bias)

    c_q = m.q_norm(lin(m.w_dq, x))  # (12) with the latent's RMSNorm: (B, T, d_c')
    c_kv = m.kv_norm(lin(m.w_dkv, x))  # (9): (B, T, d_c)
    k_r = rope_ref(lin(m.w_kr, x))  # (15): (B, T, dr), one for all heads
    heads = []
    for i in range(nh):
        q_c = lin(m.w_uq, c_q)[..., i * hs : (i + 1) * hs]  # (13): (B, T, hs)
        q_r = rope_ref(lin(m.w_qr, c_q)[..., i * dr : (i + 1) * dr])  # (14): (B, T, dr)
        k_c = (c_kv @ m.w_uk.weight.T)[..., i * hs : (i + 1) * hs]  # (10)
        v_c = (c_kv @ m.w_uv.weight.T)[..., i * hs : (i + 1) * hs]  # (11)
        q = torch.cat([q_c, q_r], -1)  # (16)
        k = torch.cat([k_c, k_r], -1)  # (17)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs + dr)  # (B, T, T)
        heads.append(torch.softmax(scores.masked_fill(~allowed, -math.inf), -1) @ v_c)  # (18)
    return lin(m.out_proj, torch.cat(heads, -1))  # (19)


def causal(T: int, window: int | None = None) -> Tensor:
    i, j = torch.arange(T).unsqueeze(1), torch.arange(T)
    return (j <= i) if window is None else (j <= i) & (j >= i - window)


def forward_and_grads(fn, m, x, seed=9):
    y = fn(x)
    g = randn(*y.shape, dtype=y.dtype, seed=seed, device=y.device)
    return (y, *torch.autograd.grad(y, (x, *m.parameters()), g))


def test_apply_rotary_equals_the_complex_definition():
    x = randn(2, 3, 7, 40, seed=1)
    for offset in (0, 5, 1000):
        torch.testing.assert_close(apply_rotary(x, offset), rope_ref(x, offset), **F64)
    # relative: <R_m q, R_n k> depends on m - n only
    q, k = randn(1, 40, seed=2), randn(1, 40, seed=3)
    a = (apply_rotary(q, 3) * apply_rotary(k, 1)).sum()
    b = (apply_rotary(q, 12) * apply_rotary(k, 10)).sum()
    torch.testing.assert_close(a, b, **F64)


@pytest.mark.parametrize("absorb", [False, True])
@pytest.mark.parametrize(("T", "window"), [(7, None), (1, None), (9, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_float64_equals_the_equations(absorb, T, window, bias, device):
    m = mla(bias=bias, device=device)
    x = randn(2, T, 80, seed=1, device=device).requires_grad_()
    mask = AttentionMask(causal="lower_right", window=window)
    ours = forward_and_grads(lambda x: m(x, attn_mask=mask, absorb=absorb).output, m, x)
    ref = forward_and_grads(lambda x: mla_ref(m, x, causal(T, window).to(device)), m, x)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, **F64)


@pytest.mark.parametrize("absorb", [False, True])
def test_float32_equals_the_equations(absorb, device):
    m = mla(dtype=torch.float32, device=device)
    x = randn(3, 11, 80, dtype=torch.float32, seed=2, device=device).requires_grad_()
    ours = forward_and_grads(lambda x: m(x, attn_mask=CAUSAL, absorb=absorb).output, m, x)
    ref = forward_and_grads(lambda x: mla_ref(m, x, causal(11).to(device)), m, x)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("impl", ["naive", "manual", "chunked", "torch"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_absorbed_equals_plain(impl, dtype, device):
    """Two computations of one function: up-projected keys/values vs W^UK folded into the query and W^UV applied
    after attending over the latents; forward, weights and every gradient."""
    m = mla(dtype=dtype, device=device, impl=impl)
    x = randn(2, 13, 80, dtype=dtype, seed=3, device=device).requires_grad_()
    plain = forward_and_grads(lambda x: m(x, attn_mask=CAUSAL, absorb=False).output, m, x)
    absorbed = forward_and_grads(lambda x: m(x, attn_mask=CAUSAL, absorb=True).output, m, x)
    tol = F64 if dtype == torch.float64 else {}
    for a, b in zip(plain, absorbed, strict=True):
        torch.testing.assert_close(a, b, **tol)
    if impl in ("naive", "manual"):
        w_plain = m(x, attn_mask=CAUSAL, absorb=False, need_weights=True).weights
        w_abs = m(x, attn_mask=CAUSAL, absorb=True, need_weights=True).weights
        assert w_plain.shape == (2, 2, 13, 13)
        torch.testing.assert_close(w_plain, w_abs, **tol)


@pytest.mark.parametrize("window", [None, 1, 3])
@pytest.mark.parametrize("absorb", [None, False, True])
def test_cached_decoding_equals_the_full_forward(window, absorb, device):
    """A prompt of 4, then one token at a time, then a chunk of 3, then ones: 15 positions, past a window of 3 and
    past the rolling buffer's wraps; the default decodes one token absorbed and the chunks plain."""
    m = mla(device=device)
    x = randn(2, 15, 80, seed=4, device=device)
    mask = AttentionMask(causal="lower_right", window=window)
    full = m(x, attn_mask=mask).output
    cache = m.new_cache(window=window)
    outs, t = [], 0
    for n in (4, 1, 1, 1, 3, 1, 1, 1, 1, 1):
        outs.append(m(x[:, t : t + n], attn_mask=mask, cache=cache, absorb=absorb).output)
        t += n
    assert cache.length == 15
    torch.testing.assert_close(torch.cat(outs, 1), full, **F64)


def test_cache_holds_d_c_plus_d_rope_numbers_per_token():
    """Measured from the cache's tensors: bytes / (batch * positions * element size) = d_c + d_h^R = 24 + 8,
    against 2 n_h d_h = 160 for multi-head attention of the same width; a window keeps w + 1 positions."""
    m = mla(dtype=torch.float32)
    B, S = 3, 10
    cache = LatentCache(capacity=S)
    for t in range(S):
        m(randn(B, 1, 80, dtype=torch.float32, seed=t), attn_mask=CAUSAL, cache=cache)
    per_token = cache.nbytes() / (B * S * 4)
    assert per_token == m.d_latent + m.d_rope == 32
    rolling = m.new_cache(window=4)
    for t in range(S):
        m(randn(B, 1, 80, dtype=torch.float32, seed=t), attn_mask=AttentionMask(causal="lower_right", window=4),
          cache=rolling)  # fmt: skip
    assert rolling.nbytes() == B * 5 * 32 * 4


def test_under_autocast_bfloat16_forward_and_backward():
    m = mla(dtype=torch.float32)
    x = randn(2, 6, 80, dtype=torch.float32, seed=5).requires_grad_()
    for absorb in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = m(x, attn_mask=CAUSAL, absorb=absorb).output
        assert y.dtype == torch.bfloat16
        grads = torch.autograd.grad(y.float().square().sum(), (x, m.w_uk.weight, m.w_kr.weight))
        assert all(g.dtype == torch.float32 and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
        y32 = m(x, attn_mask=CAUSAL).output
        assert (y.float() - y32).abs().max() < 0.03 * y32.abs().max()  # bfloat16 keeps ~3 significant digits


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"embed_dim": 80, "num_heads": 3}, ValueError, "embed_dim: expected a multiple of num_heads=3, got 80"),
        ({"d_rope": 7}, ValueError, r"d_rope: expected an even integer >= 2 \(rotary pairs\), got 7"),
        ({"d_latent": 0}, ValueError, "d_latent: expected an integer >= 1, got 0"),
        ({"d_latent_q": 0}, ValueError, "d_latent_q: expected an integer >= 1, got 0"),
        ({"absorb": "yes"}, ValueError, "absorb: expected None, True or False, got 'yes'"),
        ({"impl": "fast"}, ValueError, "impl: expected one of"),
    ],
)
def test_error_constructor(kw, error, message):
    args = {"embed_dim": 80, "num_heads": 2, "d_latent": 24, "d_rope": 8, **kw}
    with pytest.raises(error, match=message):
        MultiHeadLatentAttention(**args)


def test_error_inputs_and_cache_mask():
    m = mla()
    with pytest.raises(ValueError, match=r"x: expected last dimension 80, got shape \(2, 3, 40\)"):
        m(randn(2, 3, 40))
    with pytest.raises(ValueError, match=r"x: expected a 3-D tensor \(batch, length, embed_dim\)"):
        m(randn(3, 80))
    with pytest.raises(ValueError, match="attn_mask: a rolling cache of window 2 needs"):
        m(randn(1, 3, 80), attn_mask=CAUSAL, cache=m.new_cache(window=2))
