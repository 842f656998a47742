"""Exercise 3.3 ``multi_head_attention``: multi-head attention from given weights, against
``torch.nn.MultiheadAttention`` with the same weights (forward, input and weight gradients)."""

from __future__ import annotations

import functools

import torch

from attnlab.exercises.engine import Check, Exercise, Mistake
from attnlab.exercises.transformer import mha_common as mc
from attnlab.exercises.trial import Trial
from attnlab.nn.multihead import MultiHeadAttention


def multi_head_attention(
    query,
    key,
    value,
    in_proj_weight,
    in_proj_bias,
    out_proj_weight,
    out_proj_bias,
    num_heads,
    attn_mask=None,
    is_causal=False,
):
    """attnlab's MultiHeadAttention on these weights (mask convention: bool True = allowed)."""
    return mc.library_mha(
        query,
        key,
        value,
        in_proj_weight,
        in_proj_bias,
        out_proj_weight,
        out_proj_bias,
        num_heads,
        attn_mask=attn_mask,
        is_causal=is_causal,
    )


def _run(t: Trial, m, q, k, v, grad: bool = False, **kw) -> torch.Tensor:
    out = t.call(q, k, v, *mc.weights(m, grad), m.num_heads, **kw)
    return t.tensor(out, q.shape, q.dtype)


def _contract(t: Trial) -> None:
    m = mc.torch_mha(t, 16, 4)
    x = t.randn(2, 5, 16)
    _run(t, m, x, x, x)


def _self(t: Trial) -> None:
    m = mc.torch_mha(t, 24, 3)
    x = t.randn(2, 6, 24)
    t.close(_run(t, m, x, x, x), mc.torch_forward(m, x, x, x), "self-attention output against torch's layer")


def _cross(t: Trial) -> None:
    m = mc.torch_mha(t, 24, 4)
    q, kv = t.randn(2, 4, 24), t.randn(2, 7, 24)
    v = t.randn(2, 7, 24)
    t.close(_run(t, m, q, kv, v), mc.torch_forward(m, q, kv, v), "cross-attention output (T=4 queries, S=7 keys)")


def _bool_mask(t: Trial) -> None:
    m = mc.torch_mha(t, 16, 2)
    q, k = t.randn(2, 4, 16), t.randn(2, 6, 16)
    mask = t.bools(4, 6, p=0.6)
    mask[:, 0] = True
    t.close(_run(t, m, q, k, k, attn_mask=mask), mc.torch_forward(m, q, k, k, mask), "output with a (T, S) bool mask")


def _causal(t: Trial) -> None:
    m = mc.torch_mha(t, 16, 4)
    x = t.randn(2, 6, 16)
    want = mc.torch_forward(m, x, x, x, mc.bottom_right(6, 6))
    t.close(_run(t, m, x, x, x, is_causal=True), want, "self-attention output with is_causal=True")


def _gradients(t: Trial) -> None:
    m = mc.torch_mha(t, 16, 4)
    q, kv = t.randn(2, 5, 16).requires_grad_(), t.randn(2, 3, 16).requires_grad_()
    out = _run(t, m, q, kv, kv, grad=True)
    cot = t.randn(*out.shape)
    g = t.grad([out], t.args[:7], [cot])  # query, key, value, then the four weights
    got = [g[0], g[1] + g[2], *g[3:]]  # key and value are the same tensor
    q_, kv_ = q.detach().clone().requires_grad_(), kv.detach().clone().requires_grad_()
    params = [m.in_proj_weight, m.in_proj_bias, m.out_proj.weight, m.out_proj.bias]
    want = torch.autograd.grad([mc.torch_forward(m, q_, kv_, kv_)], [q_, kv_, *params], [cot])
    names = ("query", "key (= value)", "in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")
    for name, a, b in zip(names, got, want, strict=True):
        t.close(a, b, f"gradient of {name}")


def _odd(t: Trial) -> None:
    for B, T, S, E, nh in ((1, 1, 5, 59, 1), (1, 3, 1, 118, 2), (3, 1, 1, 8, 8)):
        m = mc.torch_mha(t, E, nh)
        q, k = t.randn(B, T, E), t.randn(B, S, E)
        t.close(_run(t, m, q, k, k), mc.torch_forward(m, q, k, k), f"output for B={B}, T={T}, S={S}, E={E}, {nh} heads")


def _batched(t: Trial) -> None:
    m = mc.torch_mha(t, 16, 4)
    x = t.randn(3, 5, 16)
    whole = _run(t, m, x, x, x)
    for b in range(3):
        one = _run(t, m, x[b : b + 1], x[b : b + 1], x[b : b + 1])
        t.close(one[0], whole[b], f"example {b} alone against the batch")


def _variant(**knobs):
    return functools.partial(mc.heads_attention, **knobs)


MISTAKES = (
    Mistake(
        "mha.split_no_transpose",
        "heads split with view but no transpose",
        "split (B, T, E) as .view(B, T, nh, hs).transpose(1, 2) -> (B, nh, T, hs); .view(B, nh, T, hs) directly "
        "cuts the sequence, not the features, into heads",
        _variant(split="view"),
    ),
    Mistake(
        "mha.merge_no_transpose",
        "heads merged without the transpose back",
        "merge (B, nh, T, hs) with .transpose(1, 2).reshape(B, T, E); a reshape alone mixes positions and heads",
        _variant(merge="reshape"),
    ),
    Mistake(
        "mha.merge_order",
        "heads merged in the wrong order",
        "concatenate the heads one after the other (head 0's hs values, then head 1's): (B, nh, T, hs) -> "
        ".transpose(1, 2) -> (B, T, nh, hs) -> reshape; permuting to (B, T, hs, nh) interleaves them",
        _variant(merge="interleave"),
    ),
    Mistake(
        "mha.scale_embed",
        "scaled by the model width",
        "each head works in hs = E / num_heads dimensions: scale by 1/sqrt(hs), not 1/sqrt(E)",
        _variant(scale_by="embed"),
    ),
    Mistake(
        "mha.no_out_proj",
        "the output projection is missing",
        "after concatenating the heads, apply W^O: y @ out_proj_weight.T + out_proj_bias",
        _variant(out_proj=False),
    ),
    Mistake(
        "mha.weight_not_transposed",
        "projection weights not transposed",
        "torch stores a Linear weight as (out_features, in_features): project with x @ W.T + b (F.linear(x, W, b))",
        _variant(transpose_weights=False),
    ),
    Mistake(
        "mha.mask_polarity",
        "mask polarity inverted",
        "a bool attn_mask is True where attention is ALLOWED here (torch.nn.MultiheadAttention's own attn_mask is "
        "the opposite); fill where it is False",
        _variant(polarity=False),
    ),
)

EXERCISE = Exercise(
    name="multi_head_attention",
    section="3.3",
    title="Multi-head attention from given weights",
    task=(
        "Project query, key and value with in_proj_weight = W^Q|W^K|W^V (3E, E) and in_proj_bias; split each into "
        "num_heads heads of size hs = E / num_heads; attend in every head at once (scaled dot-product attention; "
        "you may call torch.nn.functional.scaled_dot_product_attention or your own); concatenate the heads and "
        "apply the output projection. Batch first. A bool attn_mask is True where attention is allowed (the "
        "opposite of torch.nn.MultiheadAttention's), a float one is added; is_causal: query i sees keys j <= i."
    ),
    equation="MultiHead(Q, K, V) = Concat(head_1..head_h) W^O, head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)",
    shapes=(
        "query (B, T, E), key and value (B, S, E); in_proj_weight (3E, E), in_proj_bias (3E,), out_proj_weight "
        "(E, E), out_proj_bias (E,); attn_mask broadcastable to (B, nh, T, S)"
    ),
    returns="the output (B, T, E)",
    reference=multi_head_attention,
    solution=(multi_head_attention, MultiHeadAttention.forward),
    checks=(
        Check("shape and dtype", "(2, 5, 16), 4 heads, gives (2, 5, 16)", "", _contract),
        Check("self-attention against torch", "torch.nn.MultiheadAttention with the same weights", "", _self),
        Check("cross-attention, T != S", "4 queries over 7 keys, different values", "", _cross),
        Check("bool mask", "a (T, S) bool mask, True = allowed", "", _bool_mask),
        Check("is_causal", "self-attention, query i sees keys j <= i", "", _causal),
        Check("gradients", "input and weight gradients against torch's layer", "", _gradients),
        Check("odd shapes", "head size 59, one head, T = 1, S = 1, batch 1", "", _odd),
        Check("batched = one by one", "each example alone gives its row of the batch", "", _batched),
    ),
    mistakes=MISTAKES,
    forbidden=(
        "torch.nn.functional.multi_head_attention_forward",
        "torch.nn.MultiheadAttention",
        "attnlab.nn.MultiHeadAttention",
    ),
)
