"""Synthetic sequence tasks generated from a seed (no files, no network).

Recall at distance d
--------------------
The answer is a token seen ``d`` steps before the point where it is asked for: the information in token 1
must cross ``d + 1`` recurrent steps to reach the output (chapter §4.2: "token 1 and token 100 are one
attention step apart, 99 steps for an RNN"). One example of distance ``d`` is ``T = d + 2`` tokens::

    position:  0        1 .. d               d + 1
    token:     symbol   d distractors        query
    target:    the symbol at position 0

Vocabulary layout (``V = n_symbols + n_distractors + 2`` ids, see :func:`recall_vocab`)::

    [0, K)          the K = n_symbols symbols to remember (the classes; chance is 1/K)
    [K, K + M)      the M = n_distractors distractor tokens, disjoint from the symbols
    K + M           the query token ("answer now")
    K + M + 1       padding, after the query of shorter sequences in a mixed-distance batch

Symbols and distractors are drawn uniformly and independently. A batch may mix distances (a ``(B,)``
tensor): sequences are right-padded to the longest, and ``lengths`` (``d + 2`` each) says where each ends,
ready for the ``lengths=`` argument of :class:`attnlab.nn.RNN` / ``LSTM`` / ``GRU``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from attnlab._checks import check_positive_int, shape_str


class RecallVocab(NamedTuple):
    """Token ids of the recall task: symbols ``[0, n_symbols)``, then distractors, query, padding."""

    n_symbols: int
    n_distractors: int
    query: int
    pad: int
    size: int


class RecallBatch(NamedTuple):
    """One batch of recall-at-distance examples.

    tokens ``(B, T)`` long, T = max(distance) + 2, right-padded with ``vocab.pad``;
    lengths ``(B,)`` long, ``distance + 2`` (the query is the last valid token);
    targets ``(B,)`` long, in ``[0, n_symbols)``: the first token of each sequence.
    """

    tokens: Tensor
    lengths: Tensor
    targets: Tensor


def recall_vocab(n_symbols: int, n_distractors: int) -> RecallVocab:
    """The vocabulary layout of :func:`recall_batch` (see the module docstring)."""
    check_positive_int("n_symbols", n_symbols, minimum=2)
    check_positive_int("n_distractors", n_distractors)
    query = n_symbols + n_distractors
    return RecallVocab(n_symbols, n_distractors, query=query, pad=query + 1, size=query + 2)


def recall_batch(
    batch_size: int,
    distance: int | Tensor,
    *,
    n_symbols: int,
    n_distractors: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> RecallBatch:
    """A batch of "recall the first token after ``distance`` distractors" examples.

    Args:
        batch_size: B >= 1.
        distance: d >= 0 distractors between the symbol and the query: one int for the whole batch, or a
            1-D integer tensor of B per-example distances (the batch is then right-padded).
        n_symbols: K >= 2 symbols to remember (the classes).
        n_distractors: M >= 1 distractor tokens, disjoint from the symbols.
        generator: a CPU ``torch.Generator``; the same seed gives the same batch.
        device: where the returned tensors live (they are drawn on the CPU, so the batch does not depend on
            the device).

    Returns:
        :class:`RecallBatch` ``(tokens (B, T), lengths (B,), targets (B,))``, all long.
    """
    B = check_positive_int("batch_size", batch_size)
    vocab = recall_vocab(n_symbols, n_distractors)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator: expected a CPU generator, got one on {generator.device}")
    dist = _check_distance(distance, B)  # (B,) long, on the CPU

    T = int(dist.max()) + 2
    lengths = dist + 2  # (B,): symbol, d distractors, query
    targets = torch.randint(0, n_symbols, (B,), generator=generator)  # (B,)
    tokens = torch.randint(n_symbols, n_symbols + n_distractors, (B, T), generator=generator)  # (B, T)
    tokens[:, 0] = targets
    pos = torch.arange(T).unsqueeze(0)  # (1, T)
    last = (lengths - 1).unsqueeze(1)  # (B, 1)
    tokens = torch.where(pos == last, vocab.query, tokens)
    tokens = torch.where(pos > last, vocab.pad, tokens)
    return RecallBatch(tokens.to(device), lengths.to(device), targets.to(device))


def _check_distance(distance: object, batch_size: int) -> Tensor:
    if isinstance(distance, Tensor):
        if distance.dim() != 1 or distance.shape[0] != batch_size:
            raise ValueError(
                f"distance: expected an int or a 1-D tensor of batch_size={batch_size} distances, "
                f"got shape {shape_str(distance)}"
            )
        if distance.is_floating_point() or distance.is_complex() or distance.dtype == torch.bool:
            raise TypeError(f"distance: expected an integer tensor, got dtype {distance.dtype}")
        dist = distance.detach().to("cpu", torch.long)
        if int(dist.min()) < 0:
            raise ValueError(f"distance: expected every distance >= 0, got minimum {int(dist.min())}")
        return dist
    if isinstance(distance, bool) or not isinstance(distance, int):
        raise TypeError(f"distance: expected an int or a 1-D integer tensor, got {type(distance).__name__}")
    if distance < 0:
        raise ValueError(f"distance: expected an integer >= 0, got {distance}")
    return torch.full((batch_size,), distance, dtype=torch.long)
