"""Exercise 3.3 ``kv_cache_step``: one decoding step of multi-head self-attention with a KV cache, checked
against a full causal forward of ``torch.nn.MultiheadAttention`` over the whole sequence (cached = full)."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.exercises.engine import Check, Exercise, Mistake
from attnlab.exercises.transformer import mha_common as mc
from attnlab.exercises.trial import Trial
from attnlab.functional.masks import AttentionMask
from attnlab.nn.caches import KVCache
from attnlab.nn.multihead import MultiHeadAttention


def kv_cache_step(x, cache_k, cache_v, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads):
    """The library's MultiHeadAttention with its KVCache holding the cached keys and values."""
    E = x.shape[-1]
    layer = MultiHeadAttention(E, num_heads, impl="naive", dtype=x.dtype)
    weights = {"in_proj_weight": in_proj_weight, "in_proj_bias": in_proj_bias}
    weights.update({"out_proj.weight": out_proj_weight, "out_proj.bias": out_proj_bias})
    layer.load_state_dict(weights)
    cache = KVCache()
    with torch.no_grad():
        if cache_k.shape[2] > 0:
            cache.update(cache_k, cache_v)
        y = layer(x, cache=cache, attn_mask=AttentionMask(causal="lower_right")).output  # queries: the last T of S
        k, v = cache.update(cache_k[:, :, :0], cache_v[:, :, :0])  # appending nothing returns all (B, nh, S, hs)
    return y, k, v


def _keys_values(m, x: Tensor) -> tuple[Tensor, Tensor]:
    """The oracle's projected keys and values of every position, (B, nh, N, hs) each."""
    B, N, E = x.shape
    nh = m.num_heads
    _, w_k, w_v = m.in_proj_weight.detach().chunk(3)
    _, b_k, b_v = m.in_proj_bias.detach().chunk(3)
    split = lambda y: y.view(B, N, nh, E // nh).transpose(1, 2)  # noqa: E731  (B, N, E) -> (B, nh, N, hs)
    return split(F.linear(x, w_k, b_k)), split(F.linear(x, w_v, b_v))


def _full(m, x: Tensor) -> Tensor:
    N = x.shape[1]
    return mc.torch_forward(m, x, x, x, mc.bottom_right(N, N)).detach()  # (B, N, E)


def _step(t: Trial, m, x: Tensor, past_k: Tensor, past_v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    B, T, E = x.shape
    S = past_k.shape[2] + T
    y, k, v = t.parts(t.call(x, past_k, past_v, *mc.weights(m), m.num_heads), 3)
    hs = E // m.num_heads
    t.tensor(y, (B, T, E), x.dtype, "output")
    t.tensor(k, (B, m.num_heads, S, hs), x.dtype, "returned keys")
    t.tensor(v, (B, m.num_heads, S, hs), x.dtype, "returned values")
    return y, k, v


def _after_cache(t: Trial, B: int, E: int, nh: int, past: int, block: int) -> None:
    m = mc.torch_mha(t, E, nh)
    N = past + block
    x = t.randn(B, N, E)
    K, V = _keys_values(m, x)
    y, k, v = _step(t, m, x[:, past:], K[:, :, :past], V[:, :, :past])
    where = f"{block} new token(s) after {past} cached"
    t.close(k, K, f"returned keys ({where}): the cached ones, then the new ones")
    t.close(v, V, f"returned values ({where})")
    t.close(y, _full(m, x)[:, past:], f"output ({where}) against the full causal forward")


def _contract(t: Trial) -> None:
    m = mc.torch_mha(t, 16, 4)
    _step(t, m, t.randn(2, 1, 16), t.randn(2, 4, 3, 4), t.randn(2, 4, 3, 4))


def _decoding(t: Trial) -> None:
    m = mc.torch_mha(t, 16, 4)
    x = t.randn(2, 8, 16)
    y, k, v = _step(t, m, x[:, :3], x.new_zeros(2, 4, 0, 4), x.new_zeros(2, 4, 0, 4))  # prefill 3 tokens
    outs = [y]
    for i in range(3, 8):  # then one token at a time, on the caches it returned
        y, k, v = _step(t, m, x[:, i : i + 1], k, v)
        outs.append(y)
    t.close(torch.cat(outs, 1), _full(m, x), "outputs of prefill + 5 cached steps against one full causal forward")


def _attention(
    x,
    cache_k,
    cache_v,
    w_in,
    b_in,
    w_out,
    b_out,
    num_heads,
    *,
    mask="bottom_right",
    new_key=True,
    keep=True,
    prepend=False,
):
    """One cached step written out, with the knobs of the known mistakes."""
    B, T, E = x.shape
    hs = E // num_heads
    q, k, v = F.linear(x, w_in, b_in).split(E, dim=2)  # (B, T, E) each
    q, k, v = (y.view(B, T, num_heads, hs).transpose(1, 2) for y in (q, k, v))  # (B, nh, T, hs)
    if not keep:
        cache_k, cache_v = cache_k[:, :, :0], cache_v[:, :, :0]
    k_all = torch.cat([k, cache_k] if prepend else [cache_k, k], 2)  # (B, nh, S, hs)
    v_all = torch.cat([v, cache_v] if prepend else [cache_v, v], 2)
    keys, values = (k_all, v_all) if new_key else (cache_k, cache_v)
    scores = q @ keys.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, S)
    T_, S = scores.shape[-2:]
    if mask == "bottom_right" and new_key:
        scores = scores.masked_fill(~mc.bottom_right(T_, S), float("-inf"))
    elif mask == "top_left":
        scores = scores.masked_fill(~torch.ones(T_, S, dtype=torch.bool).tril(), float("-inf"))
    y = torch.softmax(scores, -1) @ values if S else scores.new_zeros(B, num_heads, T, hs)
    y = y.transpose(1, 2).reshape(B, T, E)  # (B, T, E)
    return F.linear(y, w_out, b_out), k_all, v_all


def _variant(**knobs):
    return functools.partial(_attention, **knobs)


MISTAKES = (
    Mistake(
        "kv.top_left",
        "top-left causal mask after a cache",
        "the new queries are the LAST T positions: query i may see keys j <= S - T + i (bottom-right). torch's "
        "is_causal=True (and tril on a (T, S) matrix) is top-left: one decoded token would see only key 0",
        _variant(mask="top_left"),
    ),
    Mistake(
        "kv.no_new_key",
        "the new token does not attend itself",
        "append the new keys and values to the cache BEFORE attending: the new token is one of the keys",
        _variant(new_key=False),
    ),
    Mistake(
        "kv.cache_replaced",
        "the cache replaced instead of extended",
        "torch.cat([cache_k, k_new], dim=2): keep every earlier position's keys and values",
        _variant(keep=False),
    ),
    Mistake(
        "kv.no_mask",
        "no causal mask inside a block of new tokens",
        "with T > 1 new tokens (a prefill), each must not see the new tokens after it: mask keys j > S - T + i",
        _variant(mask="none"),
    ),
    Mistake(
        "kv.prepend",
        "new keys put before the cached ones",
        "append at the end, torch.cat([cache, new], dim=2): positions stay in order, and the causal mask and the "
        "next step rely on it",
        _variant(prepend=True),
    ),
)

EXERCISE = Exercise(
    name="kv_cache_step",
    section="3.3",
    title="One decoding step with a KV cache",
    task=(
        "Self-attention for T new tokens x (T = 1 when decoding one token, T > 1 for a prefill) given the keys "
        "and values of the S_past earlier positions (cache_k, cache_v; S_past may be 0). Project x to q, k, v "
        "(in_proj_weight = W^Q|W^K|W^V), split heads, append the new k, v to the cache, attend causally (the new "
        "queries are the last T of the S = S_past + T positions: bottom-right), merge heads, project out. Return "
        "the output and the extended cache."
    ),
    equation=(
        "K = [K_cache ; x W^K], V = [V_cache ; x W^V];  y = softmax(x W^Q K^T / sqrt(hs) + M) V W^O, "
        "M[i, j] = 0 if j <= S - T + i else -inf"
    ),
    shapes=(
        "x (B, T, E); cache_k, cache_v (B, nh, S_past, hs); weights as multi_head_attention's; returns y (B, T, E), "
        "k and v (B, nh, S_past + T, hs)"
    ),
    returns="a tuple (y, k, v)",
    reference=kv_cache_step,
    solution=(kv_cache_step, MultiHeadAttention.forward, KVCache.update, AttentionMask.tile),
    checks=(
        Check("shape and dtype", "one token after 3 cached: (2, 1, 16) and (2, 4, 4, 4) caches", "", _contract),
        Check(
            "prefill (empty cache)",
            "5 tokens, nothing cached: a causal self-attention",
            "",
            lambda t: _after_cache(t, 2, 16, 2, 0, 5),
        ),
        Check(
            "one token after a cache", "token 7 after 6 cached positions", "", lambda t: _after_cache(t, 2, 16, 4, 6, 1)
        ),
        Check("a block after a cache", "3 new tokens after 5 cached", "", lambda t: _after_cache(t, 2, 24, 3, 5, 3)),
        Check(
            "cached decoding = full forward",
            "prefill 3, then 5 single steps on the caches returned: one full causal forward",
            "",
            _decoding,
        ),
        Check("odd shapes", "batch 1, one head of size 59", "", lambda t: _after_cache(t, 1, 59, 1, 4, 1)),
    ),
    mistakes=MISTAKES,
    forbidden=("torch.nn.functional.multi_head_attention_forward", "torch.nn.MultiheadAttention"),
)
