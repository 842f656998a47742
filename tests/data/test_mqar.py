"""The multi-query associative recall generator: layout, each query's answer is its pair's value, distinct keys and
values, every key queried once, determinism and argument errors."""

import pytest
import torch

from attnlab.data.mqar import MQARBatch, mqar_batch, mqar_vocab

K, N = 8, 6


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_vocab_layout():
    v = mqar_vocab(K, N)
    assert (v.n_keys, v.n_values, v.values, v.pairs, v.size) == (K, N, K, K + N, K + N + K * N)


@pytest.mark.parametrize("D", [1, 3, 6])
def test_layout_and_answers(D):
    B = 64
    v = mqar_vocab(K, N)
    b = mqar_batch(B, D, n_keys=K, n_values=N, generator=gen())
    assert isinstance(b, MQARBatch)
    assert b.tokens.shape == b.targets.shape == (B, 2 * D)
    assert b.tokens.dtype == b.targets.dtype == torch.long
    pairs, queries = b.tokens[:, :D], b.tokens[:, D:]
    assert ((pairs >= v.pairs) & (pairs < v.size)).all()  # pair tokens first
    assert ((queries >= 0) & (queries < K)).all()  # then keys
    assert (b.targets[:, :D] == -1).all()  # nothing to predict at the pairs
    answers = b.targets[:, D:]
    assert ((answers >= v.values) & (answers < v.values + N)).all()
    keys, values = (pairs - v.pairs) // N, (pairs - v.pairs) % N  # (B, D) each, decoded from the pair tokens
    for row in range(B):
        table = dict(zip(keys[row].tolist(), values[row].tolist(), strict=True))
        assert len(table) == D and len(set(values[row].tolist())) == D  # distinct keys, distinct values
        assert sorted(queries[row].tolist()) == sorted(table)  # every key queried once
        assert [v.values + table[k] for k in queries[row].tolist()] == answers[row].tolist()  # the paired value


def test_draws_cover_every_key_value_and_order():
    b = mqar_batch(2000, 2, n_keys=K, n_values=N, generator=gen())
    v = mqar_vocab(K, N)
    assert set(b.tokens[:, :2].flatten().tolist()) == set(range(v.pairs, v.size))  # every (key, value) pair
    assert set(b.tokens[:, 2].tolist()) == set(range(K))
    first_pair_key = (b.tokens[:, 0] - v.pairs) // N
    asked_first = (b.tokens[:, 2] == first_pair_key).float().mean().item()
    assert 0.4 < asked_first < 0.6  # the query order is random: the first pair is asked first half of the time


def test_same_seed_same_batch_other_seed_other_batch():
    a = mqar_batch(16, 4, n_keys=K, n_values=N, generator=gen(3))
    b = mqar_batch(16, 4, n_keys=K, n_values=N, generator=gen(3))
    c = mqar_batch(16, 4, n_keys=K, n_values=N, generator=gen(4))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.tokens, c.tokens)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_pairs": 7}, ValueError, "n_pairs: expected at most min"),
        ({"n_pairs": 0}, ValueError, "n_pairs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"n_keys": 0}, ValueError, "n_keys"),
        ({"n_values": True}, ValueError, "n_values"),
        ({"generator": 3}, TypeError, "generator"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, match):
    args = {"batch_size": 2, "n_pairs": 2, "n_keys": K, "n_values": N, **kwargs}
    with pytest.raises(error, match=match):
        mqar_batch(args.pop("batch_size"), args.pop("n_pairs"), **args)
