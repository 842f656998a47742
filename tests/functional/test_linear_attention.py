"""Causal linear attention: the chunked (training) and recurrent (decoding) forms against each other and against
a float64 reference written from the masked kernel form; causality, state hand-over, gradcheck, autocast.

Shapes: B batch, nh heads, T length, d_k query/key size, d_v value size (odd sizes on purpose: 5 and 7).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor
from torch.autograd import gradcheck

from attnlab.functional import (
    LinearAttentionState,
    elu_feature_map,
    linear_attention,
    linear_attention_step,
)

F64 = {"rtol": 1e-10, "atol": 1e-10}
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)
IMPLS = [("chunked", 64), ("chunked", 1), ("chunked", 4), ("chunked", 7), ("recurrent", 64)]
IMPL_IDS = ["chunked64", "chunked1", "chunked4", "chunked7", "recurrent"]

pytestmark = pytest.mark.usefixtures("one_thread")


def randn(*shape: int, dtype=torch.float64, seed: int = 0, requires_grad: bool = False, device="cpu") -> Tensor:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)
    return x.requires_grad_(requires_grad)


def qkv(B=2, nh=3, T=13, d_k=5, d_v=7, dtype=torch.float64, seed=0, requires_grad=False, device="cpu"):
    return tuple(
        randn(B, nh, T, d, dtype=dtype, seed=seed + i, requires_grad=requires_grad, device=device)
        for i, d in enumerate((d_k, d_k, d_v))
    )


def linear_attention_ref(q: Tensor, k: Tensor, v: Tensor, eps: float = 1e-6) -> Tensor:
    """The masked kernel form (Katharopoulos et al. 2020, section 3.3) in float64, for the tests' eyes only:
    ``y_i = sum_{j<=i} w_ij v_j / (sum_{j<=i} w_ij + eps)`` with ``w_ij = phi(q_i)^T phi(k_j)``: the (T, T)
    matrix, no state, no chunks."""
    q, k, v = (x.double() for x in (q, k, v))
    T = q.shape[-2]
    w = elu_feature_map(q) @ elu_feature_map(k).transpose(-2, -1)  # (..., T, d_k) @ (..., d_k, T) -> (..., T, T)
    w = w * torch.ones(T, T, dtype=torch.bool, device=q.device).tril()  # key j <= query i
    return (w @ v) / (w.sum(-1, keepdim=True) + eps)  # (..., T, T) @ (..., T, d_v) -> (..., T, d_v)


def run(impl_chunk, q, k, v, state=None, eps=1e-6):
    impl, chunk = impl_chunk
    return linear_attention(q, k, v, state, impl=impl, chunk_size=chunk, eps=eps)


def grads(out: Tensor, inputs, seed: int = 99):
    """Gradients of ``<out, g>`` for a fixed random g."""
    g = randn(*out.shape, dtype=out.dtype, seed=seed, device=out.device)
    return torch.autograd.grad(out, inputs, g)


@pytest.mark.parametrize("T", [1, 7, 13, 33])
@pytest.mark.parametrize("impl_chunk", IMPLS, ids=IMPL_IDS)
def test_matches_reference_forward_and_backward(impl_chunk, T, device):
    q, k, v = qkv(T=T, requires_grad=True, device=device)
    out = run(impl_chunk, q, k, v).output
    ref = linear_attention_ref(q, k, v)
    torch.testing.assert_close(out, ref, **F64)
    for ours, theirs in zip(grads(out, (q, k, v)), grads(ref, (q, k, v)), strict=True):
        torch.testing.assert_close(ours, theirs, **F64)


@pytest.mark.parametrize("chunk", [1, 3, 5, 19, 100])
def test_chunked_equals_recurrent_with_a_state(chunk, device):
    """Both forms from the same nonzero initial state: outputs, final states and all gradients agree."""
    q, k, v = qkv(T=19, requires_grad=True, device=device)
    s0 = randn(2, 3, 5, 7, seed=10, device=device).abs().requires_grad_()  # a state positive keys could leave
    z0 = randn(2, 3, 5, seed=11, device=device).abs().requires_grad_()
    a = linear_attention(q, k, v, LinearAttentionState(s0, z0), impl="chunked", chunk_size=chunk)
    b = linear_attention(q, k, v, LinearAttentionState(s0, z0), impl="recurrent")
    for x, y in zip((a.output, *a.state), (b.output, *b.state), strict=True):
        torch.testing.assert_close(x, y, **F64)
    g = randn(*a.output.shape, seed=5, device=device)
    loss_a = (a.output * g).sum() + a.state.s.sum() + a.state.z.sum()
    loss_b = (b.output * g).sum() + b.state.s.sum() + b.state.z.sum()
    inputs = (q, k, v, s0, z0)
    for x, y in zip(torch.autograd.grad(loss_a, inputs), torch.autograd.grad(loss_b, inputs), strict=True):
        torch.testing.assert_close(x, y, **F64)


def test_known_answer_zero_queries_and_keys_give_the_running_mean():
    """q = k = 0: phi = 1, every allowed weight is equal, so with eps = 0 output i is the mean of v_0..v_i."""
    v = randn(1, 1, 9, 4)
    zeros = torch.zeros(1, 1, 9, 3, dtype=torch.float64)
    expected = v.cumsum(-2) / torch.arange(1, 10, dtype=torch.float64).view(9, 1)
    for impl_chunk in IMPLS:
        torch.testing.assert_close(run(impl_chunk, zeros, zeros, v, eps=0.0).output, expected, **F64)


@pytest.mark.parametrize("impl_chunk", IMPLS, ids=IMPL_IDS)
def test_state_hands_over_between_calls(impl_chunk):
    """Prefix then the rest from the prefix's state equals one call on the whole sequence (split at 8 of 19)."""
    q, k, v = qkv(T=19)
    whole = run(impl_chunk, q, k, v)
    first = run(impl_chunk, q[..., :8, :], k[..., :8, :], v[..., :8, :])
    rest = run(impl_chunk, q[..., 8:, :], k[..., 8:, :], v[..., 8:, :], state=first.state)
    torch.testing.assert_close(torch.cat([first.output, rest.output], -2), whole.output, **F64)
    torch.testing.assert_close(rest.state.s, whole.state.s, **F64)
    torch.testing.assert_close(rest.state.z, whole.state.z, **F64)


def test_decoding_step_by_step_equals_the_chunked_forward(device):
    """A chunked prefill of 6 tokens, then one linear_attention_step per token: the full chunked forward."""
    q, k, v = qkv(T=17, device=device)
    full = linear_attention(q, k, v, chunk_size=4)
    prefill = linear_attention(q[..., :6, :], k[..., :6, :], v[..., :6, :], chunk_size=4)
    state, outs = prefill.state, [prefill.output]
    for t in range(6, 17):
        y, state = linear_attention_step(q[..., t, :], k[..., t, :], v[..., t, :], state)
        outs.append(y.unsqueeze(-2))
    torch.testing.assert_close(torch.cat(outs, -2), full.output, **F64)
    torch.testing.assert_close(state.s, full.state.s, **F64)
    torch.testing.assert_close(state.z, full.state.z, **F64)


@SETTINGS
@given(
    T=st.integers(2, 24),
    data=st.data(),
    impl_chunk=st.sampled_from(IMPLS),
    seed=st.integers(0, 2**16),
)
def test_causal_future_tokens_change_nothing_before_them(T, data, impl_chunk, seed):
    """Changing q, k, v at positions > p leaves outputs 0..p bit-identical, and their gradients into the future
    are exactly zero: no leak, in any chunking (a chunk straddling p included)."""
    p = data.draw(st.integers(0, T - 2))
    q, k, v = qkv(B=1, nh=2, T=T, seed=seed, requires_grad=True)
    out = run(impl_chunk, q, k, v).output
    q2, k2, v2 = (x.detach().clone() for x in (q, k, v))
    for i, x in enumerate((q2, k2, v2)):
        x[..., p + 1 :, :] = randn(*x[..., p + 1 :, :].shape, seed=seed + 100 + i) * 3.0
    out2 = run(impl_chunk, q2, k2, v2).output
    assert torch.equal(out[..., : p + 1, :], out2[..., : p + 1, :])
    assert not torch.equal(out[..., p + 1 :, :], out2[..., p + 1 :, :])  # the change did reach the future
    for g in torch.autograd.grad(out[..., : p + 1, :].sum(), (q, k, v)):
        assert torch.count_nonzero(g[..., p + 1 :, :]) == 0


@pytest.mark.parametrize("impl_chunk", [("chunked", 2), ("recurrent", 1)], ids=["chunked2", "recurrent"])
def test_gradcheck(impl_chunk):
    q, k, v = qkv(B=1, nh=2, T=5, d_k=3, d_v=2, requires_grad=True)
    s0 = randn(1, 2, 3, 2, seed=7).abs().requires_grad_()
    z0 = randn(1, 2, 3, seed=8).abs().requires_grad_()

    def f(q, k, v, s0, z0):
        out = run(impl_chunk, q, k, v, LinearAttentionState(s0, z0))
        return out.output, out.state.s, out.state.z

    assert gradcheck(f, (q, k, v, s0, z0))


def test_low_precision_inputs_keep_a_float32_state():
    """bfloat16 inputs: float32 state and arithmetic, bfloat16 output, within bfloat16 rounding of float64."""
    q, k, v = qkv(T=40, dtype=torch.float32)
    out = linear_attention(*(x.bfloat16() for x in (q, k, v)), chunk_size=16)
    assert out.output.dtype == torch.bfloat16
    assert out.state.s.dtype == out.state.z.dtype == torch.float32
    ref = linear_attention_ref(*(x.bfloat16() for x in (q, k, v)))  # the same rounded inputs, in float64
    err = (out.output.double() - ref).abs().max() / ref.abs().max()
    assert err <= 2**-7  # one bfloat16 rounding of the output (unit roundoff 2^-8) on float32 arithmetic


@pytest.mark.parametrize("impl", ["chunked", "recurrent"])
def test_autocast_bfloat16_forward_and_backward(impl):
    """Under CPU autocast (bf16 matmuls) the result stays close to float64 and every gradient is finite."""
    torch.manual_seed(0)
    proj = torch.nn.Linear(8, 3 * 6)
    x = randn(2, 21, 8, dtype=torch.float32, seed=3, requires_grad=True)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        q, k, v = proj(x).view(2, 21, 3, 6).unbind(2)  # (B, T, 6) each
        out = linear_attention(q, k, v, impl=impl, chunk_size=8).output
    assert q.dtype == out.dtype == torch.bfloat16  # autocast's Linear gives bfloat16; the output follows it
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and torch.isfinite(proj.weight.grad).all()
    with torch.no_grad():
        w, b = proj.weight.double(), proj.bias.double()
        q, k, v = (x.detach().double() @ w.t() + b).view(2, 21, 3, 6).unbind(2)  # (B, T, 6) each, in float64
        ref = linear_attention_ref(q, k, v)
    err = (out.detach().double() - ref).abs().max() / ref.abs().max()
    assert err <= 2**-5  # a few bfloat16 roundings (unit roundoff 2^-8): the projection, the matmuls, the output


# --- bad input ----------------------------------------------------------------------------------------------


def test_errors_name_the_argument():
    q, k, v = qkv(T=4)
    with pytest.raises(ValueError, match=r"^impl: expected one of"):
        linear_attention(q, k, v, impl="parallel")
    with pytest.raises(ValueError, match=r"^chunk_size: expected an integer >= 1, got 0"):
        linear_attention(q, k, v, chunk_size=0)
    with pytest.raises(ValueError, match=r"^key: expected the shape of query"):
        linear_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match=r"^value: expected the leading dims and length of query"):
        linear_attention(q, k, v[..., :3, :])
    with pytest.raises(ValueError, match=r"^query: expected a sequence length >= 1"):
        linear_attention(q[..., :0, :], k[..., :0, :], v[..., :0, :])
    with pytest.raises(TypeError, match=r"^query: expected a floating-point tensor"):
        linear_attention(q.long(), k, v)
    with pytest.raises(ValueError, match=r"^eps: expected a number >= 0"):
        linear_attention(q, k, v, eps=-1.0)
    bad_s = LinearAttentionState(
        torch.zeros(2, 3, 5, 6, dtype=torch.float64), torch.zeros(2, 3, 5, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match=r"^state.s: expected shape \(2, 3, 5, 7\), got \(2, 3, 5, 6\)"):
        linear_attention(q, k, v, bad_s)
    bad_dtype = LinearAttentionState(torch.zeros(2, 3, 5, 7), torch.zeros(2, 3, 5))
    with pytest.raises(TypeError, match=r"^state.s: expected dtype torch.float64"):
        linear_attention(q, k, v, bad_dtype)
    with pytest.raises(ValueError, match=r"^value: expected the leading dims of query"):
        linear_attention_step(q[..., 0, :], k[..., 0, :], v[..., :2, 0, :])
