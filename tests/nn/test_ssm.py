"""The selective scan (chunked against the sequential reference) and the Mamba block (full forward against
token-by-token decoding and against the authors' padded-convolution formulation); gradcheck; autocast; errors.

Shapes: B batch, T length, D channels of the scan, N state size, C d_model; odd sizes on purpose (D 5, N 3 and 5,
T 7, 13, 30; C 6).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor
from torch.autograd import gradcheck

from attnlab.functional import selective_scan, selective_scan_ref, selective_scan_step
from attnlab.nn import Mamba, MambaState

F64 = {"rtol": 1e-10, "atol": 1e-10}
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None)

pytestmark = pytest.mark.usefixtures("one_thread")


def randn(*shape: int, dtype=torch.float64, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def scan_inputs(B=2, T=13, D=5, N=3, dtype=torch.float64, seed=0, strong=False, requires_grad=False, device="cpu"):
    """u, delta > 0, A < 0, B, C, D, h0 as the Mamba block makes them; ``strong``: decays down to exp(-100) per
    step, far past what exp(-cumsum) could hold (the chunked scan must never divide by a decay)."""
    u = randn(B, T, D, dtype=dtype, seed=seed)
    delta = F.softplus(randn(B, T, D, dtype=dtype, seed=seed + 1) + (3.0 if strong else -1.0))
    A = -torch.exp(randn(D, N, dtype=dtype, seed=seed + 2) + (2.0 if strong else 0.0))
    Bm, Cm = randn(B, T, N, dtype=dtype, seed=seed + 3), randn(B, T, N, dtype=dtype, seed=seed + 4)
    Dskip, h0 = randn(D, dtype=dtype, seed=seed + 5), randn(B, D, N, dtype=dtype, seed=seed + 6)
    xs = (u, delta, A, Bm, Cm, Dskip, h0)
    return tuple(x.to(device).requires_grad_(requires_grad) for x in xs)


def output_and_grads(fn, xs, seed=99):
    """y, the last state, and the gradients of <y, g> + <h_T, g'> in every input."""
    y, h = fn(*xs)
    loss = (y * randn(*y.shape, dtype=y.dtype, seed=seed, device=y.device)).sum() + (
        h * randn(*h.shape, dtype=h.dtype, seed=seed + 1, device=h.device)
    ).sum()
    return (y, h, *torch.autograd.grad(loss, xs))


CASES = [  # (T, N, chunk_size)
    (1, 1, None),
    (7, 3, None),
    (7, 3, 1),
    (13, 5, 4),
    (13, 1, 13),
    (30, 3, 7),
    (30, 5, 50),
]


@pytest.mark.parametrize(("T", "N", "chunk"), CASES, ids=[f"T{t}-N{n}-c{c}" for t, n, c in CASES])
def test_chunked_scan_equals_reference_float64(T, N, chunk, device):
    xs = scan_inputs(T=T, N=N, requires_grad=True, device=device)
    ours = output_and_grads(lambda *a: selective_scan(*a, chunk_size=chunk), xs)
    ref = output_and_grads(selective_scan_ref, xs)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, **F64)


@pytest.mark.parametrize(("T", "N", "chunk"), [(30, 5, None), (13, 3, 4)], ids=["T30-N5", "T13-N3-c4"])
def test_chunked_scan_equals_reference_float32(T, N, chunk, device):
    """float32 against float32: torch's default assert_close tolerances, outputs and every gradient."""
    xs = scan_inputs(T=T, N=N, dtype=torch.float32, requires_grad=True, device=device)
    ours = output_and_grads(lambda *a: selective_scan(*a, chunk_size=chunk), xs)
    ref = output_and_grads(selective_scan_ref, xs)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_chunked_scan_is_stable_under_strong_decay():
    """Per-step decays down to exp(-100) (cumulative log decays near -3000 in a chunk): finite, and equal."""
    xs = scan_inputs(T=30, N=3, strong=True)
    assert (xs[1].unsqueeze(-1) * xs[2]).min() < -100
    ours, ref = selective_scan(*xs, chunk_size=30), selective_scan_ref(*xs)
    assert torch.isfinite(ours.output).all() and torch.isfinite(ours.state).all()
    torch.testing.assert_close(ours.output, ref.output, **F64)
    torch.testing.assert_close(ours.state, ref.state, **F64)


def test_reference_known_answer():
    """One channel, one state: A = -1, delta = ln 2 (so A_bar = 1/2), B = C = u = 1, D = 1/2, h_0 = 0:
    h_t = h_{t-1}/2 + ln 2, so h_t = 2 ln 2 (1 - 2^-t) and y_t = h_t + 1/2 (t = 1, 2, ...)."""
    T = 6
    ones = torch.ones(1, T, 1, dtype=torch.float64)
    y, h = selective_scan_ref(
        ones, ones * math.log(2), -torch.ones(1, 1, dtype=torch.float64), ones, ones, ones[0, 0] / 2
    )
    t = torch.arange(1, T + 1, dtype=torch.float64)
    expected = 2 * math.log(2) * (1 - 0.5**t) + 0.5
    torch.testing.assert_close(y.view(T), expected, **F64)
    torch.testing.assert_close(h.view(()), expected[-1] - 0.5, **F64)


def test_scan_gradcheck():
    xs = scan_inputs(B=1, T=5, D=2, N=3, requires_grad=True)
    assert gradcheck(lambda *a: tuple(selective_scan(*a, chunk_size=2)), xs)


# --- the Mamba block ----------------------------------------------------------------------------------------


def mamba(dtype=torch.float64, seed=0, device="cpu", **kw) -> Mamba:
    torch.manual_seed(seed)
    kw = {"d_state": 3, "d_conv": 4, "expand": 2, "scan": "chunked", **kw}
    return Mamba(6, dtype=dtype, **kw).to(device)


def mamba_ref(m: Mamba, x: Tensor) -> Tensor:
    """The block as the authors' forward writes it: ``nn.Conv1d`` with padding K - 1 and the first T outputs
    kept (the causal convolution), then the sequential reference scan."""
    T = x.shape[1]
    u, z = m.in_proj(x).chunk(2, dim=-1)  # (B, T, D_in) each
    padded = F.conv1d(u.transpose(1, 2), m.conv1d.weight, m.conv1d.bias, padding=m.d_conv - 1, groups=m.d_inner)
    u = F.silu(padded[..., :T]).transpose(1, 2)  # (B, T, D_in)
    delta_r, Bm, Cm = m.x_proj(u).split([m.dt_rank, m.d_state, m.d_state], dim=-1)
    delta = F.softplus(m.dt_proj(delta_r))
    y, _ = selective_scan_ref(u, delta, -torch.exp(m.A_log), Bm, Cm, m.D)
    return m.out_proj(y * F.silu(z))


def test_parameters_have_the_authors_names_and_shapes():
    m = Mamba(32, d_state=5, d_conv=3, expand=2)  # D_in 64, dt_rank ceil(32 / 16) = 2
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        "in_proj.weight": (128, 32),
        "conv1d.weight": (64, 1, 3),
        "conv1d.bias": (64,),
        "x_proj.weight": (2 + 2 * 5, 64),
        "dt_proj.weight": (64, 2),
        "dt_proj.bias": (64,),
        "A_log": (64, 5),
        "D": (64,),
        "out_proj.weight": (32, 64),
    }


def test_initialisation():
    """S4D-real A[d, n] = -(n + 1); D = 1; initial step sizes softplus(dt_proj.bias) in [dt_min, dt_max]."""
    m = Mamba(16, d_state=4, dt_min=0.01, dt_max=0.2)
    torch.testing.assert_close(-torch.exp(m.A_log), -torch.arange(1.0, 5.0).expand(32, 4))
    assert torch.equal(m.D, torch.ones(32))
    dt = F.softplus(m.dt_proj.bias)
    assert dt.min() >= 0.01 * (1 - 1e-5) and dt.max() <= 0.2 * (1 + 1e-5)


@pytest.mark.parametrize(("scan", "chunk"), [("chunked", None), ("chunked", 3), ("sequential", None), ("auto", None)])
def test_forward_equals_the_authors_formulation(scan, chunk, device):
    m = mamba(scan=scan, chunk_size=chunk, device=device)
    x = randn(2, 11, 6, seed=1, device=device)
    torch.testing.assert_close(m(x).output, mamba_ref(m, x), **F64)


@pytest.mark.parametrize("scan", ["chunked", "sequential"])
@pytest.mark.parametrize("prefill", [0, 2, 7], ids=["from-empty", "shorter-than-kernel", "prefill7"])
def test_decoding_token_by_token_equals_the_full_forward(prefill, scan, device):
    """A prefill of ``prefill`` tokens (forward), then one ``step`` per token: the full forward's outputs,
    and the same final state."""
    m = mamba(scan=scan, chunk_size=3, device=device)
    x = randn(2, 11, 6, seed=2, device=device)
    full = m(x)
    outs, state = [], None
    if prefill:
        first = m(x[:, :prefill])
        outs, state = [first.output], first.state
    for t in range(prefill, 11):
        y, state = m.step(x[:, t], state)
        outs.append(y.unsqueeze(1))
    torch.testing.assert_close(torch.cat(outs, 1), full.output, **F64)
    torch.testing.assert_close(state.conv, full.state.conv, **F64)
    torch.testing.assert_close(state.ssm, full.state.ssm, **F64)


def test_forward_in_pieces_equals_forward_whole():
    m = mamba(d_conv=3, chunk_size=2)
    x = randn(1, 12, 6, seed=3)
    whole = m(x)
    a = m(x[:, :5])
    b = m(x[:, 5:], a.state)
    torch.testing.assert_close(torch.cat([a.output, b.output], 1), whole.output, **F64)
    torch.testing.assert_close(b.state.ssm, whole.state.ssm, **F64)


def test_kernel_of_one_has_an_empty_conv_state():
    m = mamba(d_conv=1)
    x = randn(1, 5, 6, seed=4)
    out = m(x)
    assert out.state.conv.shape == (1, 12, 0)
    y, _ = m.step(x[:, 0])
    torch.testing.assert_close(y, out.output[:, 0], **F64)


@SETTINGS
@given(T=st.integers(2, 16), data=st.data(), seed=st.integers(0, 2**16))
def test_causal_future_tokens_change_nothing_before_them(T, data, seed):
    p = data.draw(st.integers(0, T - 2))
    m = mamba(seed=seed % 7, chunk_size=3)
    x = randn(1, T, 6, seed=seed)
    x2 = x.clone()
    x2[:, p + 1 :] = randn(1, T - p - 1, 6, seed=seed + 1) * 3.0
    out, out2 = m(x).output, m(x2).output
    assert torch.equal(out[:, : p + 1], out2[:, : p + 1])
    assert not torch.equal(out[:, p + 1 :], out2[:, p + 1 :])


def test_block_gradcheck():
    m = mamba(d_state=2, d_conv=3, expand=1)
    x = randn(1, 5, 6, seed=5).requires_grad_()
    assert gradcheck(lambda x: m(x).output, (x,))


def test_autocast_bfloat16_forward_and_backward():
    """Under CPU autocast: bfloat16 projections, a float32 scan state, output near float64, finite gradients."""
    m = mamba(dtype=torch.float32)
    x = randn(2, 9, 6, dtype=torch.float32, seed=6).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x)
    assert out.output.dtype == torch.bfloat16 and out.state.ssm.dtype == torch.float32
    out.output.float().sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in m.parameters())
    with torch.no_grad():
        ref = m.double()(x.detach().double()).output
    err = (out.output.double() - ref).abs().max() / ref.abs().max()
    assert err <= 2**-4  # bfloat16 (unit roundoff 2^-8) through four projections, a conv and the gate


def test_step_keeps_the_input_dtype():
    m = mamba(dtype=torch.float32)
    y, state = m.step(randn(3, 6, dtype=torch.float32))
    assert y.dtype == state.ssm.dtype == state.conv.dtype == torch.float32
    assert isinstance(state, MambaState)


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"d_state": 0}, r"^d_state: expected an integer >= 1, got 0"),
        ({"d_conv": 0}, r"^d_conv: expected an integer >= 1, got 0"),
        ({"expand": 0}, r"^expand: expected an integer >= 1, got 0"),
        ({"dt_rank": 0}, r"^dt_rank: expected an integer >= 1, got 0"),
        ({"chunk_size": 0}, r"^chunk_size: expected an integer >= 1, got 0"),
        ({"scan": "parallel"}, r"^scan: expected one of \('auto', 'chunked', 'sequential'\), got 'parallel'"),
        ({"dt_min": 0.2, "dt_max": 0.1}, r"^dt_min, dt_max: expected 0 < dt_min <= dt_max"),
    ],
)
def test_constructor_errors_name_the_argument(kw, message):
    with pytest.raises(ValueError, match=message):
        Mamba(8, **kw)
    with pytest.raises(ValueError, match=r"^d_model: expected an integer >= 1, got -1"):
        Mamba(-1)


def test_input_errors_name_the_argument():
    m = mamba()
    with pytest.raises(ValueError, match=r"^x: expected shape \(batch, length >= 1, d_model=6\), got \(2, 5, 4\)"):
        m(torch.zeros(2, 5, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"^x: expected a floating-point tensor"):
        m(torch.zeros(2, 5, 6, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"^x: expected shape \(batch, d_model=6\) \(one token\)"):
        m.step(torch.zeros(2, 1, 6, dtype=torch.float64))
    bad = MambaState(torch.zeros(2, 12, 2, dtype=torch.float64), torch.zeros(2, 12, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^state.conv: expected shape \(2, 12, 3\), got \(2, 12, 2\)"):
        m(torch.zeros(2, 5, 6, dtype=torch.float64), bad)
    u, delta, A, Bm, Cm, D, h0 = scan_inputs()
    with pytest.raises(ValueError, match=r"^A: expected shape \(5, state size\)"):
        selective_scan(u, delta, A[:4], Bm, Cm, D)
    with pytest.raises(ValueError, match=r"^B: expected shape \(2, 13, 3\)"):
        selective_scan(u, delta, A, Bm[..., :2], Cm, D)
    with pytest.raises(TypeError, match=r"^state: expected dtype torch.float64"):
        selective_scan(u, delta, A, Bm, Cm, D, h0.float())
    with pytest.raises(ValueError, match=r"^chunk_size: expected an integer >= 1, got 0"):
        selective_scan(u, delta, A, Bm, Cm, D, chunk_size=0)


def test_step_function_matches_one_scan_step():
    """selective_scan_step on token 0 is the scan of a length-1 sequence."""
    u, delta, A, Bm, Cm, D, h0 = scan_inputs(T=1)
    y, h = selective_scan_step(u[:, 0], delta[:, 0], A, Bm[:, 0], Cm[:, 0], D, h0)
    ref = selective_scan(u, delta, A, Bm, Cm, D, h0)
    torch.testing.assert_close(y, ref.output[:, 0], **F64)
    torch.testing.assert_close(h, ref.state, **F64)
