r"""The classic attention scores (Bahdanau 2015, Luong 2015) and the attention they give.

An attention step scores every source position j against a decoder state, turns the scores into weights with a
softmax over j, and mixes the values with them:

.. math::
    e_j = \mathrm{score}(q, k_j), \qquad \alpha_j = \frac{\exp e_j}{\sum_{j'} \exp e_{j'}}, \qquad
    c = \sum_j \alpha_j v_j

The scores (``q`` the decoder state, ``k_j`` = ``h_j`` / ``hbar_s`` the encoder states):

- additive (Bahdanau et al. 2015, eq. 6 and appendix A.1.2): ``e_j = v^T tanh(W q + U k_j [+ b])``;
- dot (Luong et al. 2015, eq. 8): ``score(h_t, hbar_s) = h_t^T hbar_s``;
- general (Luong, eq. 8): ``h_t^T W_a hbar_s``;
- concat (Luong, eq. 8): ``v_a^T tanh(W_a [h_t ; hbar_s])``. Splitting ``W_a = [W_q | W_k]`` by columns,
  ``W_a [h_t ; hbar_s] = W_q h_t + W_k hbar_s``: the concat score *is* the additive score with ``W = W_q``,
  ``U = W_k`` (Luong's own remark), so it is computed by :func:`additive_scores`.

Which decoder state is the query is the caller's business, and the papers differ: Bahdanau scores the
*previous* state ``s_{i-1}`` (the context then feeds the RNN that computes ``s_i``); Luong scores the *current*
state ``h_t`` (the context then feeds ``htilde_t = tanh(W_c [c_t ; h_t])``, which is outside this module).

Shapes (``A`` the attention size of the additive/concat scores):

- ``query`` ``(B, Dq)`` for one decoder step or ``(B, T, Dq)`` for T steps at once;
- ``keys`` ``(B, S, Dk)``; ``values`` ``(B, S, Dv)``, default: the keys (the papers mix the encoder states
  themselves, ``c = sum_j alpha_j h_j``);
- ``key_mask`` ``(B, S)`` bool, True at real (non-padding) keys;
- scores and weights ``(B, S)`` or ``(B, T, S)``; the context ``(B, Dv)`` or ``(B, T, Dv)``.

A row with no real key (``key_mask[b]`` all False) gets zero weights and a zero context, never NaN, and passes no
gradient. The dot and general attention call the project's one :func:`scaled_dot_product_attention`
(``impl="naive"``, ``scale=1``: Luong's scores are not scaled); the additive and concat attention take their
weights from the same :func:`masked_softmax`. The hand-derived backward of these is in
:mod:`attnlab.functional.attention_backward`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attnlab._checks import check_float, check_ndim, check_same_dtype_device, check_shape, check_tensor, shape_str
from attnlab.functional.sdpa import AttentionOutput, scaled_dot_product_attention
from attnlab.functional.softmax import masked_softmax

SCORES = ("additive", "dot", "general", "concat")


# --- the scores ----------------------------------------------------------------------------------------------


def additive_scores(query: Tensor, keys: Tensor, W: Tensor, U: Tensor, v: Tensor, b: Tensor | None = None) -> Tensor:
    """Bahdanau's additive score ``e_j = v^T tanh(W q + U k_j + b)`` for every key: ``(B, [T,] S)``.

    ``W`` ``(A, Dq)``, ``U`` ``(A, Dk)``, ``v`` ``(A,)``, ``b`` ``(A,)`` or None (the paper writes no bias).
    """
    q, single = _check_query_keys(query, keys)
    _check_additive_params(q, keys, W, U, v, b)
    scores = additive_hidden(q, keys, W, U, b) @ v  # (B, T, S, A) @ (A,) -> (B, T, S): v^T tanh(...)
    return scores.squeeze(1) if single else scores


def dot_scores(query: Tensor, keys: Tensor) -> Tensor:
    """Luong's dot score ``h_t^T hbar_s`` for every key: ``(B, [T,] S)``; needs ``Dq == Dk``."""
    q, single = _check_query_keys(query, keys)
    _check_dot(q, keys)
    scores = q @ keys.transpose(1, 2)  # eq. (8) Luong 2015: (B, T, D) @ (B, D, S) -> (B, T, S)
    return scores.squeeze(1) if single else scores


def general_scores(query: Tensor, keys: Tensor, W_a: Tensor) -> Tensor:
    """Luong's general score ``h_t^T W_a hbar_s`` for every key: ``(B, [T,] S)``; ``W_a`` ``(Dq, Dk)``."""
    q, single = _check_query_keys(query, keys)
    _check_general_params(q, keys, W_a)
    scores = (q @ W_a) @ keys.transpose(1, 2)  # eq. (8): (B, T, Dq) @ (Dq, Dk) @ (B, Dk, S) -> (B, T, S)
    return scores.squeeze(1) if single else scores


def concat_scores(query: Tensor, keys: Tensor, W_a: Tensor, v_a: Tensor) -> Tensor:
    """Luong's concat score ``v_a^T tanh(W_a [h_t ; hbar_s])`` for every key: ``(B, [T,] S)``.

    ``W_a`` ``(A, Dq + Dk)`` (its first Dq columns act on ``h_t``), ``v_a`` ``(A,)``.
    """
    q, single = _check_query_keys(query, keys)
    W_q, W_k = _split_concat(q, keys, W_a, v_a)
    scores = additive_hidden(q, keys, W_q, W_k) @ v_a  # eq. (8): (B, T, S, A) @ (A,) -> (B, T, S)
    return scores.squeeze(1) if single else scores


def additive_hidden(
    q: Tensor, keys: Tensor, W: Tensor, U: Tensor, b: Tensor | None = None, u_k: Tensor | None = None
) -> Tensor:
    """``tanh(W q_t + U k_j + b)`` for every step t and key j: ``(B, T, S, A)`` from ``q`` ``(B, T, Dq)``.

    ``U k_j`` is computed once per key and shared by the T steps (Bahdanau's appendix A.1.2 precomputes it
    the same way); ``u_k`` ``(B, S, A)`` passes it in when a decoder has computed it once for all its steps.
    Unchecked: the public functions check first.
    """
    w_q = q @ W.T  # (B, T, Dq) @ (Dq, A) -> (B, T, A): W s_{i-1}
    if b is not None:
        w_q = w_q + b
    if u_k is None:
        u_k = keys @ U.T  # (B, S, Dk) @ (Dk, A) -> (B, S, A): U h_j
    return torch.tanh(w_q.unsqueeze(2) + u_k.unsqueeze(1))  # (B, T, 1, A) + (B, 1, S, A) -> (B, T, S, A)


# --- scores -> weights -> context ----------------------------------------------------------------------------


def attend(scores: Tensor, values: Tensor, key_mask: Tensor | None = None) -> AttentionOutput:
    """``weights = softmax_j(scores)`` over the real keys, ``context = weights @ values``.

    ``scores`` ``(B, S)`` or ``(B, T, S)``; ``values`` ``(B, S, Dv)``; ``key_mask`` ``(B, S)``. Returns
    ``AttentionOutput(output=context (B, [T,] Dv), weights (B, [T,] S))``; rows with no real key are zeros.
    """
    check_tensor("scores", scores)
    check_float("scores", scores)
    check_ndim("scores", scores, (2, 3), "(B, S) or (B, T, S)")
    check_tensor("values", values)
    check_ndim("values", values, (3,), "(B, S, Dv)")
    check_same_dtype_device("values", values, scores, "scores")
    B, S = scores.shape[0], scores.shape[-1]
    check_shape("values", values, (B, S, values.shape[-1]), "(B, S, Dv) with B, S those of scores")
    mask = _check_key_mask(key_mask, B, S, scores.device)
    single = scores.dim() == 2
    out = _attend(scores.unsqueeze(1) if single else scores, values, mask)
    return _squeeze(out) if single else out


def _attend(scores: Tensor, values: Tensor, key_mask: Tensor | None) -> AttentionOutput:
    """Unchecked :func:`attend` on ``(B, T, S)`` scores."""
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask.unsqueeze(1), -math.inf)  # (B, 1, S) over the T rows: padding
    weights = masked_softmax(scores)  # alpha_tj = exp(e_tj) / sum_j' exp(e_tj'); no real key -> 0
    context = weights @ values  # c_t = sum_j alpha_tj v_j: (B, T, S) @ (B, S, Dv) -> (B, T, Dv)
    return AttentionOutput(context, weights)


def additive_attention(
    query: Tensor,
    keys: Tensor,
    values: Tensor | None,
    W: Tensor,
    U: Tensor,
    v: Tensor,
    b: Tensor | None = None,
    *,
    key_mask: Tensor | None = None,
    projected_keys: Tensor | None = None,
) -> AttentionOutput:
    """Bahdanau attention: ``e_j = v^T tanh(W q + U k_j + b)``, ``alpha = softmax(e)``, ``c = sum_j alpha_j v_j``.

    ``values`` None means the keys. ``projected_keys`` ``(B, S, A)``: ``U k_j`` computed once by the caller
    (``keys @ U.T``) and reused at every decoder step; it must be exactly that. Returns
    ``AttentionOutput(context, weights)`` (see the module docstring).
    """
    q, values, mask, single = check_attention_inputs(query, keys, values, key_mask)
    _check_additive_params(q, keys, W, U, v, b)
    if projected_keys is not None:
        expected = (*keys.shape[:-1], U.shape[0])
        if tuple(projected_keys.shape) != expected:
            raise ValueError(
                f"projected_keys: expected shape {expected} (keys @ U.T), got {tuple(projected_keys.shape)}"
            )
    scores = additive_hidden(q, keys, W, U, b, projected_keys) @ v  # eq. (6) Bahdanau 2015: (B, T, S, A) @ (A,)
    out = _attend(scores, values, mask)
    return _squeeze(out) if single else out


def dot_attention(
    query: Tensor, keys: Tensor, values: Tensor | None = None, *, key_mask: Tensor | None = None
) -> AttentionOutput:
    """Luong dot attention: ``score = h_t^T hbar_s``, through the shared SDPA with ``scale=1``."""
    q, values, mask, single = check_attention_inputs(query, keys, values, key_mask)
    _check_dot(q, keys)
    return _sdpa(q, keys, values, mask, single)


def general_attention(
    query: Tensor, keys: Tensor, values: Tensor | None, W_a: Tensor, *, key_mask: Tensor | None = None
) -> AttentionOutput:
    """Luong general attention: ``score = h_t^T W_a hbar_s = (W_a^T h_t)^T hbar_s``, through the shared SDPA."""
    q, values, mask, single = check_attention_inputs(query, keys, values, key_mask)
    _check_general_params(q, keys, W_a)
    q_a = q @ W_a  # (B, T, Dq) @ (Dq, Dk) -> (B, T, Dk): h_t^T W_a, dotted with hbar_s by the SDPA
    return _sdpa(q_a, keys, values, mask, single)


def concat_attention(
    query: Tensor, keys: Tensor, values: Tensor | None, W_a: Tensor, v_a: Tensor, *, key_mask: Tensor | None = None
) -> AttentionOutput:
    """Luong concat attention: ``score = v_a^T tanh(W_a [h_t ; hbar_s])`` (the additive score, ``W_a`` split)."""
    q, values, mask, single = check_attention_inputs(query, keys, values, key_mask)
    W_q, W_k = _split_concat(q, keys, W_a, v_a)
    scores = additive_hidden(q, keys, W_q, W_k) @ v_a  # eq. (8) Luong: (B, T, S, A) @ (A,) -> (B, T, S)
    out = _attend(scores, values, mask)
    return _squeeze(out) if single else out


def _sdpa(q: Tensor, keys: Tensor, values: Tensor, key_mask: Tensor | None, single: bool) -> AttentionOutput:
    """Unscaled dot-product attention of ``q`` ``(B, T, D)`` over ``keys`` ``(B, S, D)`` by the shared SDPA."""
    attn_mask = None if key_mask is None else key_mask.unsqueeze(1)  # (B, 1, S): the same keys for all T rows
    out = scaled_dot_product_attention(q, keys, values, attn_mask, scale=1.0, impl="naive", return_weights=True)
    # output (B, T, Dv), weights (B, T, S)
    return _squeeze(out) if single else out


def _squeeze(out: AttentionOutput) -> AttentionOutput:
    """``(B, 1, ...)`` -> ``(B, ...)``: back to the one-step shapes of a ``(B, Dq)`` query."""
    return AttentionOutput(out.output.squeeze(1), out.weights.squeeze(1))


# --- checks --------------------------------------------------------------------------------------------------


def check_attention_inputs(
    query: Tensor, keys: Tensor, values: Tensor | None, key_mask: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None, bool]:
    """Validate; return ``(query as (B, T, Dq), values (B, S, Dv), key_mask or None, single_step)``."""
    q, single = _check_query_keys(query, keys)
    if values is None:
        values = keys
    else:
        check_tensor("values", values)
        check_ndim("values", values, (3,), "(B, S, Dv)")
        check_same_dtype_device("values", values, query, "query")
        if values.shape[:2] != keys.shape[:2]:
            raise ValueError(
                f"values: expected batch and length {tuple(keys.shape[:2])} (B, S of keys), got {shape_str(values)}"
            )
    mask = _check_key_mask(key_mask, keys.shape[0], keys.shape[1], keys.device)
    return q, values, mask, single


def _check_query_keys(query: Tensor, keys: Tensor) -> tuple[Tensor, bool]:
    check_tensor("query", query)
    check_float("query", query)
    check_ndim("query", query, (2, 3), "(B, Dq) for one step or (B, T, Dq)")
    check_tensor("keys", keys)
    check_ndim("keys", keys, (3,), "(B, S, Dk)")
    check_same_dtype_device("keys", keys, query, "query")
    if keys.shape[0] != query.shape[0]:
        raise ValueError(f"keys: expected batch size {query.shape[0]} (query's), got shape {shape_str(keys)}")
    if keys.shape[1] < 1:
        raise ValueError(f"keys: expected at least one position (S >= 1), got shape {shape_str(keys)}")
    single = query.dim() == 2
    return (query.unsqueeze(1) if single else query), single  # (B, T, Dq)


def _check_key_mask(key_mask: Tensor | None, B: int, S: int, device: torch.device) -> Tensor | None:
    if key_mask is None:
        return None
    check_tensor("key_mask", key_mask)
    if key_mask.dtype != torch.bool:
        raise TypeError(f"key_mask: expected a bool tensor (True at real keys), got dtype {key_mask.dtype}")
    check_shape("key_mask", key_mask, (B, S), "(B, S)")
    if key_mask.device != device:
        raise ValueError(f"key_mask: expected device {device} (that of keys), got {key_mask.device}")
    return key_mask


def _check_param(name: str, p: object, shape: tuple[int, ...], meaning: str, like: Tensor) -> None:
    check_tensor(name, p)
    check_shape(name, p, shape, meaning)
    check_same_dtype_device(name, p, like, "query")


def _check_additive_params(q: Tensor, keys: Tensor, W, U, v, b) -> None:
    check_tensor("v", v)
    check_ndim("v", v, (1,), "(A,)")
    A = v.shape[0]
    _check_param("v", v, (A,), "(A,)", q)
    _check_param("W", W, (A, q.shape[-1]), "(A, Dq)", q)
    _check_param("U", U, (A, keys.shape[-1]), "(A, Dk)", q)
    if b is not None:
        _check_param("b", b, (A,), "(A,)", q)


def _check_dot(q: Tensor, keys: Tensor) -> None:
    if keys.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"keys: the dot score needs Dk == Dq = {q.shape[-1]} (the query's size), got keys {shape_str(keys)}"
        )


def _check_general_params(q: Tensor, keys: Tensor, W_a) -> None:
    _check_param("W_a", W_a, (q.shape[-1], keys.shape[-1]), "(Dq, Dk)", q)


def _split_concat(q: Tensor, keys: Tensor, W_a, v_a) -> tuple[Tensor, Tensor]:
    """``W_a`` ``(A, Dq + Dk)`` -> ``(W_q (A, Dq), W_k (A, Dk))``, checked with ``v_a`` ``(A,)``."""
    check_tensor("v_a", v_a)
    check_ndim("v_a", v_a, (1,), "(A,)")
    _check_param("v_a", v_a, (v_a.shape[0],), "(A,)", q)
    Dq = q.shape[-1]
    _check_param("W_a", W_a, (v_a.shape[0], Dq + keys.shape[-1]), "(A, Dq + Dk)", q)
    return W_a[:, :Dq], W_a[:, Dq:]  # W_a [h_t ; hbar_s] = W_a[:, :Dq] h_t + W_a[:, Dq:] hbar_s
