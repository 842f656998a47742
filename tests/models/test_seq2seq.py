"""The RNN encoder-decoder: config errors, shapes for every attention and cell, the loss, padding invariance
(batched == one by one), attention weights, the fixed-vector bottleneck of "none", greedy and beam search against
``score()`` and against exhaustive search, and a tiny model that learns to reverse sequences.

Devices: the loss, padding invariance, attention weights and decoding tests run on every device of the ``device``
fixture (the model initialised on the CPU from the seed and moved; sources, lengths and targets drawn on the CPU and
moved, as ``make_batch(..., device=)`` does); config and argument errors and the learning test run on the CPU.

Shapes: B batch, S source length, T target length, H hidden, V target vocabulary.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.data import Vocab, make_batch, reverse_pairs
from attnlab.models import Decoded, EncoderState, Seq2Seq, Seq2SeqConfig, Seq2SeqOutput
from attnlab.models.seq2seq import ATTENTIONS, CELLS

pytestmark = pytest.mark.usefixtures("one_thread")

SV, TV, EMB, HID = 11, 9, 6, 8
PAD, BOS, EOS = Vocab.PAD, Vocab.BOS, Vocab.EOS
KINDS = list(itertools.product(CELLS, ATTENTIONS))


def tiny(attention: str = "bahdanau", cell: str = "gru", seed: int = 0, device="cpu", **kw) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = {"src_vocab": SV, "tgt_vocab": TV, "emb": EMB, "hidden": HID, "cell": cell, "attention": attention, **kw}
    return Seq2Seq(Seq2SeqConfig(**cfg)).to(device).eval()


def sources(lengths: list[int], seed: int = 0, device="cpu") -> tuple[Tensor, Tensor]:
    """Right-padded random sources ``(B, S)`` of the given lengths (ids 3..SV-1, PAD after), and the lengths."""
    g = torch.Generator().manual_seed(seed)
    S = max(lengths)
    src = torch.randint(3, SV, (len(lengths), S), generator=g)
    for b, n in enumerate(lengths):
        src[b, n:] = PAD
    return src.to(device), torch.tensor(lengths).to(device)


def targets(lengths: list[int], seed: int = 1, device="cpu") -> tuple[Tensor, Tensor]:
    """``tgt_in`` = [BOS y..] and ``tgt_out`` = [y.. EOS], PAD-padded, for targets of the given lengths."""
    g = torch.Generator().manual_seed(seed)
    T = max(lengths) + 1
    y = torch.randint(3, TV, (len(lengths), T), generator=g)
    tgt_in = torch.full_like(y, PAD)
    tgt_out = torch.full_like(y, PAD)
    for b, n in enumerate(lengths):
        tgt_in[b, 0], tgt_in[b, 1 : n + 1] = BOS, y[b, :n]
        tgt_out[b, :n], tgt_out[b, n] = y[b, :n], EOS
    return tgt_in.to(device), tgt_out.to(device)


def with_eos(tokens: list[list[int]], max_len: int, device="cpu") -> Tensor:
    """``tgt_out`` for decoded tokens: EOS appended unless the sequence was cut at ``max_len``; PAD-padded."""
    rows = [[*t, EOS] if len(t) < max_len else list(t) for t in tokens]
    out = torch.full((len(rows), max(map(len, rows))), PAD)
    for b, r in enumerate(rows):
        out[b, : len(r)] = torch.tensor(r)
    return out.to(device)


# --- config ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("src_vocab", 3),
        ("tgt_vocab", 2.5),
        ("emb", 0),
        ("hidden", True),
        ("enc_layers", 0),
        ("cell", "rnn"),
        ("attention", "luong"),
        ("dropout", 1.0),
        ("dropout", -0.1),
    ],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}: expected"):
        Seq2SeqConfig(**{"src_vocab": SV, "tgt_vocab": TV, field: value})


def test_config_json_round_trip():
    c = Seq2SeqConfig(src_vocab=SV, tgt_vocab=TV, attention="luong-dot", cell="lstm", dropout=0.1)
    assert Seq2SeqConfig(**c.to_json()) == c
    with pytest.raises(TypeError, match="cfg"):
        Seq2Seq(c.to_json())


# --- shapes, loss, weights, padding ----------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "attention"), KINDS)
def test_shapes_and_loss(cell, attention, device):
    m = tiny(attention, cell, enc_layers=2, device=device)
    src, lens = sources([5, 2, 4], device=device)
    tgt_in, tgt_out = targets([3, 1, 4], device=device)
    enc = m.encode(src, lens)
    assert isinstance(enc, EncoderState) and enc.memory.shape == (3, 5, 2 * HID)
    assert enc.key_mask.tolist() == [[True] * 5, [True] * 2 + [False] * 3, [True] * 4 + [False]]
    init = enc.init if cell == "lstm" else (enc.init,)
    assert len(init) == (2 if cell == "lstm" else 1) and all(s.shape == (3, HID) for s in init)
    out = m(src, lens, tgt_in, tgt_out)
    assert isinstance(out, Seq2SeqOutput) and out.logits.shape == (3, 5, TV)
    assert (out.weights is None) == (attention == "none")
    if out.weights is not None:
        assert out.weights.shape == (3, 5, 5)
    # mean cross-entropy over the 3 + 1 + 4 real targets and their EOS, PAD ignored
    logp = F.log_softmax(out.logits, -1).gather(-1, tgt_out.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    expected = -logp[tgt_out != PAD].sum() / (4 + 2 + 5)
    torch.testing.assert_close(out.loss, expected)
    assert m(src, lens, tgt_in).loss is None


@pytest.mark.parametrize(("cell", "attention"), KINDS)
def test_padding_invariance_batched_equals_one_by_one(cell, attention, device):
    m = tiny(attention, cell, device=device)
    src_lens, tgt_lens = [4, 1, 6, 3], [2, 5, 3, 1]
    src, lens = sources(src_lens, seed=3, device=device)
    tgt_in, _ = targets(tgt_lens, seed=4, device=device)
    batched = m(src, lens, tgt_in)
    for b, (n, t) in enumerate(zip(src_lens, tgt_lens, strict=True)):
        alone = m(src[b : b + 1, :n], lens[b : b + 1], tgt_in[b : b + 1, : t + 1])
        torch.testing.assert_close(batched.logits[b, : t + 1], alone.logits[0])
        if attention != "none":
            torch.testing.assert_close(batched.weights[b, : t + 1, :n], alone.weights[0])
    # and the source padding tokens themselves do not matter
    src2 = src.clone()
    src2[src2 == PAD] = 5
    torch.testing.assert_close(m(src2, lens, tgt_in).logits, batched.logits)


@pytest.mark.parametrize("attention", [a for a in ATTENTIONS if a != "none"])
def test_attention_rows_sum_to_one_and_skip_padding(attention, device):
    m = tiny(attention, device=device)
    src, lens = sources([6, 2, 4], seed=5, device=device)
    tgt_in, _ = targets([4, 4, 2], device=device)
    w = m(src, lens, tgt_in).weights  # (B, T, S)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 5, device=device))
    pad = ~(torch.arange(6, device=device) < lens.unsqueeze(1))  # (B, S) True at padding
    assert torch.all(w.masked_select(pad.unsqueeze(1).expand_as(w)) == 0)
    assert (w >= 0).all()


@pytest.mark.parametrize("cell", CELLS)
def test_none_sees_the_source_only_through_the_fixed_vector(cell):
    """With no attention the decoder reads the memory only at the forward end (last real position) and the
    backward end (position 0): changing everything else changes nothing; changing an end does."""
    m = tiny("none", cell)
    src, lens = sources([5, 3], seed=6)
    tgt_in, _ = targets([4, 2])
    enc = m.encode(src, lens)
    logits, weights = m.decode(enc, tgt_in)
    assert weights is None
    noisy = torch.randn_like(enc.memory)
    keep = torch.zeros_like(enc.memory, dtype=torch.bool)
    keep[0, 4, :HID] = keep[1, 2, :HID] = True  # forward half at the last real position
    keep[:, 0, HID:] = True  # backward half at position 0
    changed = enc._replace(memory=torch.where(keep, enc.memory, noisy))
    torch.testing.assert_close(m.decode(changed, tgt_in)[0], logits)
    end_changed = enc._replace(memory=enc.memory.clone().index_fill_(1, torch.tensor([0]), 0.5))
    assert not torch.allclose(m.decode(end_changed, tgt_in)[0], logits)


@pytest.mark.parametrize(("cell", "attention"), KINDS)
def test_every_parameter_gets_a_gradient(cell, attention):
    m = tiny(attention, cell, enc_layers=2).train()
    src, lens = sources([4, 3])
    tgt_in, tgt_out = targets([3, 2])
    m(src, lens, tgt_in, tgt_out).loss.backward()
    no_grad = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []
    assert m.num_parameters() == sum(p.numel() for p in m.state_dict().values())


def test_input_errors():
    m = tiny()
    src, lens = sources([3, 2])
    tgt_in, _ = targets([2, 2])
    with pytest.raises(TypeError, match=r"src: expected a torch\.long"):
        m(src.float(), lens, tgt_in)
    with pytest.raises(ValueError, match=r"src: expected ids in \[0, 11\)"):
        m(src + SV, lens, tgt_in)
    with pytest.raises(ValueError, match="lengths"):
        m(src, torch.tensor([3, 4]), tgt_in)
    with pytest.raises(ValueError, match="tgt_in: expected shape"):
        m(src, lens, tgt_in[:1])
    with pytest.raises(ValueError, match="tgt_out"):
        m(src, lens, tgt_in, tgt_in[:, :2])
    with pytest.raises(ValueError, match="beam_size"):
        m.beam_search(src, lens, beam_size=0)
    with pytest.raises(ValueError, match="length_penalty"):
        m.beam_search(src, lens, length_penalty=-1.0)
    with pytest.raises(ValueError, match="max_len"):
        m.greedy(src, lens, max_len=0)


# --- decoding --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "attention"), KINDS)
def test_greedy_log_prob_is_score_and_batched_equals_one_by_one(cell, attention, device):
    m = tiny(attention, cell, seed=2, device=device)
    src_lens = [5, 1, 3]
    src, lens = sources(src_lens, seed=7, device=device)
    for max_len in (None, 3):  # default 2 S + 10 (sequences end with EOS) and a cut before EOS
        out = m.greedy(src, lens, max_len=max_len)
        n_max = 2 * 5 + 10 if max_len is None else max_len
        assert isinstance(out, Decoded) and len(out.tokens) == 3
        assert all(len(t) <= n_max and EOS not in t and PAD not in t and BOS not in t for t in out.tokens)
        torch.testing.assert_close(out.log_prob, m.score(src, lens, with_eos(out.tokens, n_max, device)))
        for b, n in enumerate(src_lens):
            alone = m.greedy(src[b : b + 1, :n], lens[b : b + 1], max_len=n_max)
            assert alone.tokens[0] == out.tokens[b]
            torch.testing.assert_close(alone.log_prob[0], out.log_prob[b])
            if attention != "none":
                assert out.weights[b].shape == (len(out.tokens[b]), n)
                torch.testing.assert_close(out.weights[b], alone.weights[0])
        assert (out.weights is None) == (attention == "none")


@pytest.mark.parametrize(("cell", "attention"), KINDS)
def test_beam_one_is_greedy_exactly(cell, attention, device):
    m = tiny(attention, cell, seed=3, device=device)
    src, lens = sources([4, 6, 1, 2], seed=8, device=device)
    for max_len in (None, 4):
        g = m.greedy(src, lens, max_len=max_len)
        b = m.beam_search(src, lens, beam_size=1, max_len=max_len)
        assert b.tokens == g.tokens
        assert torch.equal(b.log_prob, g.log_prob)
        if attention != "none":
            assert all(torch.equal(x, y) for x, y in zip(b.weights, g.weights, strict=True))


def sharpened(attention: str, cell: str, seed: int, device="cpu") -> Seq2Seq:
    """An untrained model with a peakier output distribution: greedy and beam search then disagree more often."""
    m = tiny(attention, cell, seed=seed, device=device)
    with torch.no_grad():
        m.proj.weight.mul_(4)
    return m


@pytest.mark.parametrize(("cell", "attention"), KINDS)
def test_beam_never_below_greedy_and_log_prob_is_score(cell, attention, device):
    wins = 0
    for seed in range(4):
        m = sharpened(attention, cell, seed, device)
        src, lens = sources([5, 3, 1, 4], seed=seed, device=device)
        g = m.greedy(src, lens)
        for k in (2, 4):
            b = m.beam_search(src, lens, beam_size=k)
            assert (b.log_prob >= g.log_prob).all()
            wins += int((b.log_prob > g.log_prob + 1e-4).sum())
            torch.testing.assert_close(b.log_prob, m.score(src, lens, with_eos(b.tokens, 2 * 5 + 10, device)))
            if attention != "none":
                assert [w.shape for w in b.weights] == [
                    (len(t), n) for t, n in zip(b.tokens, [5, 3, 1, 4], strict=True)
                ]
                assert all(torch.allclose(w.sum(-1), torch.ones(len(w), device=w.device)) for w in b.weights)
    assert wins > 0  # the search does find better sequences than greedy: it is not greedy in disguise


def test_plain_beam_search_can_lose_to_greedy_hence_the_safety_net():
    """Why beam_search also considers greedy's hypothesis: the search alone (``_beam``) returns a sequence less
    probable than greedy's on some of these inputs (greedy's prefix dropped out of the beam), the public method
    never does."""
    losses = 0
    for cell, attention in [("gru", "luong-concat"), ("lstm", "luong-dot")]:
        for seed in range(4):
            m = sharpened(attention, cell, seed)
            src, lens = sources([5, 3, 1, 4], seed=seed)
            g = m.greedy(src, lens)
            for k in (2, 4):
                with torch.no_grad():
                    search = m._beam(m.encode(src, lens), k, 2 * 5 + 10, 0.0)
                losses += sum(h.log_prob < float(lp) - 1e-4 for h, lp in zip(search, g.log_prob, strict=True))
                assert (m.beam_search(src, lens, beam_size=k).log_prob >= g.log_prob).all()
    assert losses > 0


@pytest.mark.parametrize("eos_shift", [0.0, 5.0])
@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong-general"])
def test_wide_beam_is_exhaustive_search(attention, eos_shift, device):
    """A beam wider than the number of prefixes prunes nothing: it must return the best of every sequence of at
    most max_len tokens (those ending in EOS scored with it, those cut at max_len without), found by brute force
    with score(). With EOS made unlikely (``eos_shift``) the best is often a sequence cut at max_len, which a
    search that stopped at its first finished hypothesis would miss. Checked for the public beam_search and for
    the search alone (``_beam``, without greedy's hypothesis as a safety net)."""
    V, max_len, words = 6, 4, [3, 4, 5]  # PAD BOS EOS UNK + 2 tokens: every output but EOS is UNK, 4 or 5
    seqs = [[*p, EOS] for n in range(max_len) for p in itertools.product(words, repeat=n)]
    seqs += [list(p) for p in itertools.product(words, repeat=max_len)]
    tgt = torch.full((len(seqs), max_len + 1), PAD)
    for i, s in enumerate(seqs):
        tgt[i, : len(s)] = torch.tensor(s)
    tgt = tgt.to(device)
    for seed in range(2):
        torch.manual_seed(seed)
        m = (
            Seq2Seq(Seq2SeqConfig(src_vocab=SV, tgt_vocab=V, emb=EMB, hidden=HID, attention=attention))
            .to(device)
            .eval()
        )
        with torch.no_grad():
            m.proj.weight.mul_(3)
            m.proj.bias[EOS] -= eos_shift
        src, lens = sources([4, 2, 3], seed=9 + seed, device=device)
        out = m.beam_search(src, lens, beam_size=128, max_len=max_len)  # > 27 live prefixes x 4 extensions
        with torch.no_grad():
            search = m._beam(m.encode(src, lens), 128, max_len, 0.0)
        for b in range(3):
            scores = m.score(src[b : b + 1].expand(len(seqs), -1), lens[b : b + 1].expand(len(seqs)), tgt)
            best = [t for t in seqs[int(scores.argmax())] if t != EOS]
            assert out.tokens[b] == best and search[b].tokens == best
            torch.testing.assert_close(out.log_prob[b], scores.max())


def test_length_penalty_prefers_longer_hypotheses(device):
    """GNMT's lp divides negative log-probs by a factor growing with length: the chosen hypotheses are never
    shorter on average than with length_penalty = 0, and for a large penalty, longer somewhere."""
    longer = 0
    for seed in range(3):
        m = sharpened("bahdanau", "gru", seed, device)
        src, lens = sources([5, 3, 1, 4], seed=seed, device=device)
        plain = m.beam_search(src, lens, beam_size=4)
        long = m.beam_search(src, lens, beam_size=4, length_penalty=2.0)
        n_plain, n_long = sum(map(len, plain.tokens)), sum(map(len, long.tokens))
        assert n_long >= n_plain
        longer += n_long > n_plain
        assert (long.log_prob <= plain.log_prob + 1e-5).all()  # lp = 0 maximises the log-prob itself
    assert longer > 0


# --- learning --------------------------------------------------------------------------------------------------


def test_tiny_model_learns_to_reverse():
    """Luong dot attention, GRU, 200 Adam steps on strings of 3-5 symbols out of 6: held-out exact match >= 90%,
    and the attention of each target step points at the mirrored source position."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    train = reverse_pairs(2000, 3, 5, 6, g)
    vocab = Vocab.build(p.src for p in train)
    m = Seq2Seq(Seq2SeqConfig(len(vocab), len(vocab), emb=16, hidden=32, attention="luong-dot"))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(200):
        idx = torch.randint(len(train), (32,), generator=g).tolist()
        loss = m(*make_batch([train[i] for i in idx], vocab, vocab)).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
    m.eval()
    test = reverse_pairs(200, 3, 5, 6, torch.Generator().manual_seed(1))
    batch = make_batch(test, vocab, vocab)
    out = m.greedy(batch.src, batch.src_lengths)
    accuracy = sum(vocab.decode(t) == p.tgt for t, p in zip(out.tokens, test, strict=True)) / len(test)
    assert accuracy >= 0.9
    mirrored = [
        int(w[t].argmax()) == len(p.src) - 1 - t
        for w, p in zip(out.weights, test, strict=True)
        for t in range(min(len(w), len(p.src)))
    ]
    assert sum(mirrored) / len(mirrored) >= 0.9
