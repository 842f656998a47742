"""Exercises 3.2 ``additive_score`` (Bahdanau) and ``luong_scores`` (dot, general, concat): checked against float64
references written one key at a time from the papers' equations (forward and gradients)."""

from __future__ import annotations

import torch
from torch import Tensor

from attnlab.exercises.engine import Check, Exercise, Mistake
from attnlab.exercises.trial import Trial
from attnlab.functional import scores as library


def additive_score(query, keys, W, U, v):
    """The library's Bahdanau score."""
    return library.additive_scores(query, keys, W, U, v)


def luong_scores(query, keys, method, W_a=None, v_a=None):
    """The library's Luong scores."""
    if method == "dot":
        return library.dot_scores(query, keys)
    if method == "general":
        return library.general_scores(query, keys, W_a)
    if method == "concat":
        return library.concat_scores(query, keys, W_a, v_a)
    raise ValueError(f"method: expected 'dot', 'general' or 'concat', got {method!r}")


def _per_key(score, query: Tensor, keys: Tensor) -> Tensor:
    """``e[b, j] = score(query[b], keys[b, j])``, one scalar at a time: (B, S)."""
    B, S = keys.shape[:2]
    return torch.stack([torch.stack([score(query[b], keys[b, j]) for j in range(S)]) for b in range(B)])


def _bahdanau(W: Tensor, U: Tensor, v: Tensor):
    return lambda s, h: v @ torch.tanh(W @ s + U @ h)  # eq. (6), Bahdanau et al. 2015


def _luong(method: str, W_a: Tensor | None, v_a: Tensor | None):
    if method == "dot":
        return lambda h_t, hbar: h_t @ hbar  # eq. (8), Luong et al. 2015
    if method == "general":
        return lambda h_t, hbar: h_t @ (W_a @ hbar)
    return lambda h_t, hbar: v_a @ torch.tanh(W_a @ torch.cat([h_t, hbar]))


def _f64(*xs: Tensor) -> list[Tensor]:
    return [x.detach().double() for x in xs]


# --- additive --------------------------------------------------------------------------------------------------


def _add_inputs(t: Trial, B: int, S: int, Dq: int, Dk: int, A: int, dtype=torch.float32, grad=False):
    xs = (
        t.randn(B, Dq, dtype=dtype),
        t.randn(B, S, Dk, dtype=dtype),
        t.randn(A, Dq, dtype=dtype, scale=0.5),
        t.randn(A, Dk, dtype=dtype, scale=0.5),
        t.randn(A, dtype=dtype),
    )
    return [x.requires_grad_(grad) for x in xs]


def _add(t: Trial, q, k, W, U, v) -> Tensor:
    return t.tensor(t.call(q, k, W, U, v), k.shape[:2], q.dtype, "scores")


def _add_compare(t: Trial, B: int, S: int, Dq: int, Dk: int, A: int, dtype=torch.float32) -> None:
    q, k, W, U, v = _add_inputs(t, B, S, Dq, Dk, A, dtype)
    want = _per_key(_bahdanau(*_f64(W, U, v)), *_f64(q, k)).to(dtype)
    t.close(_add(t, q, k, W, U, v), want, f"scores (B={B}, S={S}, Dq={Dq}, Dk={Dk}, A={A}) against a float64 loop")


def _add_grads(t: Trial) -> None:
    xs = _add_inputs(t, 2, 4, 3, 5, 6, grad=True)
    out = _add(t, *xs)
    cot = t.randn(*out.shape)
    got = t.grad([out], t.args, [cot])
    q, k, W, U, v = (x.detach().double().requires_grad_() for x in xs)
    want = torch.autograd.grad([_per_key(_bahdanau(W, U, v), q, k)], [q, k, W, U, v], [cot.double()])
    for name, g, w in zip(("query", "keys", "W", "U", "v"), got, want, strict=True):
        t.close(g, w.float(), f"gradient of {name}")


def _add_per_key(t: Trial) -> None:
    q, k, W, U, v = _add_inputs(t, 2, 5, 3, 4, 6)
    whole = _add(t, q, k, W, U, v)
    j = t.integer(0, 4)
    alone = _add(t, q, k[:, j : j + 1], W, U, v)
    t.close(alone[:, 0], whole[:, j], f"key {j} scored alone against its column (a score is not normalised over keys)")


def _add_variant(kind: str):
    def additive_score(query, keys, W, U, v):
        wq = query @ W.T  # (B, A)
        uk = keys @ U.T  # (B, S, A)
        if kind == "swapped":
            wq, uk = query @ U.T, keys @ W.T
        z = wq.unsqueeze(1) + uk  # (B, S, A)
        if kind == "no_tanh":
            return z @ v
        if kind == "sum":
            return torch.tanh(z).sum(-1)
        return torch.softmax(torch.tanh(z) @ v, -1)  # "softmax"

    return additive_score


ADDITIVE_MISTAKES = (
    Mistake(
        "additive.no_tanh", "no tanh", "e_j = v^T tanh(W q + U k_j): the tanh comes before v^T", _add_variant("no_tanh")
    ),
    Mistake(
        "additive.sum",
        "summed instead of projected on v",
        "the score is the dot product with v, v^T tanh(...) = tanh(...) @ v, not a plain sum over the A units",
        _add_variant("sum"),
    ),
    Mistake(
        "additive.softmax",
        "weights returned instead of scores",
        "return the raw scores e_j; the softmax over the keys comes after (it needs the mask)",
        _add_variant("softmax"),
    ),
    Mistake(
        "additive.swapped",
        "W and U swapped",
        "W (A, Dq) projects the decoder state (the query), U (A, Dk) the encoder states (the keys)",
        _add_variant("swapped"),
    ),
)

ADDITIVE = Exercise(
    name="additive_score",
    section="3.2",
    title="Bahdanau's additive score",
    task=(
        "Score every encoder state k_j against the decoder state q with a one-hidden-layer network: "
        "e_j = v^T tanh(W q + U k_j). Return the raw scores (no softmax)."
    ),
    equation="e_j = v^T tanh(W s_{i-1} + U h_j)    (Bahdanau et al. 2015, eq. 6)",
    shapes="query (B, Dq), keys (B, S, Dk), W (A, Dq), U (A, Dk), v (A,); returns (B, S)",
    returns="the scores (B, S)",
    reference=additive_score,
    solution=(library.additive_scores, library.additive_hidden),
    checks=(
        Check("shape and dtype", "B=2, S=5, Dq=3, Dk=4, A=6", "", lambda t: _add(t, *_add_inputs(t, 2, 5, 3, 4, 6))),
        Check("against the equation", "a float64 loop over the keys", "", lambda t: _add_compare(t, 3, 7, 5, 4, 8)),
        Check("gradients", "of query, keys, W, U, v against float64 autograd", "", _add_grads),
        Check(
            "odd shapes",
            "S = 1, batch 1, A = 1; float64",
            "",
            lambda t: (_add_compare(t, 1, 1, 2, 3, 1), _add_compare(t, 2, 3, 4, 4, 5, torch.float64)),
        ),
        Check("one key alone", "scoring a key alone gives its column", "", _add_per_key),
    ),
    mistakes=ADDITIVE_MISTAKES,
)


# --- luong -----------------------------------------------------------------------------------------------------


def _luong_inputs(t: Trial, method: str, B: int, S: int, Dq: int, Dk: int, A: int = 6, dtype=torch.float32, grad=False):
    q, k = t.randn(B, Dq, dtype=dtype), t.randn(B, S, Dk, dtype=dtype)
    W_a = {"dot": None, "general": t.randn(Dq, Dk, dtype=dtype), "concat": t.randn(A, Dq + Dk, dtype=dtype, scale=0.5)}
    v_a = t.randn(A, dtype=dtype) if method == "concat" else None
    xs = [q, k, W_a[method], v_a]
    return [None if x is None else x.requires_grad_(grad) for x in xs]


def _luong_call(t: Trial, method: str, q, k, W_a=None, v_a=None) -> Tensor:
    kw = {k_: v_ for k_, v_ in (("W_a", W_a), ("v_a", v_a)) if v_ is not None}
    return t.tensor(t.call(q, k, method, **kw), k.shape[:2], q.dtype, f"{method} scores")


def _luong_compare(t: Trial, method: str, B: int, S: int, Dq: int, Dk: int, dtype=torch.float32) -> None:
    q, k, W_a, v_a = _luong_inputs(t, method, B, S, Dq, Dk, dtype=dtype)
    params = [None if x is None else x.double() for x in (W_a, v_a)]
    want = _per_key(_luong(method, *params), *_f64(q, k)).to(dtype)
    got = _luong_call(t, method, q, k, W_a, v_a)
    t.close(got, want, f"{method} scores (B={B}, S={S}, Dq={Dq}, Dk={Dk}) against a float64 loop")


def _luong_grads(t: Trial) -> None:
    for method in ("general", "concat"):
        xs = _luong_inputs(t, method, 2, 4, 3, 3, grad=True)
        out = _luong_call(t, method, *xs)
        cot = t.randn(*out.shape)
        used = [x for x in xs if x is not None]
        got = t.grad([out], [t.args[0], t.args[1], *t.kwargs.values()], [cot])
        ref = [x.detach().double().requires_grad_() for x in used]
        params = ref[2:] + [None] * (4 - len(ref))
        want = torch.autograd.grad([_per_key(_luong(method, *params[:2]), ref[0], ref[1])], ref, [cot.double()])
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            t.close(g, w.float(), f"{method}: gradient of argument {['query', 'keys', 'W_a', 'v_a'][i]}")


def _luong_variant(kind: str):
    def luong_scores(query, keys, method, W_a=None, v_a=None):
        if method == "dot":
            s = keys @ query.unsqueeze(-1)  # (B, S, 1)
            return (s / query.shape[-1] ** 0.5 if kind == "dot_scaled" else s).squeeze(-1)
        if method == "general":
            W = W_a.T if kind == "general_transposed" else W_a
            return ((query @ W).unsqueeze(1) * keys).sum(-1)  # (B, S): (q^T W) . k_j
        Dq, Dk = query.shape[-1], keys.shape[-1]
        if kind == "concat_order":  # W_a read as acting on [hbar_s ; h_t]
            W_k, W_q = W_a[:, :Dk], W_a[:, Dk:]
        else:
            W_q, W_k = W_a[:, :Dq], W_a[:, Dq:]
        z = (query @ W_q.T).unsqueeze(1) + keys @ W_k.T  # (B, S, A)
        return (z if kind == "concat_no_tanh" else torch.tanh(z)) @ v_a

    return luong_scores


LUONG_MISTAKES = (
    Mistake(
        "luong.dot_scaled",
        "the dot score scaled by 1/sqrt(d)",
        "Luong's dot score is the plain h_t^T hbar_s; the 1/sqrt(d_k) scaling came later, with the transformer",
        _luong_variant("dot_scaled"),
    ),
    Mistake(
        "luong.general_transposed",
        "W_a transposed in the general score",
        "score = h_t^T W_a hbar_s = (query @ W_a) . keys, with W_a (Dq, Dk); query @ W_a.T is a different score",
        _luong_variant("general_transposed"),
    ),
    Mistake(
        "luong.concat_order",
        "concatenated as [hbar_s ; h_t]",
        "W_a acts on [h_t ; hbar_s]: its first Dq columns multiply the decoder state, the rest the encoder state",
        _luong_variant("concat_order"),
    ),
    Mistake(
        "luong.concat_no_tanh",
        "no tanh in the concat score",
        "score = v_a^T tanh(W_a [h_t ; hbar_s]): the tanh makes it more than a linear function",
        _luong_variant("concat_no_tanh"),
    ),
)

LUONG = Exercise(
    name="luong_scores",
    section="3.2",
    title="Luong's scores: dot, general, concat",
    task=(
        "Score every encoder state hbar_s against the decoder state h_t with one of Luong's three functions, "
        "chosen by `method`: 'dot' (h_t . hbar_s, Dq == Dk), 'general' (h_t^T W_a hbar_s) or 'concat' "
        "(v_a^T tanh(W_a [h_t ; hbar_s])). Return the raw scores; none is scaled."
    ),
    equation="score = h_t^T hbar_s | h_t^T W_a hbar_s | v_a^T tanh(W_a [h_t ; hbar_s])    (Luong et al. 2015, eq. 8)",
    shapes="query (B, Dq), keys (B, S, Dk); general: W_a (Dq, Dk); concat: W_a (A, Dq + Dk), v_a (A,); returns (B, S)",
    returns="the scores (B, S)",
    reference=luong_scores,
    solution=(library.dot_scores, library.general_scores, library.concat_scores, library.additive_hidden),
    checks=(
        Check(
            "shape and dtype",
            "dot, B=2, S=5, D=4",
            "",
            lambda t: _luong_call(t, "dot", *_luong_inputs(t, "dot", 2, 5, 4, 4)[:2]),
        ),
        Check("dot", "against a float64 loop", "", lambda t: _luong_compare(t, "dot", 3, 6, 5, 5)),
        Check("general", "square W_a, against a float64 loop", "", lambda t: _luong_compare(t, "general", 3, 6, 5, 5)),
        Check("concat", "Dq=3 != Dk=5, against a float64 loop", "", lambda t: _luong_compare(t, "concat", 3, 6, 3, 5)),
        Check("gradients", "general and concat, every input, against float64 autograd", "", _luong_grads),
        Check(
            "odd shapes",
            "S = 1, batch 1, general with Dq != Dk; float64",
            "",
            lambda t: (
                _luong_compare(t, "general", 1, 1, 2, 7),
                _luong_compare(t, "concat", 2, 3, 4, 4, torch.float64),
            ),
        ),
    ),
    mistakes=LUONG_MISTAKES,
)

EXERCISES = (ADDITIVE, LUONG)
