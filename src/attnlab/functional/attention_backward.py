r"""Backpropagation through attention, derived by hand (seed 001 §3.2): additive and dot-product attention.

Each is a :class:`torch.autograd.Function` whose forward is the library's own (the helpers of
:mod:`attnlab.functional.scores`, the shared SDPA) and whose backward is written out below; the tests hold it to
``torch.autograd.gradcheck`` and to autograd on the same inputs. One decoder step per call: query ``s (B, Dq)``;
the functions :func:`additive_attention_manual`, :func:`dot_attention_manual`, :func:`general_attention_manual` and
:func:`concat_attention_manual` (the arguments of their autograd twins in :mod:`attnlab.functional.scores`) check
their inputs and take ``(B, T, Dq)`` queries too, one call per step.

Forward of one step (per batch row; ``j`` runs over the S keys, masked keys get ``e_j = -inf``)::

    z_j = W s + U h_j + b              (A,)     Bahdanau 2015, eq. (6), inside the tanh
    a_j = tanh(z_j)                    (A,)
    e_j = v^T a_j                      ()       the score
    p_j = exp(e_j) / sum_k exp(e_k)    ()       the weights (alpha_j)
    c   = sum_j p_j x_j                (Dv,)    the context; x_j the values (= h_j in the paper)

Backward, given ``dc = dL/dc`` and ``dp_out = dL/dp`` (when the weights themselves enter the loss):

1. The context is linear in the weights and in the values: ``dL/dp_j = x_j . dc``, so
   ``dP = X dc + dp_out`` ``(S,)``; and ``dL/dx_j = p_j dc``, so ``dX = P^T dc`` ``(S, Dv)`` (an outer product).
   When the values are the keys (``x_j = h_j``), this adds to the key gradient: ``dH += P^T dc``.
2. Softmax: ``dp_j / de_k = p_j (delta_jk - p_k)``, hence ``dE = P * (dP - sum_j dP_j p_j)``. A masked key has
   ``p_j = 0`` and so ``dE_j = 0``; a row with no real key has ``P = 0`` and passes nothing.
3. The score ``e_j = v^T a_j``: ``dv = sum_j dE_j a_j`` and ``dA_j = dE_j v``.
4. tanh: ``da/dz = 1 - a^2``, so ``dZ_j = dA_j * (1 - a_j^2)``.
5. ``z_j = W s + U h_j + b``: ``W s + b`` is shared by every j, so its gradient is ``dZ_sum = sum_j dZ_j``:
   ``dW = dZ_sum s^T``, ``ds = W^T dZ_sum``, ``db = dZ_sum``; ``U h_j`` is per key: ``dU = sum_j dZ_j h_j^T``,
   ``dh_j = U^T dZ_j``. Over a batch the parameter gradients are summed over the rows too.

Dot-product attention (Luong's dot score, ``e_j = q . h_j``) shares steps 1-2, then ``dq = sum_j dE_j h_j``
and ``dh_j = dE_j q`` (plus ``p_j dc`` when the values are the keys).
"""

from __future__ import annotations

import torch
from torch import Tensor

from attnlab.functional.scores import (
    _attend,
    _check_additive_params,
    _check_dot,
    _check_general_params,
    _split_concat,
    additive_hidden,
    check_attention_inputs,
)
from attnlab.functional.sdpa import AttentionOutput, scaled_dot_product_attention
from attnlab.functional.softmax import softmax_backward


def _context_backward(p: Tensor, x: Tensor, d_c: Tensor, d_p_out: Tensor) -> tuple[Tensor, Tensor]:
    """``c = sum_j p_j x_j``: return ``dP = X dc + dp_out`` (B, S) and ``dX = P^T dc`` (B, S, Dv)."""
    d_p = (x @ d_c.unsqueeze(-1)).squeeze(-1) + d_p_out  # (B, S, Dv) @ (B, Dv, 1) -> (B, S): x_j . dc
    d_x = p.unsqueeze(-1) * d_c.unsqueeze(1)  # (B, S, 1) * (B, 1, Dv) -> (B, S, Dv): p_j dc
    return d_p, d_x


class AdditiveAttentionFunction(torch.autograd.Function):
    """One step of Bahdanau attention with the backward above.

    ``apply(s, h, values, W, U, v, b, key_mask)``: ``s`` ``(B, Dq)``, ``h`` ``(B, S, Dk)``, ``values``
    ``(B, S, Dv)`` or None (the keys), ``W`` ``(A, Dq)``, ``U`` ``(A, Dk)``, ``v`` ``(A,)``, ``b`` ``(A,)`` or
    None, ``key_mask`` ``(B, S)`` bool or None. Returns ``(context (B, Dv), weights (B, S))``, both differentiable.
    Unchecked: call :func:`additive_attention_manual`.
    """

    @staticmethod
    def forward(ctx, s, h, values, W, U, v, b, key_mask):
        x = h if values is None else values
        a = additive_hidden(s.unsqueeze(1), h, W, U, b).squeeze(1)  # (B, 1, S, A) -> (B, S, A): tanh(W s + U h_j + b)
        e = a @ v  # (B, S, A) @ (A,) -> (B, S): e_j = v^T a_j
        context, p = _attend(e.unsqueeze(1), x, key_mask)  # (B, 1, Dv), (B, 1, S)
        context, p = context.squeeze(1), p.squeeze(1)
        ctx.save_for_backward(s, h, x, W, U, v, a, p)
        ctx.values_are_keys, ctx.has_bias = values is None, b is not None
        return context, p

    @staticmethod
    def backward(ctx, d_c, d_p_out):
        s, h, x, W, U, v, a, p = ctx.saved_tensors
        d_p, d_x = _context_backward(p, x, d_c, d_p_out)  # step 1
        d_e = softmax_backward(p, d_p)  # step 2: (B, S)
        d_v = torch.einsum("bs,bsa->a", d_e, a)  # step 3: sum over b, j of dE_j a_j
        d_z = (d_e.unsqueeze(-1) * v) * (1 - a * a)  # steps 3-4: (B, S, 1) * (A,) * (B, S, A) -> (B, S, A)
        d_z_sum = d_z.sum(1)  # (B, A): W s + b is shared by the S keys
        d_W = d_z_sum.T @ s  # step 5: (A, B) @ (B, Dq) -> (A, Dq)
        d_s = d_z_sum @ W  # (B, A) @ (A, Dq) -> (B, Dq)
        d_U = d_z.flatten(0, 1).T @ h.flatten(0, 1)  # (A, B*S) @ (B*S, Dk) -> (A, Dk)
        d_h = d_z @ U  # (B, S, A) @ (A, Dk) -> (B, S, Dk)
        d_b = d_z_sum.sum(0) if ctx.has_bias else None  # (A,)
        if ctx.values_are_keys:
            d_h = d_h + d_x  # dH += P^T dC: the keys were mixed as values too
            d_x = None
        return d_s, d_h, d_x, d_W, d_U, d_v, d_b, None


class DotAttentionFunction(torch.autograd.Function):
    """One step of dot-product attention ``e_j = q . h_j`` (Luong's dot score) with the backward above.

    ``apply(q, h, values, key_mask)``: ``q`` ``(B, D)``, ``h`` ``(B, S, D)``, ``values`` ``(B, S, Dv)`` or None
    (the keys), ``key_mask`` ``(B, S)`` or None. Returns ``(context (B, Dv), weights (B, S))``. The forward is the
    shared SDPA (``impl="naive"``, ``scale=1``). Unchecked: call :func:`dot_attention_manual`.
    """

    @staticmethod
    def forward(ctx, q, h, values, key_mask):
        x = h if values is None else values
        attn_mask = None if key_mask is None else key_mask.unsqueeze(1)  # (B, 1, S)
        out = scaled_dot_product_attention(
            q.unsqueeze(1), h, x, attn_mask, scale=1.0, impl="naive", return_weights=True
        )  # output (B, 1, Dv), weights (B, 1, S)
        context, p = out.output.squeeze(1), out.weights.squeeze(1)
        ctx.save_for_backward(q, h, x, p)
        ctx.values_are_keys = values is None
        return context, p

    @staticmethod
    def backward(ctx, d_c, d_p_out):
        q, h, x, p = ctx.saved_tensors
        d_p, d_x = _context_backward(p, x, d_c, d_p_out)
        d_e = softmax_backward(p, d_p)  # (B, S)
        d_q = (d_e.unsqueeze(1) @ h).squeeze(1)  # (B, 1, S) @ (B, S, D) -> (B, D): sum_j dE_j h_j
        d_h = d_e.unsqueeze(-1) * q.unsqueeze(1)  # (B, S, 1) * (B, 1, D) -> (B, S, D): dE_j q
        if ctx.values_are_keys:
            d_h = d_h + d_x  # dH += P^T dC
            d_x = None
        return d_q, d_h, d_x, None


def additive_attention_manual(
    query: Tensor,
    keys: Tensor,
    values: Tensor | None,
    W: Tensor,
    U: Tensor,
    v: Tensor,
    b: Tensor | None = None,
    *,
    key_mask: Tensor | None = None,
) -> AttentionOutput:
    """:func:`attnlab.functional.additive_attention` through :class:`AdditiveAttentionFunction` (same arguments,
    same numbers); a ``(B, T, Dq)`` query is taken one step at a time."""
    q, _, mask, single = check_attention_inputs(query, keys, values, key_mask)
    _check_additive_params(q, keys, W, U, v, b)
    steps = [AdditiveAttentionFunction.apply(q_t, keys, values, W, U, v, b, mask) for q_t in q.unbind(1)]
    return _stack(steps, single)


def dot_attention_manual(
    query: Tensor, keys: Tensor, values: Tensor | None = None, *, key_mask: Tensor | None = None
) -> AttentionOutput:
    """:func:`attnlab.functional.dot_attention` through :class:`DotAttentionFunction`; ``(B, T, Dq)`` step by step."""
    q, _, mask, single = check_attention_inputs(query, keys, values, key_mask)
    _check_dot(q, keys)
    steps = [DotAttentionFunction.apply(q_t, keys, values, mask) for q_t in q.unbind(1)]
    return _stack(steps, single)


def general_attention_manual(
    query: Tensor, keys: Tensor, values: Tensor | None, W_a: Tensor, *, key_mask: Tensor | None = None
) -> AttentionOutput:
    """:func:`attnlab.functional.general_attention` with the projection ``h_t^T W_a`` left to autograd and the
    attention through :class:`DotAttentionFunction` (``h_t^T W_a hbar_s = (W_a^T h_t) . hbar_s``)."""
    q, _, mask, single = check_attention_inputs(query, keys, values, key_mask)
    _check_general_params(q, keys, W_a)
    q_a = q @ W_a  # (B, T, Dq) @ (Dq, Dk) -> (B, T, Dk)
    steps = [DotAttentionFunction.apply(q_t, keys, values, mask) for q_t in q_a.unbind(1)]
    return _stack(steps, single)


def concat_attention_manual(
    query: Tensor, keys: Tensor, values: Tensor | None, W_a: Tensor, v_a: Tensor, *, key_mask: Tensor | None = None
) -> AttentionOutput:
    """:func:`attnlab.functional.concat_attention` through :class:`AdditiveAttentionFunction` with
    ``W = W_a[:, :Dq]``, ``U = W_a[:, Dq:]`` (the split's backward is autograd's)."""
    q, _, mask, single = check_attention_inputs(query, keys, values, key_mask)
    W_q, W_k = _split_concat(q, keys, W_a, v_a)
    steps = [AdditiveAttentionFunction.apply(q_t, keys, values, W_q, W_k, v_a, None, mask) for q_t in q.unbind(1)]
    return _stack(steps, single)


def _stack(steps: list[tuple[Tensor, Tensor]], single: bool) -> AttentionOutput:
    """Per-step ``(context (B, Dv), weights (B, S))`` -> ``(B, [T,] Dv)``, ``(B, [T,] S)``."""
    if single:
        return AttentionOutput(*steps[0])
    contexts, weights = zip(*steps, strict=True)
    return AttentionOutput(torch.stack(contexts, 1), torch.stack(weights, 1))  # (B, T, Dv), (B, T, S)
