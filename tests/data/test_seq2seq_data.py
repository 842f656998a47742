"""Seq2seq data: the vocabulary, padded batches, the seeded copy/reverse/date generators (with the date task's gold
alignment checked character by character), the tokenizer, the split, the TSV reader and the de-en loader (its
filter on a hand-written dictionary file, and the count and samples of the installed trans-de-en)."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

import pytest
import torch

from attnlab.data import (
    Batch,
    CorpusNotFoundError,
    DatePair,
    Pair,
    Vocab,
    copy_pairs,
    date_pairs,
    detokenize,
    load_de_en,
    load_pairs_tsv,
    make_batch,
    reverse_pairs,
    split_pairs,
    tokenize,
)
from attnlab.data.seq2seq import DATE_FORMATS, DE_EN_PATH, MONTHS, WEEKDAYS, ordinal, symbol

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- vocabulary ------------------------------------------------------------------------------------------------


def test_vocab_specials_and_frequency_order():
    v = Vocab.build([["b", "a", "c"], ["a", "b"], ["a", "d", "<eos>"]])
    assert (Vocab.PAD, Vocab.BOS, Vocab.EOS, Vocab.UNK) == (0, 1, 2, 3)
    assert v.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c", "d"]  # a:3, b:2, then c, d by string
    assert len(v) == 8


def test_vocab_min_freq_and_max_size():
    seqs = [["a"] * 3 + ["b"] * 2 + ["c"]]
    assert Vocab.build(seqs, min_freq=2).itos[4:] == ["a", "b"]
    assert Vocab.build(seqs, max_size=5).itos[4:] == ["a"]
    with pytest.raises(ValueError, match="max_size"):
        Vocab.build(seqs, max_size=3)
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build(seqs, min_freq=0)
    with pytest.raises(TypeError, match="sequences"):
        Vocab.build(["abc"])


def test_vocab_encode_decode_round_trip_and_unknown():
    v = Vocab.build([["the", "cat", "sat"]])
    tokens = ["the", "sat", "cat", "the"]
    assert v.decode(v.encode(tokens)) == tokens
    assert v.encode(["dog", "cat"]) == [Vocab.UNK, v.stoi["cat"]]
    assert v.decode([Vocab.BOS, v.stoi["cat"], Vocab.PAD, Vocab.UNK, Vocab.EOS, v.stoi["the"]]) == ["cat", "<unk>"]
    with pytest.raises(ValueError, match="ids"):
        v.decode([len(v)])


def test_vocab_state_is_json_and_round_trips():
    v = Vocab.build([["x", "y", "y"]])
    w = Vocab.from_state(json.loads(json.dumps(v.state())))
    assert w == v and w.encode(["y", "x", "z"]) == v.encode(["y", "x", "z"])
    with pytest.raises(ValueError, match="state"):
        Vocab.from_state({"stoi": {}})
    with pytest.raises(ValueError, match="itos"):
        Vocab.from_state({"itos": ["a", "b"]})


# --- batches ---------------------------------------------------------------------------------------------------


def test_make_batch_pads_and_shifts():
    v = Vocab.build([["a", "b", "c"]])
    a, b, c = (v.stoi[t] for t in "abc")
    batch = make_batch([Pair(["a", "b", "c"], ["c"]), Pair(["b"], ["a", "b", "zzz"])], v, v)
    assert isinstance(batch, Batch)
    P, B, E, U = Vocab.PAD, Vocab.BOS, Vocab.EOS, Vocab.UNK
    assert batch.src.tolist() == [[a, b, c], [b, P, P]]
    assert batch.src_lengths.tolist() == [3, 1]
    assert batch.tgt_in.tolist() == [[B, c, P, P], [B, a, b, U]]
    assert batch.tgt_out.tolist() == [[c, E, P, P], [a, b, U, E]]
    assert all(t.dtype == torch.long for t in batch)


def test_make_batch_empty_target_and_errors():
    v = Vocab.build([["a"]])
    batch = make_batch([Pair(["a"], [])], v, v)
    assert batch.tgt_in.tolist() == [[Vocab.BOS]] and batch.tgt_out.tolist() == [[Vocab.EOS]]
    with pytest.raises(ValueError, match="non-empty source"):
        make_batch([Pair(["a"], ["a"]), Pair([], ["a"])], v, v)
    with pytest.raises(ValueError, match="pairs"):
        make_batch([], v, v)


# --- copy / reverse --------------------------------------------------------------------------------------------


def test_symbols():
    assert [symbol(i) for i in (0, 25, 26, 40)] == ["a", "z", "s26", "s40"]


@pytest.mark.parametrize("make", [copy_pairs, reverse_pairs])
def test_copy_reverse_lengths_alphabet_and_target(make):
    pairs = make(3000, 2, 6, 30, gen())
    assert {len(p.src) for p in pairs} == {2, 3, 4, 5, 6}
    assert {t for p in pairs for t in p.src} == {symbol(i) for i in range(30)}
    for p in pairs:
        assert p.tgt == (p.src if make is copy_pairs else p.src[::-1])


@pytest.mark.parametrize("make", [copy_pairs, reverse_pairs])
def test_copy_reverse_deterministic(make):
    assert make(50, 1, 8, 10, gen(7)) == make(50, 1, 8, 10, gen(7))
    assert make(50, 1, 8, 10, gen(7)) != make(50, 1, 8, 10, gen(8))


def test_copy_reverse_argument_errors():
    with pytest.raises(ValueError, match="max_len"):
        reverse_pairs(5, 4, 3, 10, gen())
    with pytest.raises(ValueError, match="n_symbols"):
        copy_pairs(5, 1, 3, 0, gen())
    with pytest.raises(ValueError, match="min_len"):
        copy_pairs(5, 0, 3, 4, gen())


# --- dates -----------------------------------------------------------------------------------------------------


def _field_value(chars: str) -> int:
    """The number a source field spells: digits (with an ordinal suffix) or a month name / abbreviation."""
    match = re.fullmatch(r"(\d+)(st|nd|rd|th)?", chars)
    if match:
        if match.group(2):
            assert ordinal(int(match.group(1))) == chars  # the suffix is the right one
        return int(match.group(1))
    names = [m for m in MONTHS if m == chars or m[:3] == chars]
    assert len(names) == 1, chars
    return MONTHS.index(names[0]) + 1


def test_date_alignment_spells_the_target_fields():
    pairs = date_pairs(600, gen())
    assert all(isinstance(p, DatePair) for p in pairs)
    for p in pairs:
        src, tgt = "".join(p.src), "".join(p.tgt)
        date = datetime.date.fromisoformat(tgt)  # a valid ISO date
        assert len(p.tgt) == len(p.align) == 10
        assert p.align[4] == p.align[7] == []  # the two '-'
        spans = {"year": p.align[0], "month": p.align[5], "day": p.align[8]}
        for field, positions in spans.items():
            # every digit of a field points at the same source span, a contiguous run of characters
            group = {"year": range(4), "month": (5, 6), "day": (8, 9)}[field]
            assert all(p.align[t] == positions for t in group)
            assert positions == list(range(positions[0], positions[-1] + 1))
            chars = "".join(p.src[i] for i in positions)
            assert _field_value(chars) == getattr(date, field), (src, field, chars)
        assert "".join(p.src[i] for i in spans["year"]) == tgt[:4]
        if src.split(",")[0] in WEEKDAYS:
            assert src.startswith(WEEKDAYS[date.weekday()])  # the weekday is that of the date


FORMAT_SHAPES = {
    "ordinal_of": r"the \d{1,2}(st|nd|rd|th) of [A-Z][a-z]+ \d{4}",
    "month_day": r"[A-Z][a-z]+ \d{1,2}, \d{4}",
    "month_ordinal": r"[A-Z][a-z]+ \d{1,2}(st|nd|rd|th), \d{4}",
    "day_mon": r"\d{1,2} [A-Z][a-z]{2} \d{4}",
    "dd_mm_yyyy": r"\d\d/\d\d/\d{4}",
    "weekday": r"[A-Z][a-z]+day, \d{1,2} [A-Z][a-z]+ \d{4}",
}


def _shape(src: str) -> str:
    (name,) = [name for name, shape in FORMAT_SHAPES.items() if re.fullmatch(shape, src)]
    return name


def test_date_formats_all_used_and_selectable():
    assert set(FORMAT_SHAPES) == set(DATE_FORMATS)
    assert {_shape("".join(p.src)) for p in date_pairs(300, gen(1))} == set(DATE_FORMATS)
    for name in DATE_FORMATS:
        assert {_shape("".join(p.src)) for p in date_pairs(20, gen(1), formats=[name])} == {name}
    dmy = date_pairs(50, gen(2), formats=["dd_mm_yyyy"])
    for p in dmy:  # day first, then month: 03/04/2021 is the 3rd of April
        src, tgt = "".join(p.src), "".join(p.tgt)
        assert re.fullmatch(r"\d\d/\d\d/\d{4}", src) and src[:2] == tgt[8:] and src[3:5] == tgt[5:7]
    with pytest.raises(ValueError, match="formats"):
        date_pairs(3, gen(), formats=["iso"])
    with pytest.raises(ValueError, match="formats"):
        date_pairs(3, gen(), formats=[])


def test_date_pairs_deterministic_and_batchable():
    assert date_pairs(40, gen(5)) == date_pairs(40, gen(5))
    assert date_pairs(40, gen(5)) != date_pairs(40, gen(6))
    pairs = date_pairs(8, gen())
    v = Vocab.build(p.src + p.tgt for p in pairs)
    batch = make_batch(pairs, v, v)
    assert batch.tgt_out.shape == (8, 11) and (batch.tgt_out[:, 10] == Vocab.EOS).all()


# --- tokenizer -------------------------------------------------------------------------------------------------


def test_tokenize_examples():
    assert tokenize("It’s 3.5 km, isn't it?") == ["it's", "3.5", "km", ",", "isn't", "it", "?"]
    assert tokenize("Das A-Dur-Konzert (Mozart) „gefällt“ mir!") == [
        "das", "a-dur-konzert", "(", "mozart", ")", '"', "gefällt", '"', "mir", "!",
    ]  # fmt: skip
    assert tokenize("  ") == []
    with pytest.raises(TypeError, match="text"):
        tokenize(["a"])


@pytest.mark.parametrize(
    "text",
    ['he said: "it\'s fine" (mostly), and left.', "i owe you 10 euros!", 'she asked "why?" twice.', "a-b; c: 3.5%"],
)
def test_detokenize_inverts_tokenize_on_lowercase_text(text):
    assert detokenize(tokenize(text)) == text


# --- split -----------------------------------------------------------------------------------------------------


def test_split_sizes_disjoint_deterministic():
    pairs = [Pair([str(i)], [str(i)]) for i in range(200)]
    train, valid, test = split_pairs(pairs, valid=0.1, test=0.05, seed=3)
    assert (len(train), len(valid), len(test)) == (170, 20, 10)
    keys = [p.src[0] for part in (train, valid, test) for p in part]
    assert sorted(keys) == sorted(str(i) for i in range(200))  # a partition
    assert split_pairs(pairs, 0.1, 0.05, seed=3) == (train, valid, test)
    assert split_pairs(pairs, 0.1, 0.05, seed=4) != (train, valid, test)


def test_split_errors():
    with pytest.raises(ValueError, match="valid"):
        split_pairs([Pair(["a"], ["a"])] * 10, valid=1.0)
    with pytest.raises(ValueError, match="valid, test"):
        split_pairs([Pair(["a"], ["a"])] * 10, valid=0.5, test=0.5)


# --- TSV -------------------------------------------------------------------------------------------------------


def test_load_pairs_tsv(tmp_path):
    f = tmp_path / "p.tsv"
    f.write_text("Guten Morgen!\tGood morning!\n\nIch bin’s.\tIt's me.\r\n", encoding="utf-8")
    assert load_pairs_tsv(f) == [
        Pair(["guten", "morgen", "!"], ["good", "morning", "!"]),
        Pair(["ich", "bin's", "."], ["it's", "me", "."]),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\tb\nno tab here\n", r"bad\.tsv:2: expected `source<TAB>target` \(exactly one tab\), got 0 tabs"),
        ("a\tb\nc\td\n\ne\tf\tg\n", r"bad\.tsv:4: .*got 2 tabs"),
        ("a\tb\n  \tb\n", r"bad\.tsv:2: expected a non-empty source"),
        ("a\t \n", r"bad\.tsv:1: expected a non-empty target"),
    ],
)
def test_load_pairs_tsv_malformed_line_named(tmp_path, text, message):
    f = tmp_path / "bad.tsv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_pairs_tsv(f)


def test_load_pairs_tsv_missing(tmp_path):
    with pytest.raises(CorpusNotFoundError, match=r"nope\.tsv"):
        load_pairs_tsv(tmp_path / "nope.tsv")


# --- de-en -----------------------------------------------------------------------------------------------------

DING_SAMPLE = """\
# Version :: test
Haus {n} | Häuser {pl} | Das Haus ist groß. :: house | houses | The house is big.
Angst {f} | Sie hat Angst. [ugs.]; Sie fürchtet sich. :: fear | She’s afraid.; She is scared.
Rat {m} | Eile mit Weile. [Sprw.] :: advice | More haste, less speed. [prov.] (Proverb)
Wahl {f} | Das ist zu erfahren / erfragen. :: choice | It can be learnt / asked.
Freund {m} | Er ist mein (fester) Freund. :: friend | He is my (steady) boyfriend.
Ende {n} | Das Ende. | Noch ein Satz. :: end | The end.
klein {adj} | das ist klein. :: small | that is small.
Lang {adj} | Das ist ein sehr langer Satz mit sehr vielen Wörtern darin. :: long | This is a long one.
Doppel {n} | Das Haus ist groß. :: double | The house is big.
"""


def test_de_en_filter_on_a_ding_file(tmp_path):
    f = tmp_path / "de-en"
    f.write_text(DING_SAMPLE, encoding="utf-8")
    pairs = load_de_en(f, max_len=8)
    assert [(detokenize(p.src), detokenize(p.tgt)) for p in pairs] == [
        ("das haus ist groß.", "the house is big."),  # the third field pair; headwords are no sentences
        ("sie hat angst.", "she's afraid."),  # first alternative, [ugs.] dropped, typographic apostrophe
        ("eile mit weile.", "more haste, less speed."),  # [prov.] and the trailing attribution removed
    ]  # "/" alternatives, inner "( )", misaligned fields, lowercase starts, > max_len tokens, duplicates: out
    assert len(load_de_en(f, max_len=12)) == 4  # the long German sentence has 12 tokens


def test_de_en_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(CorpusNotFoundError) as info:
        load_de_en(tmp_path / "de-en")
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert "apt-get install trans-de-en" in message and "--pairs FILE" in message


@pytest.fixture(scope="module")
def de_en() -> list[Pair]:
    if not Path(DE_EN_PATH).is_file():
        pytest.fail(f"{DE_EN_PATH} is missing: the project's set-up installs the Debian package trans-de-en")
    return load_de_en()


def test_de_en_corpus_count_and_samples(de_en):
    # 14,047 with the file of 2023-01-30 (trans-de-en 1.9); DESIGN's "about 13.7k short pairs"
    assert 12_000 <= len(de_en) <= 16_000
    assert all(1 <= len(p.src) <= 12 and 1 <= len(p.tgt) <= 12 for p in de_en)
    assert all(p.src[-1] in ".!?" and p.tgt[-1] in ".!?" for p in de_en)
    assert len({(tuple(p.src), tuple(p.tgt)) for p in de_en}) == len(de_en)  # no duplicates
    text = {(detokenize(p.src), detokenize(p.tgt)) for p in de_en}
    assert ("ich bin an der reihe.", "it is my turn.") in text
    assert ("ist genug wein für alle da?", "is there enough wine to go round?") in text
    tokens = {t for p in de_en for t in p.src + p.tgt}
    assert not tokens & {"’", "{", "}", "[", "]", "/", "…"}  # annotations and typographic marks gone
