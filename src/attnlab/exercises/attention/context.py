"""Exercises 3.2 ``attention_context`` (softmax over the real source positions, then the weighted sum) and
``softmax_backward`` (the Jacobian-vector product by hand), checked against float64 references, autograd and
``torch.autograd.gradcheck``."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.gradcheck import GradcheckError

from attnlab.exercises.engine import Check, Exercise, Mistake
from attnlab.exercises.trial import Fail, Trial
from attnlab.functional import scores as library
from attnlab.functional import softmax as library_softmax
from attnlab.functional.softmax import masked_softmax


def attention_context(scores, values, key_mask=None):
    """The library's attend: masked softmax, then the weighted sum (a row with no real key gives zeros)."""
    return tuple(library.attend(scores, values, key_mask))


def softmax_backward(probs, grad_probs):
    """The library's softmax backward: dE = P * (dP - rowsum(dP * P))."""
    return library_softmax.softmax_backward(probs, grad_probs)


# --- attention_context -----------------------------------------------------------------------------------------


def _want(scores: Tensor, values: Tensor, key_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """float64, row by row: exp(e_j - max) / sum over the real keys only; zero weights where no key is real."""
    e = scores.detach().double()
    real = torch.ones_like(e, dtype=torch.bool) if key_mask is None else key_mask
    w = torch.zeros_like(e)
    for b in range(e.shape[0]):
        idx = real[b].nonzero().flatten()
        if len(idx):
            x = torch.exp(e[b, idx] - e[b, idx].max())
            w[b, idx] = x / x.sum()
    ctx = (w.unsqueeze(1) @ values.detach().double()).squeeze(1)  # (B, 1, S) @ (B, S, Dv) -> (B, Dv)
    return ctx.to(scores.dtype), w.to(scores.dtype)


def _inputs(t: Trial, B: int, S: int, Dv: int, dtype=torch.float32, grad=False, mask=True):
    scores, values = t.randn(B, S, dtype=dtype, scale=2.0), t.randn(B, S, Dv, dtype=dtype)
    key_mask = None
    if mask:
        lengths = t.randint(1, S + 1, B)
        lengths[0] = S
        key_mask = torch.arange(S) < lengths.unsqueeze(1)  # (B, S): padding at the end of each source
    return scores.requires_grad_(grad), values.requires_grad_(grad), key_mask


def _ctx(t: Trial, scores: Tensor, values: Tensor, key_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    out = t.call(scores, values, key_mask) if key_mask is not None else t.call(scores, values)
    c, w = t.parts(out, 2, "the result (context, weights)")
    t.tensor(c, (values.shape[0], values.shape[2]), values.dtype, "context")
    t.tensor(w, scores.shape, scores.dtype, "weights")
    return c, w


def _ctx_compare(t: Trial, mask: bool, B: int = 3, S: int = 6, Dv: int = 4, dtype=torch.float32) -> None:
    scores, values, key_mask = _inputs(t, B, S, Dv, dtype, mask=mask)
    c, w = _ctx(t, scores, values, key_mask)
    want_c, want_w = _want(scores, values, key_mask)
    where = "no mask" if key_mask is None else f"real lengths {key_mask.sum(1).tolist()}"
    t.close(w, want_w, f"weights ({where}) against a float64 softmax over the real keys")
    t.close(c, want_c, f"context ({where}) against a float64 weighted sum")


def _ctx_rows(t: Trial) -> None:
    scores, values, key_mask = _inputs(t, 4, 7, 3)
    _, w = _ctx(t, scores, values, key_mask)
    t.close(w.sum(-1), torch.ones(4), "the sum of each row of weights")
    t.expect(bool((w[~key_mask] == 0).all()), "weights: padding positions must get exactly 0")


def _ctx_empty(t: Trial) -> None:
    scores, values, key_mask = _inputs(t, 3, 5, 4)
    key_mask[1] = False  # source 1 has no real position
    c, w = _ctx(t, scores, values, key_mask)
    want_c, want_w = _want(scores, values, key_mask)
    t.close(w, want_w, "weights with a source of no real key (expected zeros in row 1)")
    t.close(c, want_c, "context with a source of no real key (expected zeros in row 1)")


def _ctx_padding(t: Trial) -> None:
    scores, values, key_mask = _inputs(t, 3, 6, 4)
    c, w = _ctx(t, scores, values, key_mask)
    s2, v2 = scores.clone(), values.clone()
    s2[~key_mask] = t.randn(int((~key_mask).sum()), scale=10.0)
    v2[~key_mask] = t.randn(int((~key_mask).sum()), 4, scale=10.0)
    c2, w2 = _ctx(t, s2, v2, key_mask)
    t.close(c2, c, "context after changing the padding's scores and values")
    t.close(w2, w, "weights after changing the padding's scores")


def _ctx_grads(t: Trial) -> None:
    scores, values, key_mask = _inputs(t, 3, 5, 4, grad=True)
    c, w = _ctx(t, scores, values, key_mask)
    cots = [t.randn(*c.shape), t.randn(*w.shape)]
    got = t.grad([c, w], [t.args[0], t.args[1]], cots)
    s64, v64 = (x.detach().double().requires_grad_() for x in (scores, values))
    e = s64.masked_fill(~key_mask, float("-inf"))
    w64 = torch.softmax(e, -1)
    c64 = (w64.unsqueeze(1) @ v64).squeeze(1)
    want = torch.autograd.grad([c64, w64], [s64, v64], [x.double() for x in cots])
    for name, g, wg in zip(("scores", "values"), got, want, strict=True):
        t.close(g, wg.float(), f"gradient of {name}")


def _ctx_variant(**knobs):
    def attention_context(scores, values, key_mask=None):
        return _context_with(scores, values, key_mask, **knobs)

    return attention_context


def _context_with(scores, values, key_mask, *, when="before", polarity=True, axis=-1, fill=float("-inf"), guard=True):
    if key_mask is not None and when == "before":
        scores = scores.masked_fill(~key_mask if polarity else key_mask, fill)
    empty = torch.isneginf(scores).all(-1, keepdim=True)  # (B, 1)
    w = torch.softmax(scores.masked_fill(empty, 0.0) if guard else scores, dim=axis)
    if guard:
        w = w.masked_fill(empty, 0.0)
    if key_mask is not None and when == "after":
        w = w * key_mask
    return (w.unsqueeze(1) @ values).squeeze(1), w  # (B, 1, S) @ (B, S, Dv)


CONTEXT_MISTAKES = (
    Mistake(
        "context.mask_after_softmax",
        "padding zeroed after the softmax",
        "mask the scores BEFORE the softmax (fill padding with -inf); zeroing the weights afterwards leaves rows "
        "that no longer sum to 1",
        _ctx_variant(when="after"),
    ),
    Mistake(
        "context.mask_polarity",
        "mask polarity inverted",
        "key_mask is True at REAL positions: fill where it is False, scores.masked_fill(~key_mask, float('-inf'))",
        _ctx_variant(polarity=False),
    ),
    Mistake(
        "context.softmax_axis",
        "softmax over the batch",
        "normalise over the source positions (dim=-1): each decoder step gets a distribution over its own source",
        _ctx_variant(axis=0),
    ),
    Mistake(
        "context.zero_fill",
        "padding scores set to 0 instead of -inf",
        "a score of 0 still gets weight exp(0): fill padding with float('-inf') so exp gives exactly 0",
        _ctx_variant(fill=0.0),
    ),
    Mistake(
        "context.nan_no_keys",
        "NaN for a source with no real position",
        "a row of all -inf gives softmax 0/0 = NaN: detect such rows and return zero weights and a zero context",
        _ctx_variant(guard=False),
    ),
)

CONTEXT = Exercise(
    name="attention_context",
    section="3.2",
    title="Attention weights and context with a source mask",
    task=(
        "From one decoder step's scores over the S source positions, compute the attention weights (a softmax over "
        "the REAL positions only: key_mask is True at real tokens, False at padding; None means all real) and the "
        "context, the weighted sum of the values. A source with no real position gets zero weights and a zero "
        "context, not NaN."
    ),
    equation="alpha_j = exp(e_j) / sum_{j' real} exp(e_j') for real j, 0 for padding;  c = sum_j alpha_j v_j",
    shapes="scores (B, S), values (B, S, Dv), key_mask (B, S) bool or None; returns context (B, Dv), weights (B, S)",
    returns="a tuple (context, weights)",
    reference=attention_context,
    solution=(library._attend, masked_softmax),
    checks=(
        Check("shape and dtype", "B=2, S=5, Dv=3", "", lambda t: _ctx(t, *_inputs(t, 2, 5, 3))),
        Check("no mask", "softmax and weighted sum against float64", "", lambda t: _ctx_compare(t, mask=False)),
        Check("with a source mask", "padding at the end of each source", "", lambda t: _ctx_compare(t, mask=True)),
        Check("weights", "rows sum to 1, padding gets exactly 0", "", _ctx_rows),
        Check("a source with no real key", "zero weights and zero context, not NaN", "", _ctx_empty),
        Check("padding ignored", "changing padded scores and values changes nothing", "", _ctx_padding),
        Check("gradients", "of scores and values, through context and weights", "", _ctx_grads),
        Check(
            "odd shapes, float64",
            "batch 1, S = 1, float64",
            "",
            lambda t: (_ctx_compare(t, True, 1, 1, 3), _ctx_compare(t, True, 2, 4, 5, torch.float64)),
        ),
    ),
    mistakes=CONTEXT_MISTAKES,
)


# --- softmax_backward ------------------------------------------------------------------------------------------


def _sb(t: Trial, p: Tensor, dp: Tensor) -> Tensor:
    return t.tensor(t.call(p, dp), p.shape, p.dtype, "the gradient of the scores")


def _sb_autograd(t: Trial, *shape: int, dtype=torch.float64, masked: bool = False) -> None:
    s = t.randn(*shape, dtype=torch.float64, scale=2.0)
    if masked:
        s = s.masked_fill(t.bools(*shape, p=0.3) & (torch.arange(shape[-1]) > 0), float("-inf"))
    s.requires_grad_()
    p = torch.softmax(s, -1)
    dp = t.randn(*shape, dtype=torch.float64)
    (want,) = torch.autograd.grad(p, s, dp)
    got = _sb(t, p.detach().to(dtype), dp.to(dtype))
    t.close(
        got,
        want.to(dtype),
        f"dL/ds for shape {shape} ({dtype}{', some keys masked' if masked else ''}) against autograd",
    )


class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, trial):
        p = torch.softmax(s, -1)
        ctx.save_for_backward(p)
        ctx.trial = trial
        return p

    @staticmethod
    def backward(ctx, dp):
        (p,) = ctx.saved_tensors
        return _sb(ctx.trial, p, dp), None


def _sb_gradcheck(t: Trial) -> None:
    s = t.randn(3, 5, dtype=torch.float64).requires_grad_()
    try:
        torch.autograd.gradcheck(lambda x: _Softmax.apply(x, t), (s,), eps=1e-6, atol=1e-6)
    except GradcheckError as exc:
        raise Fail(
            f"gradcheck: your backward of softmax differs from finite differences ({str(exc).splitlines()[0]})"
        ) from None


def _sb_sums_to_zero(t: Trial) -> None:
    p = torch.softmax(t.randn(4, 6, dtype=torch.float64), -1)
    ds = _sb(t, p, t.randn(4, 6, dtype=torch.float64))
    t.close(ds.sum(-1), torch.zeros(4, dtype=torch.float64), "the sum of each row of dL/ds (softmax ignores a shift)")


def _sb_variant(kind: str):
    def softmax_backward(probs, grad_probs):
        p, dp = probs, grad_probs
        if kind == "diag":
            return p * dp
        if kind == "sum_without_p":
            return p * (dp - dp.sum(-1, keepdim=True))
        if kind == "no_leading_p":
            return dp - (dp * p).sum(-1, keepdim=True)
        if kind == "axis":
            return p * (dp - (dp * p).sum(0, keepdim=True))
        return dp - p * dp.sum(-1, keepdim=True)  # "log_softmax"

    return softmax_backward


SB_MISTAKES = (
    Mistake(
        "softmax_bwd.diagonal_only",
        "only the diagonal of the Jacobian",
        "dp_i/ds_j = p_i (delta_ij - p_j): besides p * dp, every output pulls on every input; "
        "ds = p * (dp - sum_j p_j dp_j)",
        _sb_variant("diag"),
    ),
    Mistake(
        "softmax_bwd.sum_without_p",
        "the row sum taken without the weights",
        "the subtracted term is the p-weighted mean of dp, sum_j p_j dp_j, not sum_j dp_j",
        _sb_variant("sum_without_p"),
    ),
    Mistake(
        "softmax_bwd.no_leading_p",
        "the leading p missing",
        "ds = p * (dp - sum_j p_j dp_j): multiply by p at the end",
        _sb_variant("no_leading_p"),
    ),
    Mistake(
        "softmax_bwd.axis",
        "the row sum over the wrong axis",
        "the sum runs over the softmax's own axis, the last one: .sum(-1, keepdim=True)",
        _sb_variant("axis"),
    ),
    Mistake(
        "softmax_bwd.log_softmax",
        "the backward of log-softmax",
        "that is dp - p * sum(dp), the gradient of log_softmax; softmax's is p * (dp - sum(p * dp))",
        _sb_variant("log_softmax"),
    ),
)

SOFTMAX_BACKWARD = Exercise(
    name="softmax_backward",
    section="3.2",
    title="The softmax backward by hand (Jacobian-vector product)",
    task=(
        "p = softmax(s) over the last dim. Given p and dL/dp, return dL/ds without autograd: the softmax Jacobian "
        "is diag(p) - p p^T (symmetric, so its JVP and VJP are one formula). This is the step that carries the "
        "gradient from the attention weights back to the scores."
    ),
    equation="dL/ds = p * (dL/dp - sum_j p_j dL/dp_j)    (= (diag(p) - p p^T) dL/dp)",
    shapes="probs (..., S) and grad_probs (..., S); returns (..., S)",
    returns="dL/ds (..., S)",
    reference=softmax_backward,
    solution=(library_softmax.softmax_backward,),
    checks=(
        Check(
            "shape and dtype",
            "(2, 5) in, (2, 5) out",
            "",
            lambda t: _sb(t, torch.softmax(t.randn(2, 5), -1), t.randn(2, 5)),
        ),
        Check("against autograd", "float64, (3, 7)", "", lambda t: _sb_autograd(t, 3, 7)),
        Check("gradcheck", "as the backward of softmax, against finite differences", "", _sb_gradcheck),
        Check("rows sum to 0", "softmax ignores adding a constant, so dL/ds sums to 0", "", _sb_sums_to_zero),
        Check(
            "masked keys", "p = 0 at masked keys: no gradient there", "", lambda t: _sb_autograd(t, 4, 6, masked=True)
        ),
        Check(
            "odd shapes",
            "S = 1, 4-D inputs, float32",
            "",
            lambda t: (_sb_autograd(t, 3, 1), _sb_autograd(t, 2, 2, 3, 5, dtype=torch.float32)),
        ),
    ),
    mistakes=SB_MISTAKES,
    forbidden=("torch._softmax_backward_data",),
)

EXERCISES = (CONTEXT, SOFTMAX_BACKWARD)
