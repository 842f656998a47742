"""Exercises 3.3 ``layer_norm`` and ``transformer_block``: LayerNorm from scratch against
``torch.nn.functional.layer_norm``, and a pre-norm block against ``torch.nn.TransformerEncoderLayer(norm_first=True)``
with the same weights (forward, input and weight gradients)."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.exercises.engine import Check, Exercise
from attnlab.exercises.transformer import block_mistakes as bm
from attnlab.exercises.transformer.mha_common import bottom_right
from attnlab.exercises.trial import Trial
from attnlab.nn.transformer import TransformerEncoderLayer


def layer_norm(x, weight, bias, eps=1e-5):
    """From scratch (the library uses torch.nn.LayerNorm itself): biased variance, eps inside the square root."""
    mean = x.mean(-1, keepdim=True)  # (..., 1)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # divided by C, not C - 1, as torch does
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def transformer_block(x, params, num_heads, is_causal=False):
    """The library's TransformerEncoderLayer (pre-norm, GELU) run on these weights."""
    E, Fw = x.shape[-1], params["w1"].shape[0]
    with torch.device("meta"):
        layer = TransformerEncoderLayer(E, num_heads, Fw, 0.0, "gelu", norm_first=True, impl="naive")
    names = {f"{ours}": params[key] for key, ours in bm.PARAM_NAMES.items()}
    return torch.func.functional_call(layer, names, (x,), {"is_causal": is_causal})[0]


# --- layer_norm checks -----------------------------------------------------------------------------------------


def _ln_inputs(t: Trial, *shape: int, dtype=torch.float32, loc=3.0, scale=2.0, grad=False):
    C = shape[-1]
    x = (t.randn(*shape, dtype=dtype, scale=scale) + loc).requires_grad_(grad)
    w = (t.randn(C, dtype=dtype, scale=0.5) + 1).requires_grad_(grad)
    b = t.randn(C, dtype=dtype, scale=0.5).requires_grad_(grad)
    return x, w, b


def _ln(t: Trial, x: Tensor, w: Tensor, b: Tensor, eps: float | None = None) -> Tensor:
    out = t.call(x, w, b) if eps is None else t.call(x, w, b, eps=eps)
    return t.tensor(out, x.shape, x.dtype)


def _ln_contract(t: Trial) -> None:
    _ln(t, *_ln_inputs(t, 2, 5, 16))


def _ln_torch(t: Trial) -> None:
    x, w, b = _ln_inputs(t, 2, 5, 32)
    t.close(_ln(t, x, w, b), F.layer_norm(x, (32,), w, b), "output against torch.nn.functional.layer_norm")


def _ln_small(t: Trial) -> None:
    x, w, b = _ln_inputs(t, 3, 4, 24, loc=0.0, scale=0.003)  # variance ~1e-5, as large as eps
    t.close(_ln(t, x, w, b), F.layer_norm(x, (24,), w, b), "output for rows whose variance is near eps")
    t.close(_ln(t, x, w, b, eps=0.01), F.layer_norm(x, (24,), w, b, eps=0.01), "output with eps=0.01")


def _ln_grads(t: Trial) -> None:
    x, w, b = _ln_inputs(t, 2, 3, 16, grad=True)
    out = _ln(t, x, w, b)
    cot = t.randn(*out.shape)
    got = t.grad([out], t.args, [cot])
    want = torch.autograd.grad([F.layer_norm(x, (16,), w, b)], [x, w, b], [cot])
    for name, g, wg in zip(("x", "weight", "bias"), got, want, strict=True):
        t.close(g, wg, f"gradient of {name}")


def _ln_odd(t: Trial) -> None:
    for shape in ((1, 1, 59), (7, 3), (2, 1)):
        x, w, b = _ln_inputs(t, *shape, dtype=torch.float64)
        t.close(_ln(t, x, w, b), F.layer_norm(x, shape[-1:], w, b), f"output for x of shape {shape}, float64")


LAYER_NORM = Exercise(
    name="layer_norm",
    section="3.3",
    title="LayerNorm from scratch",
    task=(
        "Normalise each vector over its last dimension: subtract its mean, divide by the square root of its "
        "(biased) variance plus eps, then scale by weight and shift by bias. Do not call torch's layer_norm."
    ),
    equation="y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias,  var(x) = mean((x - mean(x))^2)",
    shapes="x (..., C); weight, bias (C,); returns (..., C)",
    returns="the normalised x",
    reference=layer_norm,
    solution=(layer_norm,),
    checks=(
        Check("shape and dtype", "(2, 5, 16) in, (2, 5, 16) out", "", _ln_contract),
        Check("against torch", "torch.nn.functional.layer_norm, inputs of mean 3 and std 2", "", _ln_torch),
        Check("variance near eps", "rows of std 0.003, and eps=0.01: where eps matters", "", _ln_small),
        Check("gradients", "dx, dweight, dbias against torch's autograd", "", _ln_grads),
        Check("odd shapes, float64", "C = 59, C = 1, 2-D inputs; float64", "", _ln_odd),
    ),
    mistakes=bm.LN_MISTAKES,
    forbidden=("torch.nn.functional.layer_norm", "torch.layer_norm", "torch.nn.LayerNorm", "torch.native_layer_norm"),
)


# --- transformer_block checks ----------------------------------------------------------------------------------


def _torch_block(t: Trial, E: int, nh: int, Fw: int) -> nn.TransformerEncoderLayer:
    with t.seeded():
        m = nn.TransformerEncoderLayer(E, nh, Fw, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
    with torch.no_grad():  # non-trivial norms and biases
        for name, p in m.named_parameters():
            if name.startswith("norm") or name.endswith("bias"):
                p.copy_(t.randn(*p.shape, scale=0.3) + (1.0 if name.endswith("weight") else 0.0))
    return m.train()  # dropout 0; train mode keeps torch off its inference fast path


def _params(m: nn.TransformerEncoderLayer, grad: bool = False) -> dict[str, Tensor]:
    theirs = dict(m.named_parameters())
    return {key: theirs[name].detach().clone().requires_grad_(grad) for key, name in bm.PARAM_NAMES.items()}


def _block(t: Trial, x: Tensor, params: dict[str, Tensor], nh: int, causal: bool = False) -> Tensor:
    out = t.call(x, params, nh, is_causal=True) if causal else t.call(x, params, nh)
    return t.tensor(out, x.shape, x.dtype)


def _torch_out(m: nn.TransformerEncoderLayer, x: Tensor, causal: bool = False) -> Tensor:
    T = x.shape[1]
    return m(x, src_mask=~bottom_right(T, T) if causal else None)


def _block_contract(t: Trial) -> None:
    m = _torch_block(t, 16, 4, 32)
    _block(t, t.randn(2, 5, 16), _params(m), 4)


def _block_torch(t: Trial, causal: bool = False) -> None:
    m = _torch_block(t, 32, 4, 64)
    x = t.randn(2, 6, 32)
    what = "output against torch.nn.TransformerEncoderLayer(norm_first=True)" + (", causal" if causal else "")
    t.close(_block(t, x, _params(m), 4, causal), _torch_out(m, x, causal).detach(), what)


def _block_grads(t: Trial) -> None:
    m = _torch_block(t, 16, 2, 24)
    x = t.randn(2, 4, 16).requires_grad_()
    out = _block(t, x, _params(m, grad=True), 2)
    cot = t.randn(*out.shape)
    keys = list(bm.PARAM_NAMES)
    got = t.grad([out], [t.args[0], *(t.args[1][k] for k in keys)], [cot])
    theirs = dict(m.named_parameters())
    want = torch.autograd.grad([_torch_out(m, x)], [x, *(theirs[bm.PARAM_NAMES[k]] for k in keys)], [cot])
    for name, g, w in zip(["x", *keys], got, want, strict=True):
        t.close(g, w, f"gradient of {name}")


def _block_future(t: Trial) -> None:
    m = _torch_block(t, 16, 4, 32)
    x = t.randn(2, 7, 16)
    cut = t.integer(1, 6)
    x2 = x.clone()
    x2[:, cut:] = t.randn(2, 7 - cut, 16, scale=3.0)
    before, after = _block(t, x, _params(m), 4, True), _block(t, x2, _params(m), 4, True)
    t.close(after[:, :cut], before[:, :cut], f"causal outputs 0..{cut - 1} after changing tokens {cut}..6")


def _block_odd(t: Trial) -> None:
    for B, T, E, nh, Fw in ((1, 1, 59, 1, 37), (3, 2, 8, 8, 8)):
        m = _torch_block(t, E, nh, Fw)
        x = t.randn(B, T, E)
        t.close(_block(t, x, _params(m), nh), _torch_out(m, x).detach(), f"B={B}, T={T}, E={E}, {nh} heads, FFN {Fw}")


TRANSFORMER_BLOCK = Exercise(
    name="transformer_block",
    section="3.3",
    title="A pre-norm transformer block",
    task=(
        "x = x + SA(LN1(x)); x = x + FFN(LN2(x)), with SA multi-head self-attention (W^Q|W^K|W^V = "
        "params['in_proj_weight'], then params['out_proj_weight']), FFN(x) = W2 GELU(W1 x + b1) + b2 (exact "
        "GELU), LayerNorm eps 1e-5. is_causal: query i sees keys j <= i. You may use F.linear, F.layer_norm, F.gelu "
        "and F.scaled_dot_product_attention (or your own exercises)."
    ),
    equation="x' = x + MHA(LN1(x));  y = x' + W2 GELU(W1 LN2(x') + b1) + b2",
    shapes=(
        "x (B, T, E); params: ln1_weight, ln1_bias, ln2_weight, ln2_bias (E,), in_proj_weight (3E, E), in_proj_bias "
        "(3E,), out_proj_weight (E, E), out_proj_bias (E,), w1 (F, E), b1 (F,), w2 (E, F), b2 (E,); returns (B, T, E)"
    ),
    returns="the block's output (B, T, E)",
    reference=transformer_block,
    solution=(transformer_block, TransformerEncoderLayer.forward, TransformerEncoderLayer._ffn),
    checks=(
        Check("shape and dtype", "(2, 5, 16), 4 heads, FFN 32", "", _block_contract),
        Check(
            "against torch",
            "torch.nn.TransformerEncoderLayer(norm_first=True, gelu) with these weights",
            "",
            _block_torch,
        ),
        Check("is_causal", "the same with a causal mask", "", functools.partial(_block_torch, causal=True)),
        Check("gradients", "dx and the gradient of every weight against torch's layer", "", _block_grads),
        Check("causal: future ignored", "changing later tokens leaves earlier outputs", "", _block_future),
        Check("odd shapes", "batch 1, T = 1, width 59 with one head; 8 heads of size 1", "", _block_odd),
    ),
    mistakes=bm.BLOCK_MISTAKES,
    forbidden=("torch.nn.TransformerEncoderLayer", "torch.nn.functional.multi_head_attention_forward"),
)

EXERCISES = (LAYER_NORM, TRANSFORMER_BLOCK)
