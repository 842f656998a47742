"""Pronoun minimal pairs: hand-checked sentences and labels, held-out words kept out of training pairs, the
lexicon, the tokenizer and the tensors, determinism and argument errors."""

import pytest
import torch

from attnlab.data.pronoun import (
    ANIMATE_ADJECTIVES,
    ANIMATE_NOUNS,
    FRAMES,
    HELD_OUT_ADJECTIVES,
    HELD_OUT_NOUNS,
    INANIMATE_ADJECTIVES,
    INANIMATE_NOUNS,
    MASK,
    WordTokenizer,
    encode_lexicon,
    encode_pronoun,
    lexicon_sentences,
    make_example,
    max_length,
    minimal_pairs,
    word_lists,
)

ANIMATE = set(ANIMATE_NOUNS[0] + ANIMATE_NOUNS[1])
INANIMATE = set(INANIMATE_NOUNS[0] + INANIMATE_NOUNS[1])
ANIMATE_ADJ = set(ANIMATE_ADJECTIVES[0] + ANIMATE_ADJECTIVES[1])
INANIMATE_ADJ = set(INANIMATE_ADJECTIVES[0] + INANIMATE_ADJECTIVES[1])
HELD_OUT = set(HELD_OUT_NOUNS + HELD_OUT_ADJECTIVES)


@pytest.mark.parametrize(
    ("frame", "animate", "inanimate", "adjective", "animate_first", "sentence", "referent", "label"),
    [
        (0, "animal", "street", "tired", True,
         "the animal didn't cross the street because it was too tired", "animal", 0),
        (0, "animal", "street", "wide", True,
         "the animal didn't cross the street because it was too wide", "street", 1),
        (4, "dog", "river", "scared", False,
         "the river was not crossed by the dog because it was too scared", "dog", 1),
        (4, "dog", "river", "icy", False,
         "the river was not crossed by the dog because it was too icy", "river", 0),
        (6, "horse", "bridge", "hungry", False,
         "the bridge was next to the horse and it was very hungry", "horse", 1),
        (6, "horse", "bridge", "long", True,
         "the horse was next to the bridge and it was very long", "bridge", 1),
        (6, "donkey", "moat", "weary", True,
         "the donkey was next to the moat and it was very weary", "donkey", 0),
    ],
)  # fmt: skip
def test_hand_checked_sentences_and_labels(
    frame, animate, inanimate, adjective, animate_first, sentence, referent, label
):
    e = make_example(frame, animate, inanimate, adjective, animate_first)
    assert e.sentence == sentence
    assert e.referent == referent and e.label == label
    assert e.words[e.it_index] == "it"
    assert e.words[e.candidates[label]] == referent
    assert e.words[e.candidates[1 - label]] == e.other != referent
    assert e.words[-1] == adjective


def test_the_canonical_pair_positions():
    e = make_example(0, "animal", "street", "tired", True)
    assert e.candidates == (1, 5) and e.it_index == 7


def test_pairs_are_minimal_and_balanced():
    examples = minimal_pairs(300, seed=1)
    assert len(examples) == 600
    for a, b in zip(examples[0::2], examples[1::2], strict=True):
        diff = [i for i, (x, y) in enumerate(zip(a.words, b.words, strict=True)) if x != y]
        assert diff == [len(a.words) - 1]  # the adjective, and nothing else
        assert a.adjective in ANIMATE_ADJ and b.adjective in INANIMATE_ADJ
        assert a.referent in ANIMATE and b.referent in INANIMATE
        assert a.label != b.label and a.candidates == b.candidates
    frames = {e.frame for e in examples}
    assert frames == set(range(len(FRAMES)))
    either = [e for e in examples if FRAMES[e.frame].order == "either"]
    assert {e.animate_first for e in either} == {True, False}  # both orders occur where the frame takes both
    for e in examples:
        if FRAMES[e.frame].order != "either":
            assert e.animate_first == (FRAMES[e.frame].order == "animate_first")


def test_held_out_words_never_appear_in_training_pairs():
    train_words = {w for e in minimal_pairs(5000, "train", seed=0) for w in e.words}
    assert not train_words & HELD_OUT
    # every training noun and adjective does appear
    lists = word_lists("train")
    assert set().union(*map(set, lists.values())) <= train_words
    held = minimal_pairs(2000, "heldout", seed=0)
    content = {w for e in held for w in (e.referent, e.other, e.adjective)}
    assert content == HELD_OUT  # held-out pairs are made of held-out nouns and adjectives only
    frame_words = {w for f in FRAMES for w in f.text.split() if not w.startswith("{")}
    assert {w for e in held for w in e.words} <= HELD_OUT | frame_words


def test_lexicon_covers_every_word_and_pairs_fitting_words():
    examples = lexicon_sentences(4000, seed=0)
    seen = set()
    for e in examples:
        assert e.words[e.masked_index] == MASK and e.words.count(MASK) == 1
        full = list(e.words)
        full[e.masked_index] = e.target
        nouns = [w for w in full if w in ANIMATE | INANIMATE]
        adjectives = [w for w in full if w in ANIMATE_ADJ | INANIMATE_ADJ]
        assert len(nouns) == len(adjectives) == 1
        assert (nouns[0] in ANIMATE) == (adjectives[0] in ANIMATE_ADJ)  # a word only with one that fits it
        seen |= set(full)
    assert seen >= ANIMATE | INANIMATE | ANIMATE_ADJ | INANIMATE_ADJ  # held-out words included


def test_same_seed_same_data_other_seed_other_data():
    assert minimal_pairs(50, seed=3) == minimal_pairs(50, seed=3)
    assert minimal_pairs(50, seed=3) != minimal_pairs(50, seed=4)
    assert minimal_pairs(50, "train", seed=3) != minimal_pairs(50, "heldout", seed=3)
    assert lexicon_sentences(50, seed=3) == lexicon_sentences(50, seed=3)
    assert lexicon_sentences(50, seed=3) != lexicon_sentences(50, seed=4)


def test_tokenizer_round_trip_and_specials():
    tok = WordTokenizer()
    assert tok.vocab[:2] == ["[PAD]", "[MASK]"] and tok.pad_id == 0 and tok.mask_id == 1
    assert len(set(tok.vocab)) == len(tok)
    s = "the animal didn't cross the street because it was too tired"
    assert " ".join(tok.decode(tok.encode(s))) == s
    assert tok.encode(s) == tok.encode(s.split())
    for e in minimal_pairs(200, "heldout") + minimal_pairs(200, "train"):
        tok.encode(e.words)  # every generated word is in the vocabulary
    with pytest.raises(ValueError, match="words"):
        tok.encode("the unicorn was tired")
    with pytest.raises(ValueError, match="vocab"):
        WordTokenizer(["a", "b"])


def test_encoded_batches():
    tok = WordTokenizer()
    examples = minimal_pairs(20, seed=2)
    b = encode_pronoun(examples, tok, max_length())
    B, T = b.tokens.shape
    assert (B, T) == (40, max_length()) == (40, 13)
    rows = torch.arange(B)
    assert torch.equal(b.targets[rows, b.it_index], b.candidate_ids[rows, b.labels])  # the referent's id at "it"
    assert ((b.targets != -1).sum(1) == 1).all()
    assert torch.equal(b.candidate_ids, b.tokens.gather(1, b.candidates))
    for e, row in zip(examples, b.tokens, strict=True):
        assert tok.decode(row) == list(e.words)
        assert row[len(e.words) :].eq(tok.pad_id).all()
    lex = lexicon_sentences(10, seed=0)
    tokens, targets = encode_lexicon(lex, tok)
    for e, tr, tg in zip(lex, tokens, targets, strict=True):
        assert tr[e.masked_index] == tok.mask_id and tg[e.masked_index] == tok.stoi[e.target]
        assert (tg != -1).sum() == 1


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="animate_first"):
        make_example(0, "dog", "road", "tired", False)  # frame 0 puts the animate noun first
    with pytest.raises(ValueError, match="adjective"):
        make_example(0, "dog", "road", "green", True)
    with pytest.raises(ValueError, match="frame"):
        make_example(len(FRAMES), "dog", "road", "tired", True)
    with pytest.raises(ValueError, match="n_pairs"):
        minimal_pairs(0)
    with pytest.raises(ValueError, match="split"):
        minimal_pairs(5, "test")
    with pytest.raises(ValueError, match="n"):
        lexicon_sentences(0)
