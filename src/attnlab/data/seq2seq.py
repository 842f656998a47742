r"""Data for the sequence-to-sequence models: vocabularies, padded batches, synthetic tasks and parallel corpora.

Tokens and ids
--------------
A :class:`Vocab` maps token strings to ids with four reserved ids: ``PAD = 0`` (padding), ``BOS = 1`` (begin of
sequence, the decoder's first input), ``EOS = 2`` (end of sequence, the decoder's last target) and ``UNK = 3``
(a token not in the vocabulary). :func:`make_batch` pads a list of :class:`Pair` into a :class:`Batch`::

    source x_1 .. x_n                ->  src      [x_1 .. x_n PAD ..]    (no BOS/EOS on the source)
    target y_1 .. y_m                ->  tgt_in   [BOS y_1 .. y_m PAD ..]   (the decoder's inputs)
                                         tgt_out  [y_1 .. y_m EOS PAD ..]   (what it must predict)

Synthetic tasks (seeded with a ``torch.Generator``)
----------------------------------------------------
- :func:`copy_pairs` (target = source) and :func:`reverse_pairs` (target = reversed source): random symbol
  strings ``"a".."z", "s26", "s27", ...`` of uniformly drawn lengths.
- :func:`date_pairs`: a date written in one of several formats -> its ISO form ``YYYY-MM-DD``, character by
  character, with the gold alignment of every target character to the source characters it comes from.

Parallel corpora
----------------
- :func:`load_de_en`: German -> English sentence pairs from the example sentences of the Debian dictionary
  ``trans-de-en`` (the "ding" format of dict.tu-chemnitz.de), see the function for the filter.
- :func:`load_pairs_tsv`: any UTF-8 file of ``source<TAB>target`` lines.
Both tokenize with :func:`tokenize` (lowercased words, numbers and punctuation marks as separate tokens);
:func:`detokenize` joins tokens back into text for sacrebleu. :func:`split_pairs` makes a seeded
train/valid/test split.
"""

from __future__ import annotations

import datetime
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor

from attnlab._checks import check_positive_int

DE_EN_PATH = "/usr/share/trans/de-en"
DE_EN_MAX_LEN = 12

# --- vocabulary ------------------------------------------------------------------------------------------------


class Vocab:
    """Token <-> id map with the reserved ids ``PAD = 0``, ``BOS = 1``, ``EOS = 2``, ``UNK = 3``.

    ``itos[i]`` is the token of id ``i``; ids 4.. are the corpus tokens by decreasing frequency (ties in string
    order, so a vocabulary built from the same data is always the same). Build one with :meth:`build`; store it
    in a checkpoint with :meth:`state` and get it back with :meth:`from_state`.
    """

    PAD: ClassVar[int] = 0
    BOS: ClassVar[int] = 1
    EOS: ClassVar[int] = 2
    UNK: ClassVar[int] = 3
    SPECIALS: ClassVar[tuple[str, ...]] = ("<pad>", "<bos>", "<eos>", "<unk>")

    def __init__(self, itos: Sequence[str]) -> None:
        itos = list(itos)
        if tuple(itos[: len(self.SPECIALS)]) != self.SPECIALS:
            raise ValueError(f"itos: expected to start with the special tokens {self.SPECIALS}, got {itos[:4]!r}")
        if not all(isinstance(t, str) for t in itos):
            raise TypeError("itos: expected a list of strings")
        if len(set(itos)) != len(itos):
            dup = sorted(t for t, c in Counter(itos).items() if c > 1)
            raise ValueError(f"itos: expected distinct tokens, got duplicates {dup[:5]!r}")
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(itos)}

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """A vocabulary of the tokens seen at least ``min_freq`` times, the ``max_size`` most frequent at most
        (``max_size`` counts the 4 special tokens too; None: no limit)."""
        check_positive_int("min_freq", min_freq)
        if max_size is not None:
            check_positive_int("max_size", max_size, minimum=len(cls.SPECIALS))
        counts: Counter[str] = Counter()
        for seq in sequences:
            if isinstance(seq, str):
                raise TypeError("sequences: expected sequences of tokens (lists of str), got a str")
            counts.update(seq)
        kept = (t for t, c in counts.items() if c >= min_freq and t not in cls.SPECIALS)
        tokens = sorted(kept, key=lambda t: (-counts[t], t))  # most frequent first, ties in string order
        if max_size is not None:
            tokens = tokens[: max_size - len(cls.SPECIALS)]
        return cls([*cls.SPECIALS, *tokens])

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens`` (``UNK`` for a token not in the vocabulary); no BOS/EOS is added."""
        if isinstance(tokens, str):
            raise TypeError("tokens: expected a sequence of tokens (list of str), got a str")
        return [self.stoi.get(t, self.UNK) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``: stops at the first ``EOS``, skips ``PAD`` and ``BOS``."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.EOS:
                break
            if i in (self.PAD, self.BOS):
                continue
            if not 0 <= i < len(self.itos):
                raise ValueError(f"ids: expected ids in [0, {len(self.itos)}), got {i}")
            out.append(self.itos[i])
        return out

    def state(self) -> dict:
        """A JSON-able description, for checkpoints: ``{"itos": [...]}``."""
        return {"itos": list(self.itos)}

    @classmethod
    def from_state(cls, state: dict) -> Vocab:
        if not isinstance(state, dict) or not isinstance(state.get("itos"), list):
            raise ValueError(f"state: expected a dict with an 'itos' list (from Vocab.state()), got {state!r:.80}")
        return cls(state["itos"])


# --- pairs and batches -----------------------------------------------------------------------------------------


class Pair(NamedTuple):
    """One example: source and target token lists."""

    src: list[str]
    tgt: list[str]


class Batch(NamedTuple):
    """A padded batch (B examples, S = longest source, T = longest target + 1), every tensor long, PAD-padded.

    src ``(B, S)``; src_lengths ``(B,)``; tgt_in ``(B, T)`` = ``[BOS y_1 .. y_m]``; tgt_out ``(B, T)`` =
    ``[y_1 .. y_m EOS]``.
    """

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor


def make_batch(
    pairs: Sequence[Pair], src_vocab: Vocab, tgt_vocab: Vocab, *, device: torch.device | str | None = None
) -> Batch:
    """Encode and pad ``pairs`` (anything with ``.src`` and ``.tgt`` token lists) into a :class:`Batch`.

    Every source needs at least one token (the encoder runs over ``src_lengths >= 1``); a target may be empty
    (the decoder then has to predict EOS at once).
    """
    if len(pairs) == 0:
        raise ValueError("pairs: expected at least one pair, got an empty sequence")
    srcs = [src_vocab.encode(p.src) for p in pairs]
    tgts = [tgt_vocab.encode(p.tgt) for p in pairs]
    empty = [i for i, s in enumerate(srcs) if not s]
    if empty:
        raise ValueError(f"pairs: expected a non-empty source in every pair, got empty sources at {empty[:5]}")
    B, S, T = len(pairs), max(map(len, srcs)), max(map(len, tgts)) + 1
    src = torch.full((B, S), Vocab.PAD, dtype=torch.long)
    tgt_in = torch.full((B, T), Vocab.PAD, dtype=torch.long)
    tgt_out = torch.full((B, T), Vocab.PAD, dtype=torch.long)
    for b, (s, t) in enumerate(zip(srcs, tgts, strict=True)):
        src[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        tgt_in[b, : len(t) + 1] = torch.tensor([Vocab.BOS, *t], dtype=torch.long)
        tgt_out[b, : len(t) + 1] = torch.tensor([*t, Vocab.EOS], dtype=torch.long)
    lengths = torch.tensor([len(s) for s in srcs], dtype=torch.long)
    return Batch(src.to(device), lengths.to(device), tgt_in.to(device), tgt_out.to(device))


# --- synthetic tasks: copy, reverse ----------------------------------------------------------------------------


def symbol(i: int) -> str:
    """The i-th symbol of the synthetic tasks: ``"a".."z"`` for 0..25, then ``"s26", "s27", ...``."""
    return chr(ord("a") + i) if i < 26 else f"s{i}"


def _random_strings(
    n: int, min_len: int, max_len: int, n_symbols: int, generator: torch.Generator | None
) -> list[list[str]]:
    check_positive_int("n", n)
    check_positive_int("min_len", min_len)
    check_positive_int("max_len", max_len)
    check_positive_int("n_symbols", n_symbols)
    if max_len < min_len:
        raise ValueError(f"max_len: expected >= min_len={min_len}, got {max_len}")
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator).tolist()
    ids = torch.randint(n_symbols, (n, max_len), generator=generator).tolist()
    return [[symbol(i) for i in row[:L]] for row, L in zip(ids, lengths, strict=True)]


def copy_pairs(
    n: int, min_len: int, max_len: int, n_symbols: int, generator: torch.Generator | None = None
) -> list[Pair]:
    """``n`` copy examples: a random string of ``n_symbols`` symbols, length uniform in ``[min_len, max_len]``;
    the target is the source."""
    return [Pair(s, list(s)) for s in _random_strings(n, min_len, max_len, n_symbols, generator)]


def reverse_pairs(
    n: int, min_len: int, max_len: int, n_symbols: int, generator: torch.Generator | None = None
) -> list[Pair]:
    """``n`` reversal examples: as :func:`copy_pairs`, the target is the source reversed."""
    return [Pair(s, s[::-1]) for s in _random_strings(n, min_len, max_len, n_symbols, generator)]


# --- synthetic task: dates -------------------------------------------------------------------------------------

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DATE_RANGE = (datetime.date(1950, 1, 1), datetime.date(2049, 12, 31))


def ordinal(day: int) -> str:
    """``1 -> "1st"``, ``2 -> "2nd"``, ``11 -> "11th"``, ``23 -> "23rd"``."""
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# Each format writes a date as segments (text, field), field one of "year", "month", "day" or None (glue).
DATE_FORMATS = {
    # "the 3rd of March 2021"
    "ordinal_of": lambda d: [("the ", None), (ordinal(d.day), "day"), (" of ", None),
                             (MONTHS[d.month - 1], "month"), (" ", None), (f"{d.year}", "year")],
    # "March 3, 2021"
    "month_day": lambda d: [(MONTHS[d.month - 1], "month"), (" ", None), (f"{d.day}", "day"), (", ", None),
                            (f"{d.year}", "year")],
    # "March 3rd, 2021"
    "month_ordinal": lambda d: [(MONTHS[d.month - 1], "month"), (" ", None), (ordinal(d.day), "day"),
                                (", ", None), (f"{d.year}", "year")],
    # "3 Mar 2021"
    "day_mon": lambda d: [(f"{d.day}", "day"), (" ", None), (MONTHS[d.month - 1][:3], "month"), (" ", None),
                          (f"{d.year}", "year")],
    # "03/03/2021": day/month/year (the British order), both zero-padded
    "dd_mm_yyyy": lambda d: [(f"{d.day:02d}", "day"), ("/", None), (f"{d.month:02d}", "month"), ("/", None),
                             (f"{d.year}", "year")],
    # "Wednesday, 3 March 2021": the weekday is the true one of that date and is not aligned to anything
    "weekday": lambda d: [(WEEKDAYS[d.weekday()] + ", ", None), (f"{d.day}", "day"), (" ", None),
                          (MONTHS[d.month - 1], "month"), (" ", None), (f"{d.year}", "year")],
}  # fmt: skip

# Target ``YYYY-MM-DD``: which field each of its 10 characters comes from.
_ISO_FIELDS = ("year",) * 4 + (None,) + ("month",) * 2 + (None,) + ("day",) * 2


class DatePair(NamedTuple):
    """A date in some format -> its ISO form, as characters, with the gold alignment.

    ``src``: the characters of the written date (e.g. ``"the 3rd of March 2021"``); ``tgt``: the 10 characters
    of ``YYYY-MM-DD``; ``align[t]``: the source character positions of the field that target character ``t``
    comes from (all 4 year digits for each year digit; the whole month word or number for each month digit; the
    day's digits and ordinal suffix for each day digit; ``[]`` for the two ``-``). Usable where a :class:`Pair`
    is expected.
    """

    src: list[str]
    tgt: list[str]
    align: list[list[int]]


def date_pairs(
    n: int, generator: torch.Generator | None = None, formats: Sequence[str] | None = None
) -> list[DatePair]:
    """``n`` dates drawn uniformly from 1950-01-01..2049-12-31, each written in a format drawn uniformly from
    ``formats`` (names of :data:`DATE_FORMATS`; None: all of them)."""
    check_positive_int("n", n)
    names = list(DATE_FORMATS) if formats is None else list(formats)
    unknown = [f for f in names if f not in DATE_FORMATS]
    if not names or unknown or isinstance(formats, str):
        raise ValueError(f"formats: expected a non-empty list of names from {list(DATE_FORMATS)}, got {formats!r}")
    lo, hi = (d.toordinal() for d in DATE_RANGE)
    days = torch.randint(lo, hi + 1, (n,), generator=generator).tolist()
    which = torch.randint(len(names), (n,), generator=generator).tolist()
    out = []
    for day, f in zip(days, which, strict=True):
        date = datetime.date.fromordinal(day)
        src: list[str] = []
        spans: dict[str, list[int]] = {}
        for text, field in DATE_FORMATS[names[f]](date):
            if field is not None:
                spans[field] = list(range(len(src), len(src) + len(text)))
            src.extend(text)
        tgt = list(date.isoformat())  # YYYY-MM-DD
        align = [list(spans[field]) if field else [] for field in _ISO_FIELDS]
        out.append(DatePair(src, tgt, align))
    return out


# --- tokenizer -------------------------------------------------------------------------------------------------

# numbers with inner separators (3.5, 1,000, 10:30), words with inner hyphens/apostrophes (it's, A-Dur), else any
# single non-space character (punctuation).
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)+|\w+(?:[-']\w+)*|[^\w\s]")
_TYPOGRAPHIC = str.maketrans(
    {"’": "'", "‘": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "–": "-", "—": "-"}
)
_NO_SPACE_BEFORE = set(".,!?;:%)]}")
_NO_SPACE_AFTER = set("([{")


def tokenize(text: str) -> list[str]:
    """Lowercased tokens of ``text``: words (inner ``-`` and ``'`` kept: "it's", "a-dur"), numbers (inner ``.``,
    ``,``, ``:`` kept: "3.5") and each punctuation mark on its own. Typographic quotes and dashes become ASCII."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    return _TOKEN.findall(text.translate(_TYPOGRAPHIC).lower())


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens joined back into text (no space before ``. , ! ? ; : % )``, none after ``(``; double quotes
    alternate between opening and closing), e.g. for sacrebleu, which tokenizes the text again itself."""
    out: list[str] = []
    open_quote = False
    glue_next = False
    for tok in tokens:
        if tok == '"':
            open_quote = not open_quote
            glue = glue_next or not open_quote  # a closing quote sticks to the word before it
            glue_next = open_quote  # an opening quote sticks to the word after it
        else:
            glue = glue_next or tok in _NO_SPACE_BEFORE
            glue_next = tok in _NO_SPACE_AFTER
        if out and not glue:
            out.append(" ")
        out.append(tok)
    return "".join(out)


# --- corpora ---------------------------------------------------------------------------------------------------


class CorpusNotFoundError(FileNotFoundError):
    """A corpus file is missing; the message says how to get it or what to give instead."""


_SENTENCE = re.compile(r"^[A-ZÄÖÜ].*[.!?]$")
_ANNOTATION = re.compile(r"\s*(?:\{[^{}]*\}|\[[^\[\]]*\]|<[^<>]*>)")  # {f}, [ugs.], <spelling variant>
_TRAILING_PAREN = re.compile(r"([.!?])\s*\([^()]*\)$")  # "... tread. (Alexander Pope)": an attribution
_UNSURE = ("/", "(", ")", "…", "...")  # alternatives "a / b", optional words "(fester)", elided text


def _clean_field(field: str) -> str:
    """First ``;`` alternative, typographic quotes normalised, editorial annotations removed."""
    text = _ANNOTATION.sub("", field.translate(_TYPOGRAPHIC))
    text = text.split("; ")[0].strip()
    text = _TRAILING_PAREN.sub(r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def _may_end_sentence(field: str) -> bool:
    return "." in field or "!" in field or "?" in field


def load_de_en(path: str | os.PathLike[str] = DE_EN_PATH, max_len: int = DE_EN_MAX_LEN) -> list[Pair]:
    """German -> English sentence pairs from the ding-format dictionary of the Debian package ``trans-de-en``.

    Each entry line is ``German side :: English side``; each side is split into fields by `` | ``, and the
    fields correspond by position (headword, plural, ..., example sentences). A field pair is kept when:

    1. both sides have the same number of fields (else the line is skipped);
    2. after taking the first of its ``;``-separated alternatives, normalising typographic quotes, removing the
       editorial annotations ``{f}``, ``[ugs.]``, ``<variant>`` and a parenthesised attribution after the final
       punctuation (``"... tread. (Alexander Pope)"``), each side is a full sentence: it starts with an uppercase
       letter and ends with ``.``, ``!`` or ``?``;
    3. neither side has ``/`` (inline alternatives "zu erfahren / erfragen"), parentheses left inside the sentence
       (optional words "mein (fester) Freund", which the other side may not mirror) or an ellipsis;
    4. both sides have at most ``max_len`` tokens (:func:`tokenize`).

    Duplicates are dropped (first occurrence kept), in file order. With the defaults and the file of
    2023-01-30 (Debian's trans-de-en 1.9-*), 14,047 pairs.
    """
    check_positive_int("max_len", max_len)
    path = Path(path)
    if not path.is_file():
        raise CorpusNotFoundError(
            f"path: the German-English dictionary {path} does not exist; install it with "
            "`sudo apt-get install trans-de-en` (Debian/Ubuntu) or give your own sentence pairs with --pairs FILE "
            "(one `source<TAB>target` line per pair)"
        )
    seen: dict[tuple[str, str], None] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            sides = line.split(" :: ")
            if len(sides) != 2:
                continue
            de_fields, en_fields = (side.split(" | ") for side in sides)
            if len(de_fields) != len(en_fields):
                continue
            for de, en in zip(de_fields, en_fields, strict=True):
                if not (_may_end_sentence(de) and _may_end_sentence(en)):
                    continue  # a quick test first: most fields are headwords without any . ! ?
                de, en = _clean_field(de), _clean_field(en)
                if not (_SENTENCE.match(de) and _SENTENCE.match(en)):
                    continue
                if any(mark in de or mark in en for mark in _UNSURE):
                    continue
                seen.setdefault((de, en), None)
    pairs = []
    for de, en in seen:
        src, tgt = tokenize(de), tokenize(en)
        if len(src) <= max_len and len(tgt) <= max_len:
            pairs.append(Pair(src, tgt))
    return pairs


def load_pairs_tsv(path: str | os.PathLike[str]) -> list[Pair]:
    """Sentence pairs from a UTF-8 file of ``source<TAB>target`` lines, tokenized with :func:`tokenize`.

    Empty lines are skipped; a line without exactly one tab, or with a side that has no token, raises
    ``ValueError`` naming the file and the line number.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusNotFoundError(f"pairs: the file {path} does not exist (expected `source<TAB>target` lines)")
    pairs = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise ValueError(
                    f"{path}:{lineno}: expected `source<TAB>target` (exactly one tab), got {len(fields) - 1} tabs"
                )
            src, tgt = tokenize(fields[0]), tokenize(fields[1])
            if not src or not tgt:
                side = "source" if not src else "target"
                raise ValueError(f"{path}:{lineno}: expected a non-empty {side}, got {fields[0 if not src else 1]!r}")
            pairs.append(Pair(src, tgt))
    if not pairs:
        raise ValueError(f"{path}: expected at least one `source<TAB>target` line, got none")
    return pairs


def split_pairs(pairs: Sequence, valid: float = 0.05, test: float = 0.05, seed: int = 0) -> tuple[list, list, list]:
    """A seeded random split into (train, valid, test): ``round(n * test)`` pairs for test, ``round(n * valid)``
    for valid, the rest for train. The same pairs and seed always give the same split."""
    for name, frac in (("valid", valid), ("test", test)):
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
            raise ValueError(f"{name}: expected a fraction in [0, 1), got {frac!r}")
    if valid + test >= 1:
        raise ValueError(f"valid, test: expected valid + test < 1 (something left to train on), got {valid + test}")
    n = len(pairs)
    n_test, n_valid = round(n * test), round(n * valid)
    if n - n_test - n_valid < 1:
        raise ValueError(f"pairs: expected enough pairs to leave one for training, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    test_part = [pairs[i] for i in order[:n_test]]
    valid_part = [pairs[i] for i in order[n_test : n_test + n_valid]]
    train_part = [pairs[i] for i in order[n_test + n_valid :]]
    return train_part, valid_part, test_part
