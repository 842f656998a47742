"""Known wrong LayerNorms and pre-norm blocks (kept as code for the diagnosis), and the block's parameter names."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.exercises.engine import Mistake

# the exercise's params keys -> the parameter names of torch.nn.TransformerEncoderLayer (and of the library's twin)
PARAM_NAMES = {
    "ln1_weight": "norm1.weight",
    "ln1_bias": "norm1.bias",
    "in_proj_weight": "self_attn.in_proj_weight",
    "in_proj_bias": "self_attn.in_proj_bias",
    "out_proj_weight": "self_attn.out_proj.weight",
    "out_proj_bias": "self_attn.out_proj.bias",
    "ln2_weight": "norm2.weight",
    "ln2_bias": "norm2.bias",
    "w1": "linear1.weight",
    "b1": "linear1.bias",
    "w2": "linear2.weight",
    "b2": "linear2.bias",
}


def _norm(x: Tensor, weight: Tensor, bias: Tensor | None, eps: float, *, unbiased=False, eps_outside=False, dim=-1):
    mean = x.mean(dim, keepdim=True)
    var = x.var(dim, keepdim=True, unbiased=unbiased)
    z = (x - mean) / (torch.sqrt(var) + eps) if eps_outside else (x - mean) / torch.sqrt(var + eps)
    return z * weight if bias is None else z * weight + bias


def _ln_variant(*, drop_bias: bool = False, **knobs):
    def layer_norm(x, weight, bias, eps=1e-5):
        return _norm(x, weight, None if drop_bias else bias, eps, **knobs)

    return layer_norm


LN_MISTAKES = (
    Mistake(
        "ln.unbiased",
        "LayerNorm with the unbiased variance",
        "LayerNorm divides the sum of squares by C, not C - 1: x.var(-1, unbiased=False) (torch.std/var default to "
        "the unbiased estimate; the Annotated Transformer's LayerNorm has this bug)",
        _ln_variant(unbiased=True),
    ),
    Mistake(
        "ln.eps_outside",
        "eps outside the square root",
        "divide by sqrt(var + eps), not sqrt(var) + eps: it matters when a row's variance is near eps",
        _ln_variant(eps_outside=True),
    ),
    Mistake(
        "ln.wrong_axis",
        "normalised over the batch instead of the features",
        "LayerNorm normalises each vector over its own last dimension (dim=-1); statistics over dim 0 are BatchNorm's",
        _ln_variant(dim=0),
    ),
    Mistake(
        "ln.no_bias",
        "the bias is missing",
        "after scaling by weight, add bias: y = x_hat * weight + bias",
        _ln_variant(drop_bias=True),
    ),
)


def _block(
    x,
    params,
    num_heads,
    is_causal=False,
    *,
    post_norm=False,
    residual_from_norm=False,
    same_norm=False,
    activation="gelu",
    unbiased=False,
    ffn_bias=True,
):
    """A pre-norm block written out (batch first), with one knob per known mistake."""
    p = params
    B, T, E = x.shape
    hs = E // num_heads

    def ln(y: Tensor, i: int) -> Tensor:
        i = 1 if same_norm else i
        return _norm(y, p[f"ln{i}_weight"], p[f"ln{i}_bias"], 1e-5, unbiased=unbiased)

    def attention(y: Tensor) -> Tensor:
        q, k, v = F.linear(y, p["in_proj_weight"], p["in_proj_bias"]).split(E, dim=2)  # (B, T, E) each
        q, k, v = (z.view(B, T, num_heads, hs).transpose(1, 2) for z in (q, k, v))  # (B, nh, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T)
        if is_causal:
            scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        z = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(B, T, E)  # (B, T, E)
        return F.linear(z, p["out_proj_weight"], p["out_proj_bias"])

    def ffn(y: Tensor) -> Tensor:
        act = {"gelu": F.gelu, "relu": F.relu, "tanh": functools.partial(F.gelu, approximate="tanh")}[activation]
        return F.linear(act(F.linear(y, p["w1"], p["b1"])), p["w2"], p["b2"] if ffn_bias else None)

    if post_norm:
        x = ln(x + attention(x), 1)
        return ln(x + ffn(x), 2)
    h = ln(x, 1)
    x = (h if residual_from_norm else x) + attention(h)
    h = ln(x, 2)
    return (h if residual_from_norm else x) + ffn(h)


def _block_variant(**knobs):
    def transformer_block(x, params, num_heads, is_causal=False):
        return _block(x, params, num_heads, is_causal, **knobs)

    return transformer_block


BLOCK_MISTAKES = (
    Mistake(
        "block.post_norm",
        "post-norm instead of pre-norm",
        "pre-norm normalises the input of each sublayer and adds the raw x back: x = x + SA(LN1(x)); the paper's "
        "post-norm LN1(x + SA(x)) is the other placement",
        _block_variant(post_norm=True),
    ),
    Mistake(
        "block.residual_from_norm",
        "the residual taken from the normalised x",
        "add the sublayer's output to x itself, x + SA(LN1(x)), not to LN1(x): the residual path must stay an identity",
        _block_variant(residual_from_norm=True),
    ),
    Mistake(
        "block.same_norm",
        "LN1 used for both sublayers",
        "the feed-forward sublayer has its own LayerNorm: FFN(LN2(x)) with ln2_weight and ln2_bias",
        _block_variant(same_norm=True),
    ),
    Mistake(
        "block.relu",
        "ReLU instead of GELU",
        "the feed-forward uses the exact GELU (F.gelu(x), x Phi(x)), not ReLU",
        _block_variant(activation="relu"),
    ),
    Mistake(
        "block.gelu_tanh",
        "the tanh approximation of GELU",
        "use the exact GELU, F.gelu(x) (approximate='none'), as torch's activation='gelu' does; the tanh form "
        "differs by up to ~1e-3",
        _block_variant(activation="tanh"),
    ),
    Mistake(
        "block.ln_unbiased",
        "LayerNorm with the unbiased variance",
        "LayerNorm divides by C, not C - 1 (x.var(-1, unbiased=False)); or call F.layer_norm",
        _block_variant(unbiased=True),
    ),
    Mistake(
        "block.ffn_no_bias",
        "the second feed-forward bias is missing",
        "FFN(x) = W2 GELU(W1 x + b1) + b2: add b2 too",
        _block_variant(ffn_bias=False),
    ),
)
