"""Grouped-query and multi-query attention in MultiHeadAttention (``num_kv_heads``).

Two oracles: torch's ``scaled_dot_product_attention(..., enable_gqa=True)`` on our projections, and
``torch.nn.MultiheadAttention`` loaded with our weights after the definition in torch's documentation, each key
and value head's rows ``repeat_interleave``-d for the query heads of its group (its gradients for the repeated
rows, summed over the group, are ours). Then cached decoding (growing, rolling window, static) against the full
forward, the cache's size, the state-dict layout, autocast, errors.

Shapes: B batch, T queries, S keys, E = 160 model width, nh query heads of hs = 40, n_kv key/value heads.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.functional import AttentionMask
from attnlab.nn import KVCache, MultiHeadAttention, StaticKVCache
from attnlab.nn.rolling_cache import RollingKVCache

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = {"rtol": 1e-10, "atol": 1e-12}
HEADS = [(4, 2), (4, 1), (4, 4), (2, 1)]  # (nh, n_kv): GQA, MQA, MHA spelled out, MQA with 2 heads (hs 80)


def randn(*shape: int, dtype=torch.float64, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def gqa(nh: int, n_kv: int, *, dtype=torch.float64, device="cpu", bias=True, seed=0, **kw) -> MultiHeadAttention:
    torch.manual_seed(seed)
    m = MultiHeadAttention(160, nh, bias=bias, num_kv_heads=n_kv, dtype=dtype, device=device, **kw)
    if bias:
        with torch.no_grad():
            m.in_proj_bias.normal_(0, 0.5)
            m.out_proj.bias.normal_(0, 0.5)
    return m


def torch_twin(m: MultiHeadAttention) -> nn.MultiheadAttention:
    """torch's MultiheadAttention with every kv head's rows repeated for its G query heads (torch's definition)."""
    G, hs = m.num_heads // m.num_kv_heads, m.head_dim
    w_q, w_k, w_v = m._projections()
    b_q, b_k, b_v = m._biases()

    def rep(w):  # (n_kv * hs, ...) -> (nh * hs, ...): head j's rows once for each of its G query heads
        return w.unflatten(0, (m.num_kv_heads, hs)).repeat_interleave(G, 0).flatten(0, 1)

    w = m.out_proj.weight
    theirs = nn.MultiheadAttention(160, m.num_heads, bias=b_q is not None, batch_first=True, dtype=w.dtype)
    theirs = theirs.to(w.device)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([w_q, rep(w_k), rep(w_v)]))
        theirs.out_proj.weight.copy_(w)
        if b_q is not None:
            theirs.in_proj_bias.copy_(torch.cat([b_q, rep(b_k), rep(b_v)]))
            theirs.out_proj.bias.copy_(m.out_proj.bias)
    return theirs


def grouped_grads(m: MultiHeadAttention, theirs: nn.MultiheadAttention) -> list[Tensor]:
    """torch's parameter gradients mapped onto ours: repeated rows summed over their group."""
    E, G, hs = 160, m.num_heads // m.num_kv_heads, m.head_dim

    def fold(g):  # (nh * hs, ...) -> (n_kv * hs, ...)
        return g.unflatten(0, (m.num_kv_heads, G, hs)).sum(1).flatten(0, 1)

    gw = theirs.in_proj_weight.grad
    out = [gw[:E], fold(gw[E : 2 * E]), fold(gw[2 * E :])]
    if m.in_proj_bias is not None:
        gb = theirs.in_proj_bias.grad
        out.append(torch.cat([gb[:E], fold(gb[E : 2 * E]), fold(gb[2 * E :])]))
    out.append(theirs.out_proj.weight.grad)
    if m.out_proj.bias is not None:
        out.append(theirs.out_proj.bias.grad)
    return out


def our_grads(m: MultiHeadAttention) -> list[Tensor]:
    out = [m.q_proj_weight.grad, m.k_proj_weight.grad, m.v_proj_weight.grad]
    if m.in_proj_bias is not None:
        out.append(m.in_proj_bias.grad)
    out.append(m.out_proj.weight.grad)
    if m.out_proj.bias is not None:
        out.append(m.out_proj.bias.grad)
    return out


CASES = {
    "self-causal-T7": (7, None, "causal"),
    "self-T1": (1, None, "none"),
    "cross-T5-S9-keymask": (5, 9, "key_mask"),
}


@pytest.mark.parametrize(("nh", "n_kv"), [(4, 2), (4, 1), (2, 1)], ids=["gqa", "mqa", "mqa-hs80"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", ["naive", "manual", "chunked", "torch"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_equals_torch_multihead_with_repeated_kv_heads(nh, n_kv, case, impl, dtype, device):
    """Forward, input gradients and every parameter gradient, against torch.nn.MultiheadAttention."""
    T, S, kind = CASES[case]
    m = gqa(nh, n_kv, dtype=dtype, device=device, impl=impl)
    theirs = torch_twin(m)
    x = randn(2, T, 160, dtype=dtype, seed=1, device=device).requires_grad_()
    kv = None if S is None else randn(2, S, 160, dtype=dtype, seed=2, device=device).requires_grad_()
    ours_kw, their_kw = {}, {}
    if kind == "causal":
        ours_kw["is_causal"] = True
        their_kw["attn_mask"] = ~torch.ones(T, T, dtype=torch.bool, device=device).tril()  # torch: True = masked
    if kind == "key_mask":
        keep = torch.tensor([[True] * S, [True] * 4 + [False] * (S - 4)], device=device)
        ours_kw["key_mask"], their_kw["key_padding_mask"] = keep, ~keep
    ins = (x,) if kv is None else (x, kv, kv)
    y = m(*ins, **ours_kw).output
    y_ref = theirs(*((x, x, x) if kv is None else (x, kv, kv)), need_weights=False, **their_kw)[0]
    g = randn(*y.shape, dtype=dtype, seed=3, device=device)
    inputs = (x,) if kv is None else (x, kv)
    ours = torch.autograd.grad(y, inputs, g, retain_graph=True)
    ref = torch.autograd.grad(y_ref, inputs, g, retain_graph=True)
    y.backward(g)
    y_ref.backward(g)
    tol = F64 if dtype == torch.float64 else {}
    torch.testing.assert_close(y, y_ref, **tol)
    for a, b in zip([*ours, *our_grads(m)], [*ref, *grouped_grads(m, theirs)], strict=True):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize(("nh", "n_kv"), [(4, 2), (4, 1)], ids=["gqa", "mqa"])
@pytest.mark.parametrize("rotary", [False, True])
def test_equals_torch_sdpa_enable_gqa_on_our_projections(nh, n_kv, rotary, device):
    """The second oracle, with rotary positions: q, k, v from our weights, torch's own enable_gqa kernel."""
    from attnlab.nn.positional import apply_rotary

    m = gqa(nh, n_kv, device=device, rotary=rotary)
    x = randn(3, 11, 160, seed=4, device=device)
    w_q, w_k, w_v = m._projections()
    b_q, b_k, b_v = m._biases()
    q = F.linear(x, w_q, b_q).view(3, 11, nh, 40).transpose(1, 2)  # (B, nh, T, hs)
    k = F.linear(x, w_k, b_k).view(3, 11, n_kv, 40).transpose(1, 2)  # (B, n_kv, T, hs)
    v = F.linear(x, w_v, b_v).view(3, 11, n_kv, 40).transpose(1, 2)
    if rotary:
        q, k = apply_rotary(q), apply_rotary(k)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    ref = m.out_proj(y.transpose(1, 2).reshape(3, 11, 160))
    torch.testing.assert_close(m(x, is_causal=True).output, ref, **F64)


def decode(m, x, cache, mask, schedule):
    outs, t = [], 0
    for n in schedule:
        outs.append(m(x[:, t : t + n], attn_mask=mask, cache=cache).output)
        t += n
    return torch.cat(outs, 1)


@pytest.mark.parametrize(("nh", "n_kv"), [(4, 2), (4, 1)], ids=["gqa", "mqa"])
@pytest.mark.parametrize("cache_kind", ["growing", "rolling-w3", "static", "static-w3"])
@pytest.mark.parametrize("rotary", [False, True])
def test_cached_decoding_equals_the_full_forward(nh, n_kv, cache_kind, rotary, device):
    """A prompt of 4, single tokens, a chunk of 3, single tokens (14 positions): the outputs of the full causal
    forward (windowed for the rolling and windowed static caches), position by position."""
    m = gqa(nh, n_kv, device=device, rotary=rotary)
    x = randn(2, 14, 160, seed=5, device=device)
    window = 3 if cache_kind.endswith("w3") else None
    mask = AttentionMask(causal="lower_right", window=window)
    full = m(x, attn_mask=mask).output
    if cache_kind.startswith("static"):  # a prompt, then single tokens; the decoder advances the shared position
        position = torch.zeros((), dtype=torch.long, device=device)
        cache = StaticKVCache(16, position)
        outs, t = [], 0
        for n in (4,) + (1,) * 10:
            outs.append(m(x[:, t : t + n], attn_mask=mask, cache=cache).output)
            position.add_(n)
            t += n
        got = torch.cat(outs, 1)
    else:
        cache = KVCache(capacity=4) if cache_kind == "growing" else RollingKVCache(3)
        got = decode(m, x, cache, mask, (4, 1, 1, 1, 3, 1, 1, 1, 1))
    keys = cache._k if isinstance(cache._k, Tensor) else cache._k._buf  # a rolling cache keeps a RollingBuffer
    assert keys.shape[1] == n_kv  # the kv heads only
    torch.testing.assert_close(got, full, **F64)


@pytest.mark.parametrize(("nh", "n_kv"), HEADS)
def test_the_cache_holds_only_the_kv_heads(nh, n_kv):
    """Measured from the cache's tensors: 2 n_kv hs numbers per token, nh / n_kv times less than MHA's 2 nh hs."""
    m = gqa(nh, n_kv, dtype=torch.float32)
    cache = KVCache(capacity=10)
    for t in range(10):
        m(randn(3, 1, 160, dtype=torch.float32, seed=t), attn_mask=AttentionMask(causal="lower_right"), cache=cache)
    per_token = cache.nbytes() / (3 * 10 * 4)  # batch 3, 10 positions (the capacity), 4-byte floats
    assert per_token == 2 * n_kv * (160 // nh)


def test_state_dict_layout():
    """num_kv_heads None or = num_heads: torch's packed layout (loads torch's state dict); fewer: separate
    projections of shapes (E, E), (n_kv hs, E), (n_kv hs, E) and one bias of E + 2 n_kv hs."""
    torch_keys = list(nn.MultiheadAttention(160, 4, batch_first=True).state_dict())
    for n_kv in (None, 4):
        assert list(MultiHeadAttention(160, 4, num_kv_heads=n_kv).state_dict()) == torch_keys
    shapes = {k: tuple(v.shape) for k, v in MultiHeadAttention(160, 4, num_kv_heads=2).state_dict().items()}
    assert shapes == {
        "q_proj_weight": (160, 160),
        "k_proj_weight": (80, 160),
        "v_proj_weight": (80, 160),
        "in_proj_bias": (320,),
        "out_proj.weight": (160, 160),
        "out_proj.bias": (160,),
    }
    mqa = MultiHeadAttention(160, 4, bias=False, num_kv_heads=1, kdim=24, vdim=8)
    assert {k: tuple(v.shape) for k, v in mqa.state_dict().items()} == {
        "q_proj_weight": (160, 160),
        "k_proj_weight": (40, 24),
        "v_proj_weight": (40, 8),
        "out_proj.weight": (160, 160),
    }


def test_under_autocast_bfloat16_forward_and_backward():
    m = gqa(4, 1, dtype=torch.float32)
    x = randn(2, 6, 160, dtype=torch.float32, seed=6).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x, is_causal=True).output
    assert y.dtype == torch.bfloat16
    grads = torch.autograd.grad(y.float().square().sum(), (x, m.k_proj_weight, m.v_proj_weight))
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    y32 = m(x, is_causal=True).output
    assert (y.float() - y32).abs().max() < 0.03 * y32.abs().max()


@pytest.mark.parametrize("n_kv", [3, 0, 8, True, 2.0])
def test_error_num_kv_heads_not_dividing_num_heads(n_kv):
    with pytest.raises(ValueError, match=rf"num_kv_heads: expected None or a divisor of num_heads=4, got {n_kv!r}"):
        MultiHeadAttention(160, 4, num_kv_heads=n_kv)


def test_error_rolling_cache_with_another_mask():
    m = gqa(4, 2)
    with pytest.raises(ValueError, match=r"attn_mask: a rolling cache of window 3 needs AttentionMask"):
        m(randn(1, 2, 160), attn_mask=AttentionMask(causal="lower_right"), cache=RollingKVCache(3))
