"""Exercise 3.3 ``causal_mask``: the causal mask of a block of T queries that follows S - T cached positions
(bottom-right alignment); checked against the lower triangle and against a full causal forward."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.exercises.engine import Check, Exercise, Mistake
from attnlab.exercises.trial import Trial
from attnlab.nn.multihead import MultiHeadAttention


def causal_mask(T, S):
    """Query i is position S - T + i of the sequence: it may attend keys j <= S - T + i."""
    rows = torch.arange(T).unsqueeze(1) + (S - T)  # (T, 1): each query's absolute position
    return torch.arange(S) <= rows  # (T, S)


def _call(t: Trial, T: int, S: int) -> torch.Tensor:
    return t.tensor(t.call(T, S), (T, S), torch.bool, f"causal_mask({T}, {S})")


def _want(T: int, S: int) -> torch.Tensor:
    return torch.ones(S, S, dtype=torch.bool).tril()[S - T :]  # the last T rows of the full triangle


def _contract(t: Trial) -> None:
    _call(t, 3, 5)


def _square(t: Trial) -> None:
    T = t.integer(2, 9)
    t.expect(torch.equal(_call(t, T, T), _want(T, T)), f"causal_mask({T}, {T}) is not the lower triangle (j <= i)")


def _after_cache(t: Trial) -> None:
    T = t.integer(2, 5)
    S = T + t.integer(1, 6)
    got = _call(t, T, S)
    t.expect(
        torch.equal(got, _want(T, S)),
        f"causal_mask({T}, {S}): row 0 should allow keys 0..{S - T}, got {got[0].nonzero().flatten().tolist()}",
    )


def _one_token(t: Trial) -> None:
    S = t.integer(2, 12)
    got = _call(t, 1, S)
    t.expect(bool(got.all()), f"causal_mask(1, {S}): one new token sees all {S} keys, got {int(got.sum())}")


def _cached_equals_full(t: Trial) -> None:
    N = t.integer(4, 10)
    T = t.integer(1, N - 1)
    q, k, v = (t.randn(2, 2, N, 8) for _ in range(3))
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (2, 2, N, 8)
    mask = _call(t, T, N)
    block = F.scaled_dot_product_attention(q[..., N - T :, :], k, v, attn_mask=mask)
    t.close(block, full[..., N - T :, :], f"the last {T} queries over all {N} keys with your mask, against the full")


def _top_left(T, S):
    return torch.ones(T, S, dtype=torch.bool).tril()


def _inverted(T, S):
    return torch.ones(T, S, dtype=torch.bool).triu(S - T + 1)


def _no_self(T, S):
    return torch.ones(T, S, dtype=torch.bool).tril(S - T - 1)


def _one_future(T, S):
    return torch.ones(T, S, dtype=torch.bool).tril(S - T + 1)


def _additive(T, S):
    return torch.zeros(T, S).masked_fill(~causal_mask(T, S), float("-inf"))


MISTAKES = (
    Mistake(
        "causal.top_left",
        "top-left alignment after a cache",
        "with a cache the T queries are the LAST T of the S positions: query i sits at position S - T + i and sees "
        "keys j <= S - T + i (bottom-right); torch.ones(T, S).tril() lets the first new token see only key 0",
        _top_left,
    ),
    Mistake(
        "causal.inverted",
        "mask polarity inverted",
        "return True where attention is ALLOWED (keys at or before the query), as torch's bool masks do",
        _inverted,
    ),
    Mistake(
        "causal.no_self",
        "each query hides its own key",
        "a token attends itself: allow j <= S - T + i, with the diagonal",
        _no_self,
    ),
    Mistake(
        "causal.one_future",
        "one future key visible",
        "the diagonal offset is S - T: allow j <= S - T + i, not S - T + i + 1",
        _one_future,
    ),
    Mistake(
        "causal.additive",
        "an additive (0 / -inf) mask instead of a bool one",
        "return a torch.bool tensor, True where allowed; the additive form is built from it by the caller",
        _additive,
    ),
)

EXERCISE = Exercise(
    name="causal_mask",
    section="3.3",
    title="The causal mask after a KV cache (bottom-right)",
    task=(
        "Return the boolean causal mask for T new queries that follow S - T cached positions: the queries are the "
        "last T of the S positions, so query i (position S - T + i) may attend keys j <= S - T + i. True means "
        "allowed. With T == S it is the lower triangle; with T = 1 (one decoded token) every key is allowed."
    ),
    equation="mask[i, j] = (j <= S - T + i)    (bottom-right alignment; torch's is_causal is top-left: j <= i)",
    shapes="T, S: ints with 1 <= T <= S; returns (T, S) bool",
    returns="the (T, S) bool mask",
    reference=causal_mask,
    solution=(causal_mask, MultiHeadAttention._mask),
    checks=(
        Check("shape and dtype", "causal_mask(3, 5) is a (3, 5) bool tensor", "", _contract),
        Check("T == S", "the lower triangle, diagonal included", "", _square),
        Check("after a cache", "T < S: bottom-right alignment", "", _after_cache),
        Check("one new token", "T = 1 sees every key", "", _one_token),
        Check(
            "cached block = full forward",
            "the last T queries with your mask equal the last T rows of a full causal attention",
            "",
            _cached_equals_full,
        ),
    ),
    mistakes=MISTAKES,
    forbidden=(),
)
