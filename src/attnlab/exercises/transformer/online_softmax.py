"""Exercise 3.3 ``online_softmax_update``: one tile of the FlashAttention recurrence, checked against the softmax
of all the scores at once (torch) and against the state the recurrence must carry after every tile."""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from attnlab.exercises.engine import Check, Exercise, Mistake
from attnlab.exercises.trial import Trial
from attnlab.functional.chunked import _ChunkedSDPA


def online_softmax_update(m, l, acc, scores, values):
    """Dao et al. 2022: m' = max(m, rowmax S_b); l' = e^(m - m') l + rowsum e^(S_b - m');
    acc' = e^(m - m') acc + e^(S_b - m') V_b."""
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True))  # (..., T, 1): the running row max
    m_safe = torch.where(torch.isneginf(m_new), 0.0, m_new)  # rows with no allowed key yet: no -inf - -inf
    p = torch.exp(scores - m_safe)  # (..., T, bk)
    alpha = torch.exp(m - m_safe)  # rescales what was accumulated under the old max
    return m_new, alpha * l + p.sum(-1, keepdim=True), alpha * acc + p @ values  # (..., T, bk) @ (..., bk, hv)


def _init(*batch: int, T: int, hv: int, dtype=torch.float32) -> tuple[Tensor, Tensor, Tensor]:
    return (
        torch.full((*batch, T, 1), float("-inf"), dtype=dtype),
        torch.zeros(*batch, T, 1, dtype=dtype),
        torch.zeros(*batch, T, hv, dtype=dtype),
    )


def _update(t: Trial, state, s: Tensor, v: Tensor):
    m, l, acc = t.parts(t.call(*state, s, v), 3, "the new state (m, l, acc)")
    t.tensor(m, state[0].shape, s.dtype, "m")
    t.tensor(l, state[1].shape, s.dtype, "l")
    t.tensor(acc, state[2].shape, s.dtype, "acc")
    return m, l, acc


def _sweep(t: Trial, scores: Tensor, values: Tensor, sizes: list[int], state_check: bool = False) -> Tensor:
    """Run the learner's update over key blocks of these sizes; return acc / l (0 where l = 0)."""
    state = _init(*scores.shape[:-2], T=scores.shape[-2], hv=values.shape[-1], dtype=scores.dtype)
    j = 0
    for size in sizes:
        s, v = scores[..., j : j + size], values[..., j : j + size, :]
        want = online_softmax_update(*state, s, v)
        state = _update(t, state, s, v)
        j += size
        if state_check:
            for name, got, w in zip(("m", "l", "acc"), state, want, strict=True):
                t.close(got, w, f"{name} after keys 0..{j - 1} (the state the recurrence carries)")
    _, l, acc = state
    return acc / torch.where(l == 0, 1.0, l)


def _softmax_v(scores: Tensor, values: Tensor) -> Tensor:
    p = torch.softmax(scores, -1).nan_to_num(0.0)  # a row with no allowed key: zeros
    return p @ values


def _blocks(t: Trial, S: int) -> list[int]:
    sizes = []
    while sum(sizes) < S:
        sizes.append(min(t.integer(1, 5), S - sum(sizes)))
    return sizes


def _contract(t: Trial) -> None:
    _update(t, _init(2, T=3, hv=4), t.randn(2, 3, 5), t.randn(2, 5, 4))


def _one_block(t: Trial) -> None:
    s, v = t.randn(2, 4, 7), t.randn(2, 7, 5)
    t.close(_sweep(t, s, v, [7]), _softmax_v(s, v), "acc / l after one block of all 7 keys, against softmax(S) V")


def _many_blocks(t: Trial) -> None:
    s, v = t.randn(2, 3, 13, scale=2.0), t.randn(2, 13, 6)
    s = s + torch.arange(13) * 0.5  # later keys score higher: the running max moves, the rescaling matters
    sizes = _blocks(t, 13)
    t.close(_sweep(t, s, v, sizes), _softmax_v(s, v), f"acc / l over blocks of {sizes} keys, against softmax(S) V")


def _single_keys(t: Trial) -> None:
    s, v = t.randn(1, 5, 6, scale=3.0), t.randn(1, 6, 3)
    t.close(_sweep(t, s, v, [1] * 6), _softmax_v(s, v), "acc / l over 6 blocks of one key each")


def _state(t: Trial) -> None:
    s, v = t.randn(2, 4, 9, scale=2.0), t.randn(2, 9, 3)
    _sweep(t, s, v, [3, 2, 4], state_check=True)


def _masked(t: Trial) -> None:
    s, v = t.randn(2, 5, 10), t.randn(2, 10, 4)
    s = s.masked_fill(t.bools(2, 5, 10, p=0.3), float("-inf"))
    s[:, 1, :4] = float("-inf")  # row 1: the whole first block is masked (m stays -inf after it)
    s[:, 2, :] = float("-inf")  # row 2: no allowed key at all (output zeros)
    got = _sweep(t, s, v, [4, 3, 3])
    t.close(got, _softmax_v(s, v), "acc / l with -inf scores, a fully masked first block and a fully masked row")


def _float64(t: Trial) -> None:
    s, v = t.randn(3, 2, 11, dtype=torch.float64), t.randn(3, 11, 40, dtype=torch.float64)
    t.close(_sweep(t, s, v, [5, 6]), _softmax_v(s, v), "acc / l in float64")


def _variant(**knobs):
    return functools.partial(_update_with, **knobs)


def _update_with(
    m,
    l,
    acc,
    scores,
    values,
    *,
    rescale_acc=True,
    rescale_l=True,
    inverted=False,
    guard=True,
    running_max=True,
    normalized=False,
):
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True)) if running_max else scores.amax(-1, keepdim=True)
    m_safe = torch.where(torch.isneginf(m_new), 0.0, m_new) if guard else m_new
    p = torch.exp(scores - m_safe)
    alpha = torch.exp(m_safe - m) if inverted else torch.exp(m - m_safe)
    l_new = (alpha * l if rescale_l else l) + p.sum(-1, keepdim=True)
    if normalized:  # keeps acc divided by l (FlashAttention-1's bookkeeping), not this exercise's contract
        return m_new, l_new, (alpha * l * acc + p @ values) / torch.where(l_new == 0, 1.0, l_new)
    return m_new, l_new, (alpha * acc if rescale_acc else acc) + p @ values


MISTAKES = (
    Mistake(
        "online.acc_not_rescaled",
        "acc not rescaled when the max grows",
        "what acc holds was weighted by e^(s - m_old); when the max becomes m_new multiply it by e^(m_old - m_new)",
        _variant(rescale_acc=False),
    ),
    Mistake(
        "online.l_not_rescaled",
        "l not rescaled when the max grows",
        "the running sum l was taken under the old max: l' = e^(m - m') l + rowsum(e^(S_b - m'))",
        _variant(rescale_l=False),
    ),
    Mistake(
        "online.inverted_rescale",
        "the rescaling factor inverted",
        "the factor is e^(m_old - m_new) <= 1 (the old terms shrink relative to the new max), not e^(m_new - m_old)",
        _variant(inverted=True),
    ),
    Mistake(
        "online.nan_masked",
        "NaN while a row has seen only masked keys",
        "while every score so far is -inf, m' = -inf and e^(m - m') = e^(-inf + inf) = NaN: subtract "
        "torch.where(torch.isneginf(m_new), 0.0, m_new) instead",
        _variant(guard=False),
    ),
    Mistake(
        "online.block_max",
        "the running max not kept",
        "m' = max(m, rowmax(S_b)): the state's m is the max over every key seen so far, not over this block",
        _variant(running_max=False),
    ),
    Mistake(
        "online.normalized_acc",
        "acc kept normalized",
        "here acc is the unnormalized sum O = sum_j e^(s_j - m) v_j; divide by l only once, after the last block",
        _variant(normalized=True),
    ),
)

EXERCISE = Exercise(
    name="online_softmax_update",
    section="3.3",
    title="One online-softmax tile update (FlashAttention)",
    task=(
        "FlashAttention never holds the (T, S) weights: it walks over blocks of keys and keeps, per query row, the "
        "running max m, the running sum l of exp(score - m) and the unnormalized output acc. Given that state and "
        "one block's scores and values, return the new state. Start from m = -inf, l = 0, acc = 0; after the last "
        "block the output is acc / l. A row whose scores so far are all -inf must stay m = -inf, l = 0, acc = 0 "
        "(no NaN)."
    ),
    equation=(
        "m' = max(m, rowmax S_b);  l' = e^(m - m') l + rowsum e^(S_b - m');  acc' = e^(m - m') acc + e^(S_b - m') V_b"
    ),
    shapes="m, l (..., T, 1); acc (..., T, hv); scores (..., T, bk); values (..., bk, hv)",
    returns="a tuple (m', l', acc') of the same shapes",
    reference=online_softmax_update,
    solution=(online_softmax_update, _ChunkedSDPA.forward),
    checks=(
        Check("shape and dtype", "(2, 3, 1) state, a block of 5 keys", "", _contract),
        Check("one block = softmax", "all keys in one block: acc / l = softmax(S) V", "", _one_block),
        Check("many blocks = softmax", "random block sizes, a moving max: acc / l = softmax(S) V", "", _many_blocks),
        Check("one key per block", "blocks of a single key", "", _single_keys),
        Check("state after every block", "m, l and acc after each block are those of the recurrence", "", _state),
        Check("masked scores", "-inf scores, a masked first block, a fully masked row (zeros)", "", _masked),
        Check("float64", "dtype follows the inputs; head size 40", "", _float64),
    ),
    mistakes=MISTAKES,
)
