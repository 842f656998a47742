"""The recall-at-distance generator: layout, per-example distances, determinism and argument errors."""

import pytest
import torch

from attnlab.data import RecallBatch, recall_batch, recall_vocab

K, M = 8, 16


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_vocab_layout():
    v = recall_vocab(K, M)
    assert (v.n_symbols, v.n_distractors, v.query, v.pad, v.size) == (K, M, K + M, K + M + 1, K + M + 2)


def test_fixed_distance_layout():
    d, B = 5, 32
    b = recall_batch(B, d, n_symbols=K, n_distractors=M, generator=gen())
    assert isinstance(b, RecallBatch)
    assert b.tokens.shape == (B, d + 2) and b.lengths.shape == (B,) and b.targets.shape == (B,)
    assert b.tokens.dtype == b.lengths.dtype == b.targets.dtype == torch.long
    assert torch.equal(b.tokens[:, 0], b.targets)  # the target is the first token
    assert ((b.targets >= 0) & (b.targets < K)).all()
    middle = b.tokens[:, 1 : d + 1]
    assert ((middle >= K) & (middle < K + M)).all()  # distractors only, never a symbol
    assert (b.tokens[:, d + 1] == K + M).all()  # then the query
    assert (b.lengths == d + 2).all()


def test_distance_zero_is_symbol_then_query():
    b = recall_batch(4, 0, n_symbols=K, n_distractors=M, generator=gen())
    assert b.tokens.shape == (4, 2)
    assert torch.equal(b.tokens[:, 0], b.targets) and (b.tokens[:, 1] == K + M).all()


def test_per_example_distances_are_right_padded():
    dist = torch.tensor([0, 3, 7, 2])
    b = recall_batch(4, dist, n_symbols=K, n_distractors=M, generator=gen())
    assert b.tokens.shape == (4, 9)
    assert b.lengths.tolist() == [2, 5, 9, 4]
    v = recall_vocab(K, M)
    for row, n, target in zip(b.tokens, b.lengths.tolist(), b.targets, strict=True):
        assert row[0] == target
        assert ((row[1 : n - 1] >= K) & (row[1 : n - 1] < K + M)).all()
        assert row[n - 1] == v.query
        assert (row[n:] == v.pad).all()


def test_draws_cover_every_symbol_and_distractor():
    b = recall_batch(2000, 3, n_symbols=K, n_distractors=M, generator=gen())
    assert set(b.targets.tolist()) == set(range(K))
    assert set(b.tokens[:, 1:4].flatten().tolist()) == set(range(K, K + M))


def test_same_seed_same_batch_other_seed_other_batch():
    a = recall_batch(16, torch.arange(16), n_symbols=K, n_distractors=M, generator=gen(3))
    b = recall_batch(16, torch.arange(16), n_symbols=K, n_distractors=M, generator=gen(3))
    c = recall_batch(16, torch.arange(16), n_symbols=K, n_distractors=M, generator=gen(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a.tokens, c.tokens)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"distance": -1}, ValueError, "distance"),
        ({"distance": 2.0}, TypeError, "distance"),
        ({"distance": True}, TypeError, "distance"),
        ({"distance": torch.tensor([1.0, 2.0])}, TypeError, "distance"),
        ({"distance": torch.tensor([1, 2, 3])}, ValueError, "distance"),
        ({"distance": torch.tensor([[1, 2]])}, ValueError, "distance"),
        ({"distance": torch.tensor([1, -2])}, ValueError, "distance"),
        ({"n_symbols": 1}, ValueError, "n_symbols"),
        ({"n_distractors": 0}, ValueError, "n_distractors"),
        ({"generator": 0}, TypeError, "generator"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    args = {"batch_size": 2, "distance": 3, "n_symbols": K, "n_distractors": M, "generator": None, **kwargs}
    batch_size, distance = args.pop("batch_size"), args.pop("distance")
    with pytest.raises(error, match=match):
        recall_batch(batch_size, distance, **args)
