"""Mixture of experts against a per-token loop reference (forward and every gradient), the Switch Transformer
load-balancing loss on hand-worked examples, the dense FFN at E = k = 1, capacity and drops, autocast, errors.

Shapes: N tokens (B x T flattened), C d_model, H d_hidden, E experts, k top_k; odd sizes (C 5, H 7).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.nn import MoE

F64 = {"rtol": 1e-10, "atol": 1e-10}

pytestmark = pytest.mark.usefixtures("one_thread")


def randn(*shape: int, dtype=torch.float64, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def moe(E: int, k: int, dtype=torch.float64, seed: int = 0, device="cpu", **kw) -> MoE:
    torch.manual_seed(seed)
    return MoE(5, 7, E, k, dtype=dtype, **kw).to(device)


def moe_ref(m: MoE, x: Tensor) -> tuple[Tensor, Tensor, float]:
    """The layer written token by token, for the tests' eyes only: each token's router logits, its k best
    experts (ordered in Python), softmax over those k logits (Mixtral), each chosen expert's FFN on that token
    alone. Capacity: pairs (token, choice) are admitted first choices first, then by token order, while the
    expert has room. Returns (output, aux_loss, dropped fraction)."""
    xf = x.reshape(-1, m.d_model)
    N, E, k = xf.shape[0], m.n_expert, m.top_k
    logits = [m.router.weight @ xf[n] for n in range(N)]  # N x (E,)
    choices = [sorted(range(E), key=lambda e, l=l: -l[e])[:k] for l in (l.detach().tolist() for l in logits)]
    cap = None if m.capacity_factor is None else math.ceil(m.capacity_factor * k * N / E)
    used, kept = [0] * E, set()
    for r in range(k):
        for n in range(N):
            e = choices[n][r]
            if cap is None or used[e] < cap:
                used[e] += 1
                kept.add((n, r))
    rows = []
    for n in range(N):
        gates = torch.softmax(torch.stack([logits[n][e] for e in choices[n]]), 0)
        y = torch.zeros(m.d_model, dtype=x.dtype, device=x.device)
        for r, e in enumerate(choices[n]):
            if (n, r) in kept:
                h = F.gelu(m.w1[e] @ xf[n] + m.b1[e])  # (H,)
                y = y + gates[r] * (m.w2[e] @ h + m.b2[e])  # (C,)
        rows.append(y)
    f = torch.tensor([sum(c.count(i) for c in choices) / (k * N) for i in range(E)], dtype=x.dtype, device=x.device)
    P = torch.stack([torch.softmax(l, 0) for l in logits]).mean(0)
    aux = m.aux_loss_weight * E * (f * P).sum()
    return torch.stack(rows).view(x.shape), aux, 1.0 - len(kept) / (k * N)


def forward_and_grads(fn, m: MoE, x: Tensor, seed: int = 99):
    out, aux = fn(x)[:2]
    loss = (out * randn(*out.shape, dtype=out.dtype, seed=seed, device=out.device)).sum() + 10.0 * aux
    return (out, aux, *torch.autograd.grad(loss, (x, *m.parameters())))


CASES = [(4, 1, None), (4, 2, None), (5, 3, None), (3, 3, None), (4, 2, 1.0), (4, 1, 0.5), (5, 2, 0.3)]


@pytest.mark.parametrize(("E", "k", "cf"), CASES, ids=[f"E{e}-k{k}-cf{c}" for e, k, c in CASES])
def test_equals_per_token_reference_float64(E, k, cf, device):
    m = moe(E, k, capacity_factor=cf, device=device)
    x = randn(3, 7, 5, seed=1, device=device).requires_grad_()
    ours = forward_and_grads(m, m, x)
    ref = forward_and_grads(lambda x: moe_ref(m, x), m, x)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, **F64)
    assert m(x).dropped.item() == pytest.approx(moe_ref(m, x)[2], abs=1e-12)
    if cf is not None and cf < 1:
        assert m(x).dropped > 0  # the case does exercise drops


@pytest.mark.parametrize(("E", "k", "cf"), [(4, 2, None), (5, 2, 0.3)], ids=["E4-k2", "E5-k2-cf0.3"])
def test_equals_per_token_reference_float32(E, k, cf):
    m = moe(E, k, dtype=torch.float32, capacity_factor=cf)
    x = randn(2, 9, 5, dtype=torch.float32, seed=2).requires_grad_()
    for a, b in zip(forward_and_grads(m, m, x), forward_and_grads(lambda x: moe_ref(m, x), m, x), strict=True):
        torch.testing.assert_close(a, b)


def test_load_balancing_loss_hand_worked_top1():
    """E = 2, k = 1, alpha = 0.01, router W_r = I, 4 tokens with logits (ln 3, 0), (ln 3, 0), (0, ln 3), (ln 3, 0).

    Router probabilities: (3/4, 1/4), (3/4, 1/4), (1/4, 3/4), (3/4, 1/4). Top-1 choices: 0, 0, 1, 0, so
    f = (3/4, 1/4). P = mean of the probabilities = ((3/4 + 3/4 + 1/4 + 3/4) / 4, (1/4 + 1/4 + 3/4 + 1/4) / 4)
    = (5/8, 3/8). sum f_i P_i = 15/32 + 3/32 = 9/16. Loss = alpha E sum = 0.01 * 2 * 9/16 = 0.01125.
    """
    m = MoE(2, 3, 2, 1, aux_loss_weight=0.01, dtype=torch.float64)
    with torch.no_grad():
        m.router.weight.copy_(torch.eye(2))
    l3 = math.log(3)
    x = torch.tensor([[l3, 0.0], [l3, 0.0], [0.0, l3], [l3, 0.0]], dtype=torch.float64)
    out = m(x)
    assert out.aux_loss.item() == pytest.approx(0.01125, rel=1e-12)
    torch.testing.assert_close(out.load, torch.tensor([0.75, 0.25], dtype=torch.float64), **F64)


def test_load_balancing_loss_hand_worked_top2():
    """E = 3, k = 2, alpha = 0.01, W_r = I, 2 tokens with logits (ln 4, ln 2, 0) and (0, ln 2, ln 4).

    Probabilities: (4, 2, 1)/7 and (1, 2, 4)/7. Top-2 choices: {0, 1} and {2, 1}: of the k N = 4 choices,
    expert 0 has 1, expert 1 has 2, expert 2 has 1, so f = (1/4, 1/2, 1/4). P = (5/14, 4/14, 5/14).
    sum f_i P_i = 5/56 + 8/56 + 5/56 = 9/28. Loss = 0.01 * 3 * 9/28 = 27/2800. Uniform routing would give alpha.
    Token 0's gates: softmax(ln 4, ln 2) = (2/3, 1/3), so its output is 2/3 E_0(x) + 1/3 E_1(x).
    """
    m = MoE(3, 4, 3, 2, aux_loss_weight=0.01, dtype=torch.float64)
    with torch.no_grad():
        m.router.weight.copy_(torch.eye(3))
    x = torch.tensor([[math.log(4), math.log(2), 0.0], [0.0, math.log(2), math.log(4)]], dtype=torch.float64)
    out = m(x)
    assert out.aux_loss.item() == pytest.approx(27 / 2800, rel=1e-12)
    torch.testing.assert_close(out.load, torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64), **F64)
    expert = [lambda v, e=e: m.w2[e] @ F.gelu(m.w1[e] @ v + m.b1[e]) + m.b2[e] for e in range(3)]
    torch.testing.assert_close(out.output[0], 2 / 3 * expert[0](x[0]) + 1 / 3 * expert[1](x[0]), **F64)


@pytest.mark.parametrize("bias", [True, False])
def test_one_expert_top1_is_the_dense_feed_forward(bias):
    """E = k = 1: the gate is 1 and the layer is nn.Linear -> GELU -> nn.Linear with the same weights, forward
    and backward; the balancing loss is alpha (f = P = 1)."""
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(5, 7, bias=bias), nn.GELU(), nn.Linear(7, 5, bias=bias)).double()
    m = MoE(5, 7, 1, 1, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        m.w1[0].copy_(dense[0].weight)
        m.w2[0].copy_(dense[2].weight)
        if bias:
            m.b1[0].copy_(dense[0].bias)
            m.b2[0].copy_(dense[2].bias)
    x = randn(2, 6, 5, seed=3).requires_grad_()
    out = m(x)
    torch.testing.assert_close(out.output, dense(x), **F64)
    assert out.aux_loss.item() == pytest.approx(m.aux_loss_weight, rel=1e-12)
    g = randn(2, 6, 5, seed=4)
    ours = torch.autograd.grad(out.output, (x, m.w1, m.w2), g)
    theirs = torch.autograd.grad(dense(x), (x, dense[0].weight, dense[2].weight), g)
    torch.testing.assert_close(ours[0], theirs[0], **F64)
    torch.testing.assert_close(ours[1][0], theirs[1], **F64)
    torch.testing.assert_close(ours[2][0], theirs[2], **F64)


def test_capacity_drops_later_tokens_and_they_pass_as_zero():
    """E = 2, k = 1, capacity factor 1: capacity ceil(1 * 1 * 4 / 2) = 2. All four tokens prefer expert 0:
    tokens 0 and 1 get it, tokens 2 and 3 are dropped (zero output: the residual carries them), half dropped."""
    m = MoE(2, 3, 2, 1, capacity_factor=1.0, dtype=torch.float64)
    with torch.no_grad():
        m.router.weight.copy_(torch.eye(2))
    x = torch.tensor([[2.0, 0.0], [1.0, 0.5], [3.0, -1.0], [1.5, 1.0]], dtype=torch.float64)
    out = m(x)
    assert m.capacity(4) == 2
    assert out.dropped.item() == 0.5
    assert torch.count_nonzero(out.output[:2].abs().sum(-1)) == 2
    assert torch.equal(out.output[2:], torch.zeros(2, 2, dtype=torch.float64))


def test_capacity_gives_first_choices_priority_over_second_choices():
    """E = 2, k = 2, capacity factor 0.5: capacity ceil(0.5 * 2 * 4 / 2) = 2 per expert. Tokens 0, 1 prefer
    expert 0 and tokens 2, 3 expert 1; each expert's two slots go to the tokens that chose it first, so every
    token keeps only its first choice, with its gate unchanged (not renormalised)."""
    m = MoE(2, 3, 2, 2, capacity_factor=0.5, dtype=torch.float64)
    with torch.no_grad():
        m.router.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.5, -0.5], [0.0, 1.0], [-1.0, 0.2]], dtype=torch.float64)
    out = m(x)
    assert out.dropped.item() == 0.5
    for n, first in enumerate([0, 0, 1, 1]):
        gate = torch.softmax(x[n], 0)[first]  # softmax over the top-2 = all logits here
        expected = gate * (m.w2[first] @ F.gelu(m.w1[first] @ x[n] + m.b1[first]) + m.b2[first])
        torch.testing.assert_close(out.output[n], expected, **F64)


def test_without_capacity_a_batch_equals_its_tokens_one_by_one():
    m = moe(5, 2)
    x = randn(4, 6, 5, seed=5)
    out = m(x).output
    one_by_one = torch.stack([m(x[b, t]).output for b in range(4) for t in range(6)]).view(4, 6, 5)
    torch.testing.assert_close(out, one_by_one, **F64)


def test_autocast_bfloat16_forward_and_backward():
    """Under CPU autocast: bfloat16 experts, a float32 router (the same choices as float64), output near float64,
    finite gradients everywhere, the router's included."""
    m = moe(4, 2, dtype=torch.float32)
    x = randn(3, 8, 5, dtype=torch.float32, seed=6).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x)
    assert out.output.dtype == torch.float32 and out.aux_loss.dtype == torch.float32
    (out.output.sum() + out.aux_loss).backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in m.parameters())
    assert m.router.weight.grad.abs().sum() > 0
    with torch.no_grad():
        ref = m.double()(x.detach().double()).output
    err = (out.output.double() - ref).abs().max() / ref.abs().max()
    assert err <= 2**-5  # bfloat16 (unit roundoff 2^-8) through two expert matmuls and the GELU


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kw", "message"),
    [
        ((5, 7, 4, 5), {}, r"^top_k: expected an integer in \[1, n_expert=4\], got 5"),
        ((5, 7, 4, 0), {}, r"^top_k: expected an integer in \[1, n_expert=4\], got 0"),
        ((5, 7, 0, 1), {}, r"^n_expert: expected an integer >= 1, got 0"),
        ((5, 0, 4, 1), {}, r"^d_hidden: expected an integer >= 1, got 0"),
        ((0, 7, 4, 1), {}, r"^d_model: expected an integer >= 1, got 0"),
        ((5, 7, 4, 1), {"capacity_factor": 0.0}, r"^capacity_factor: expected None or a number > 0, got 0.0"),
        ((5, 7, 4, 1), {"aux_loss_weight": -1.0}, r"^aux_loss_weight: expected a number >= 0, got -1.0"),
    ],
)
def test_constructor_errors_name_the_argument(args, kw, message):
    with pytest.raises(ValueError, match=message):
        MoE(*args, **kw)


def test_input_errors_name_the_argument():
    m = moe(4, 2)
    with pytest.raises(ValueError, match=r"^x: expected shape \(..., d_model=5\) with >= 1 token, got \(2, 3, 4\)"):
        m(torch.zeros(2, 3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^x: expected shape \(..., d_model=5\) with >= 1 token, got \(0, 5\)"):
        m(torch.zeros(0, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"^x: expected a floating-point tensor"):
        m(torch.zeros(2, 5, dtype=torch.int64))
