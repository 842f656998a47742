"""Float64 references for the classic attention, written straight from the papers with a loop over positions.

For the tests' eyes only: one score at a time, ``e_j = score(q, k_j)`` for ``j in range(S)``, a softmax over the
real keys written out (``exp(e_j - max) / sum``), ``c = sum_j alpha_j v_j`` as a Python sum. No batching, no
matmul over positions, no masked_fill: nothing shared with the code under test but torch's scalar/vector ops.

Shapes: query ``(B, Dq)`` or ``(B, T, Dq)``, keys ``(B, S, Dk)``, values ``(B, S, Dv)``, key_mask ``(B, S)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Score = Callable[[Tensor, Tensor], Tensor]  # (q (Dq,), k (Dk,)) -> e ()


def bahdanau_score(W: Tensor, U: Tensor, v: Tensor, b: Tensor | None = None) -> Score:
    """Bahdanau et al. 2015, eq. (6): ``e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)`` (+ b inside the tanh)."""

    def score(s: Tensor, h: Tensor) -> Tensor:
        z = W @ s + U @ h
        if b is not None:
            z = z + b
        return v @ torch.tanh(z)

    return score


def luong_dot(h_t: Tensor, hbar_s: Tensor) -> Tensor:
    """Luong et al. 2015, eq. (8), dot: ``h_t^T hbar_s``."""
    return h_t @ hbar_s


def luong_general(W_a: Tensor) -> Score:
    """Luong eq. (8), general: ``h_t^T W_a hbar_s``."""
    return lambda h_t, hbar_s: h_t @ (W_a @ hbar_s)


def luong_concat(W_a: Tensor, v_a: Tensor) -> Score:
    """Luong eq. (8), concat: ``v_a^T tanh(W_a [h_t ; hbar_s])``, with the concatenation done literally."""
    return lambda h_t, hbar_s: v_a @ torch.tanh(W_a @ torch.cat([h_t, hbar_s]))


def attention_loop(
    score: Score, query: Tensor, keys: Tensor, values: Tensor | None = None, key_mask: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(context (B, [T,] Dv), weights (B, [T,] S), scores (B, [T,] S))``, position by position.

    ``scores`` are the raw ``e_j`` (masking does not touch them); masked keys get weight 0; a row with no real key
    has zero weights and a zero context.
    """
    values = keys if values is None else values
    single = query.dim() == 2
    q = query.unsqueeze(1) if single else query  # (B, T, Dq)
    B, T, S = q.shape[0], q.shape[1], keys.shape[1]
    contexts, weights, all_scores = [], [], []
    for b in range(B):
        real = [j for j in range(S) if key_mask is None or bool(key_mask[b, j])]
        for t in range(T):
            e = [score(q[b, t], keys[b, j]) for j in range(S)]  # e_j = score(q, k_j)
            if real:
                top = max(float(e[j].detach()) for j in real)  # subtract the max: the same softmax, no overflow
                ex = {j: torch.exp(e[j] - top) for j in real}
                total = sum(ex.values())
                alpha = [ex[j] / total if j in ex else torch.zeros_like(e[j]) for j in range(S)]
            else:
                alpha = [torch.zeros_like(e[j]) for j in range(S)]
            c = sum(alpha[j] * values[b, j] for j in range(S))  # c = sum_j alpha_j v_j
            contexts.append(c)
            weights.append(torch.stack(alpha))
            all_scores.append(torch.stack(e))
    shape = (B,) if single else (B, T)
    context = torch.stack(contexts).reshape(*shape, values.shape[-1])
    return context, torch.stack(weights).reshape(*shape, S), torch.stack(all_scores).reshape(*shape, S)


# --- test cases: inputs, our functions and the reference on the same dict of tensors ----------------------------

SCORES = ("additive", "additive-bias", "dot", "general", "concat")
PARAMS = {  # score -> parameter names, in the order of the functional's positional arguments
    "additive": ("W", "U", "v"),
    "additive-bias": ("W", "U", "v", "b"),
    "dot": (),
    "general": ("W_a",),
    "concat": ("W_a", "v_a"),
}
SHAPES = {  # name: (B, T or None for a (B, Dq) one-step query, S, Dq, Dk, Dv); dot uses Dk = Dq
    "step": (3, None, 7, 5, 6, 4),
    "T4": (2, 4, 6, 5, 3, 2),
    "S1": (2, 3, 1, 4, 4, 3),
    "T1": (3, 1, 5, 4, 2, 4),
    "B1-step": (1, None, 5, 3, 5, 2),
}
MASKS = ("none", "pad", "dead")  # pad: random padding, >= 1 real key per row; dead: also batch row 0 all padding
ATTN = 5  # A, the attention size of additive / concat


def randn(*shape: int, dtype=torch.float64, seed: int = 0) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def key_mask_for(kind: str, B: int, S: int, seed: int = 7) -> Tensor | None:
    if kind == "none":
        return None
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(B, S, generator=gen) > 0.4
    mask[torch.arange(B), torch.randint(S, (B,), generator=gen)] = True  # one real key per row at least
    if kind == "dead":
        mask[0] = False
    return mask


def make_inputs(
    score: str, shape: str, *, separate_values: bool = True, dtype=torch.float64, seed: int = 0
) -> dict[str, Tensor]:
    """query, keys, (values,) and the score's parameters, all random normal (float64 by default)."""
    B, T, S, Dq, Dk, Dv = SHAPES[shape]
    if score == "dot":
        Dk = Dq
    shapes = {
        "query": (B, Dq) if T is None else (B, T, Dq),
        "keys": (B, S, Dk),
        "values": (B, S, Dv),
        "W": (ATTN, Dq),
        "U": (ATTN, Dk),
        "v": (ATTN,),
        "b": (ATTN,),
        "W_a": (ATTN, Dq + Dk) if score == "concat" else (Dq, Dk),
        "v_a": (ATTN,),
    }
    names = ["query", "keys", *(["values"] if separate_values else []), *PARAMS[score]]
    return {name: randn(*shapes[name], dtype=dtype, seed=seed + i) for i, name in enumerate(names)}


def reference_score(score: str, x: dict[str, Tensor]) -> Score:
    if score.startswith("additive"):
        return bahdanau_score(x["W"], x["U"], x["v"], x.get("b"))
    if score == "dot":
        return luong_dot
    if score == "general":
        return luong_general(x["W_a"])
    return luong_concat(x["W_a"], x["v_a"])


def reference(score: str, x: dict[str, Tensor], key_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(context, weights)`` of the loop reference, in float64."""
    x = {k: t.double() for k, t in x.items()}
    context, weights, _ = attention_loop(reference_score(score, x), x["query"], x["keys"], x.get("values"), key_mask)
    return context, weights


def forward_backward(fn, x: dict[str, Tensor], seed: int = 99) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """``(context, weights) = fn(leaves)`` on fresh leaves, and the gradient of every input of
    ``<context, g_c> + <weights, g_w>`` for fixed random g_c, g_w (so the weights' own gradient path is tested)."""
    leaves = {k: t.detach().clone().requires_grad_() for k, t in x.items()}
    context, weights = fn(leaves)
    g_c = randn(*context.shape, seed=seed).to(context.dtype)  # drawn in float64: the same numbers at every dtype
    g_w = randn(*weights.shape, seed=seed + 1).to(weights.dtype)
    loss = (context * g_c).sum() + (weights * g_w).sum()
    # unused inputs (a reference row with no real key never touches the scores) get zero gradients
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True, materialize_grads=True)
    return context.detach(), weights.detach(), dict(zip(leaves, grads, strict=True))
