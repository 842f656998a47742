"""Multi-query associative recall (MQAR, Arora et al. 2023, "Zoology", section 3): key-value pairs in context,
then queries for the keys; the answer to each query is the value its key was paired with.

One example with D pairs is ``T = 2D`` tokens: D pair tokens, then the D keys again in a random order::

    position:  0          1          ..  D-1        | D       D+1     ..  2D-1
    token:     (k_1,v_1)  (k_2,v_2)  ..  (k_D,v_D)  | k_p(1)  k_p(2)  ..  k_p(D)
    target:    -1         -1         ..  -1         | v_p(1)  v_p(2)  ..  v_p(D)

``targets[t]`` is what the model must predict at position t (the next-token convention of
:class:`attnlab.models.GPT`, whose loss ignores ``-1``): at a query ``k_p(i)``, the value it was paired with;
nothing at the pairs (they are random, so unpredictable). Every key of the context is queried once, in a random
order p, so one example scores D recalls. As in Zoology the keys of an example are distinct (a query has one
answer) and so are its values, so a model that answers with a random value of its context is right 1/D of the
time, and one that guesses any value ``1/n_values``.

Vocabulary (``V = n_keys + n_values + n_keys n_values`` ids, :func:`mqar_vocab`)::

    [0, K)                 the K = n_keys keys (the queries)
    [K, K + N)             the N = n_values values (the answers)
    [K + N, K + N + K N)   the pair tokens: (k, v) is K + N + k N + v

Deviation from Zoology, stated: there a pair is two tokens, the key then its value, and the queries are spaced
by power-law gaps of random tokens. Recalling a two-token pair needs a way to bind each value to the key before
it: in attention an induction circuit (a head that copies the previous token, then a head that matches on it),
in Mamba and in Zoology's Based a short convolution; causal linear attention without a convolution has none.
With one token per pair, every model can store the association in one step, and what remains is the recall
itself: holding D associations in context and retrieving one by its key.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from attnlab._checks import check_positive_int


class MQARVocab(NamedTuple):
    """Token ids of MQAR: keys ``[0, n_keys)``, values ``[values, values + n_values)``, pairs from ``pairs``."""

    n_keys: int
    n_values: int
    values: int
    pairs: int
    size: int


class MQARBatch(NamedTuple):
    """tokens ``(B, 2D)`` long; targets ``(B, 2D)`` long: the value's id at each query position, -1 elsewhere."""

    tokens: Tensor
    targets: Tensor


def mqar_vocab(n_keys: int, n_values: int) -> MQARVocab:
    """The vocabulary layout of :func:`mqar_batch` (see the module docstring)."""
    K = check_positive_int("n_keys", n_keys)
    N = check_positive_int("n_values", n_values)
    return MQARVocab(K, N, values=K, pairs=K + N, size=K + N + K * N)


def mqar_batch(
    batch_size: int,
    n_pairs: int,
    *,
    n_keys: int,
    n_values: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> MQARBatch:
    """A batch of MQAR examples with ``n_pairs`` = D key-value pairs each (see the module docstring).

    Args:
        batch_size: B >= 1.
        n_pairs: D >= 1 pairs per example, at most ``n_keys`` and ``n_values`` (both distinct in an example).
        n_keys, n_values: the numbers of keys and values (:func:`mqar_vocab` lays out the ids).
        generator: a CPU ``torch.Generator``; the same seed gives the same batch.
        device: where the returned tensors live (drawn on the CPU, so the batch does not depend on the device).
    """
    B = check_positive_int("batch_size", batch_size)
    D = check_positive_int("n_pairs", n_pairs)
    vocab = mqar_vocab(n_keys, n_values)
    if n_pairs > min(n_keys, n_values):
        raise ValueError(f"n_pairs: expected at most min(n_keys, n_values)={min(n_keys, n_values)} (distinct), got {D}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator: expected a CPU generator, got one on {generator.device}")

    keys = torch.rand(B, n_keys, generator=generator).argsort(-1)[:, :D]  # (B, D) distinct key indices
    values = torch.rand(B, n_values, generator=generator).argsort(-1)[:, :D]  # (B, D) distinct value indices
    order = torch.rand(B, D, generator=generator).argsort(-1)  # (B, D) the query order p
    pairs = vocab.pairs + keys * n_values + values  # (B, D) the pair tokens (k_i, v_i)
    tokens = torch.cat([pairs, keys.gather(1, order)], dim=1)  # (B, 2D)
    answers = vocab.values + values.gather(1, order)  # (B, D)
    targets = torch.cat([torch.full((B, D), -1, dtype=torch.long), answers], dim=1)  # (B, 2D)
    return MQARBatch(tokens.to(device), targets.to(device))


__all__ = ["MQARBatch", "MQARVocab", "mqar_batch", "mqar_vocab"]
