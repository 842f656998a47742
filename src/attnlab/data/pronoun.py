"""Pronoun minimal pairs ("The animal didn't cross the street because it was too tired / too wide"), a word
lexicon, and a word-level tokenizer; everything generated from a seed.

Minimal pairs
-------------
A frame holds an animate noun (dog, horse, child...), an inanimate one (street, river, bridge...) and the
pronoun "it", followed by an adjective that fits only one of them: tired, scared, hungry... only the animate
one; wide, icy, busy... only the inanimate one. The two sentences of a pair differ in the adjective alone, and
"it" refers to the other noun in each::

    the horse didn't cross the river because it was too tired     ->  horse
    the horse didn't cross the river because it was too wide      ->  river

Some frames fix the order of the nouns (the animate one first: "the {A} didn't cross the {I}", or second, in
the passive: "the {I} was not crossed by the {A}"); others take both orders ("the {X} was next to the {Y} and it
was very ..."). In those, nothing but the meaning of the words says which noun "it" is: the frame and the
adjective alone do not decide it.

Held-out words
--------------
Each word list is split into training words and held-out words (:data:`HELD_OUT_NOUNS`,
:data:`HELD_OUT_ADJECTIVES`). Training pairs (``split="train"``) use training words only; held-out pairs
(``split="heldout"``) use held-out words only, both nouns and the adjective. A word that a model has never
seen at all carries a random embedding, and nothing could tell "weary" from "vast"; so every word, held-out
ones included, appears in the *lexicon*: short descriptive sentences with one word masked ("the donkey was
[MASK]", "that [MASK] avenue"), the way a pretrained language model meets words before it meets a task. Held-out
words never occur in a pronoun pair in training: a model that resolves held-out pairs has learned the pattern
(it -> the noun that fits the adjective) and the meaning of words from the lexicon, not the pairs by heart.

Tokens
------
:class:`WordTokenizer`: one id per word of the generated vocabulary (every word of every frame and lexicon
template, all nouns and adjectives, train and held-out), after the special tokens ``[PAD]`` (0) and
``[MASK]`` (1). Sentences are lower case, words separated by single spaces.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from attnlab._checks import check_positive_int

PAD, MASK = "[PAD]", "[MASK]"
SPECIALS = (PAD, MASK)
PRONOUN = "it"

# (training words, held-out words) per list
ANIMATE_NOUNS = (
    (
        "animal", "dog", "cat", "horse", "child", "cow", "goat", "fox",
        "rabbit", "boy", "girl", "man", "woman", "deer", "sheep", "wolf",
    ),
    ("donkey", "puppy", "kitten", "pony"),
)  # fmt: skip
INANIMATE_NOUNS = (
    (
        "street", "road", "river", "bridge", "lake", "canal", "path", "stream",
        "highway", "railway", "ditch", "trail", "creek", "valley", "field", "lane",
    ),
    ("avenue", "motorway", "gorge", "moat"),
)  # fmt: skip
ANIMATE_ADJECTIVES = (  # fit a creature, not a street
    (
        "tired", "scared", "hungry", "sleepy", "weak", "lazy",
        "nervous", "frightened", "exhausted", "sick", "afraid", "timid",
    ),
    ("weary", "drowsy", "fearful", "feeble"),
)  # fmt: skip
INANIMATE_ADJECTIVES = (  # fit a street, not a creature
    (
        "wide", "long", "busy", "icy", "deep", "steep",
        "muddy", "slippery", "crowded", "flooded", "broad", "rocky",
    ),
    ("vast", "congested", "polluted", "bumpy"),
)  # fmt: skip
HELD_OUT_NOUNS = ANIMATE_NOUNS[1] + INANIMATE_NOUNS[1]
HELD_OUT_ADJECTIVES = ANIMATE_ADJECTIVES[1] + INANIMATE_ADJECTIVES[1]

Order = Literal["animate_first", "inanimate_first", "either"]


class Frame(NamedTuple):
    """A sentence with slots ``{first}``, ``{second}`` (the two nouns, in order) and ``{adj}``, and which orders
    of the animate and the inanimate noun it takes."""

    text: str
    order: Order


FRAMES = (
    Frame("the {first} didn't cross the {second} because it was too {adj}", "animate_first"),
    Frame("the {first} couldn't jump over the {second} because it was too {adj}", "animate_first"),
    Frame("the {first} refused to walk along the {second} because it was too {adj}", "animate_first"),
    Frame("the {first} turned back at the {second} because it was too {adj}", "animate_first"),
    Frame("the {first} was not crossed by the {second} because it was too {adj}", "inanimate_first"),
    Frame("the {first} was avoided by the {second} because it was too {adj}", "inanimate_first"),
    Frame("the {first} was next to the {second} and it was very {adj}", "either"),
    Frame("we saw the {first} and the {second} and it was very {adj}", "either"),
    Frame("we noticed the {first} near the {second} and it looked very {adj}", "either"),
)

# descriptive sentences of the lexicon: slots {noun} and {adj}, one of which is masked
LEXICON_TEMPLATES = (
    "the {noun} was {adj}",
    "the {noun} looked very {adj}",
    "that {adj} {noun}",
    "this {noun} is so {adj}",
)


class PronounExample(NamedTuple):
    """One sentence of a minimal pair.

    words: the sentence as words; it_index: the position of "it"; candidates: the positions of the first and
    the second noun; label: 0 when "it" refers to the first noun, 1 to the second; referent / other: the
    referent noun and the other candidate; animate_first: the order of the nouns; adjective, frame: what
    the sentence was made of (``frame`` indexes :data:`FRAMES`).
    """

    words: tuple[str, ...]
    it_index: int
    candidates: tuple[int, int]
    label: int
    referent: str
    other: str
    animate_first: bool
    adjective: str
    frame: int

    @property
    def sentence(self) -> str:
        return " ".join(self.words)


def word_lists(split: str) -> dict[str, tuple[str, ...]]:
    """The nouns and adjectives of a split (``"train"`` or ``"heldout"``), by kind."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split: expected 'train' or 'heldout', got {split!r}")
    i = 0 if split == "train" else 1
    return {
        "animate_nouns": ANIMATE_NOUNS[i],
        "inanimate_nouns": INANIMATE_NOUNS[i],
        "animate_adjectives": ANIMATE_ADJECTIVES[i],
        "inanimate_adjectives": INANIMATE_ADJECTIVES[i],
    }


def make_example(frame: int, animate: str, inanimate: str, adjective: str, animate_first: bool) -> PronounExample:
    """The sentence of ``FRAMES[frame]`` with the two nouns in the given order and the adjective; the referent
    is the noun the adjective fits (an adjective from neither list is an error)."""
    if not 0 <= frame < len(FRAMES):
        raise ValueError(f"frame: expected an index in [0, {len(FRAMES)}), got {frame!r}")
    f = FRAMES[frame]
    if f.order != "either" and animate_first != (f.order == "animate_first"):
        raise ValueError(f"animate_first: frame {frame} takes the order {f.order!r}, got animate_first={animate_first}")
    if adjective in ANIMATE_ADJECTIVES[0] + ANIMATE_ADJECTIVES[1]:
        referent, other = animate, inanimate
    elif adjective in INANIMATE_ADJECTIVES[0] + INANIMATE_ADJECTIVES[1]:
        referent, other = inanimate, animate
    else:
        raise ValueError(f"adjective: expected one of the animate or inanimate adjectives, got {adjective!r}")
    first, second = (animate, inanimate) if animate_first else (inanimate, animate)
    words = tuple(f.text.format(first=first, second=second, adj=adjective).split())
    slots = tuple(f.text.split())
    candidates = (slots.index("{first}"), slots.index("{second}"))
    return PronounExample(
        words=words,
        it_index=slots.index(PRONOUN),
        candidates=candidates,
        label=0 if referent == first else 1,
        referent=referent,
        other=other,
        animate_first=animate_first,
        adjective=adjective,
        frame=frame,
    )


def minimal_pairs(n_pairs: int, split: str = "train", *, seed: int = 0) -> list[PronounExample]:
    """``2 n_pairs`` sentences: for each pair, a frame, an order, an animate and an inanimate noun, then the same
    sentence once with an animate adjective (-> the animate noun) and once with an inanimate one. Consecutive
    sentences (2i, 2i + 1) form a pair; labels are therefore balanced within every pair."""
    check_positive_int("n_pairs", n_pairs)
    words = word_lists(split)
    rng = random.Random(f"pronoun-pairs/{split}/{seed}")
    out = []
    for _ in range(n_pairs):
        frame = rng.randrange(len(FRAMES))
        order = FRAMES[frame].order
        animate_first = rng.random() < 0.5 if order == "either" else order == "animate_first"
        animate, inanimate = rng.choice(words["animate_nouns"]), rng.choice(words["inanimate_nouns"])
        for adjective in (rng.choice(words["animate_adjectives"]), rng.choice(words["inanimate_adjectives"])):
            out.append(make_example(frame, animate, inanimate, adjective, animate_first))
    return out


class LexiconExample(NamedTuple):
    """A descriptive sentence with one word replaced by ``[MASK]``; ``target`` is that word."""

    words: tuple[str, ...]
    masked_index: int
    target: str


def lexicon_sentences(n: int, *, seed: int = 0) -> list[LexiconExample]:
    """``n`` descriptive sentences over every noun and adjective, training and held-out alike, each noun with
    an adjective that fits it; the noun or the adjective (at random) is masked."""
    check_positive_int("n", n)
    rng = random.Random(f"pronoun-lexicon/{seed}")
    kinds = (
        (ANIMATE_NOUNS[0] + ANIMATE_NOUNS[1], ANIMATE_ADJECTIVES[0] + ANIMATE_ADJECTIVES[1]),
        (INANIMATE_NOUNS[0] + INANIMATE_NOUNS[1], INANIMATE_ADJECTIVES[0] + INANIMATE_ADJECTIVES[1]),
    )
    out = []
    for _ in range(n):
        nouns, adjectives = kinds[rng.randrange(2)]
        template = rng.choice(LEXICON_TEMPLATES)
        slot = rng.choice(("{noun}", "{adj}"))
        noun, adjective = rng.choice(nouns), rng.choice(adjectives)
        slots = template.split()
        masked = slots.index(slot)
        words = [noun if s == "{noun}" else adjective if s == "{adj}" else s for s in slots]
        target, words[masked] = words[masked], MASK
        out.append(LexiconExample(tuple(words), masked, target))
    return out


def vocabulary() -> list[str]:
    """Every word the generators can produce, after the special tokens; a fixed order (specials, then sorted)."""
    words = set(ANIMATE_NOUNS[0] + ANIMATE_NOUNS[1] + INANIMATE_NOUNS[0] + INANIMATE_NOUNS[1])
    words |= set(ANIMATE_ADJECTIVES[0] + ANIMATE_ADJECTIVES[1] + INANIMATE_ADJECTIVES[0] + INANIMATE_ADJECTIVES[1])
    for text in [f.text for f in FRAMES] + list(LEXICON_TEMPLATES):
        words |= {w for w in text.split() if not w.startswith("{")}
    return [*SPECIALS, *sorted(words)]


class WordTokenizer:
    """Word-level ids over a fixed vocabulary (default :func:`vocabulary`): ``[PAD]`` is 0, ``[MASK]`` 1."""

    def __init__(self, vocab: Sequence[str] | None = None) -> None:
        self.vocab = list(vocabulary() if vocab is None else vocab)
        if self.vocab[: len(SPECIALS)] != list(SPECIALS) or len(set(self.vocab)) != len(self.vocab):
            raise ValueError(f"vocab: expected distinct words starting with {list(SPECIALS)}, got {self.vocab[:4]}...")
        self.stoi = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.mask_id = self.stoi[PAD], self.stoi[MASK]

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, words: str | Sequence[str]) -> list[int]:
        """Ids of a sentence (a string split on spaces, or a sequence of words); unknown words are an error."""
        words = words.split() if isinstance(words, str) else list(words)
        unknown = sorted({w for w in words if w not in self.stoi})
        if unknown:
            raise ValueError(f"words: not in the vocabulary: {unknown}")
        return [self.stoi[w] for w in words]

    def decode(self, ids: Sequence[int] | Tensor) -> list[str]:
        return [self.vocab[int(i)] for i in ids if int(i) != self.pad_id]


class PronounBatch(NamedTuple):
    """Pronoun examples as tensors. tokens ``(B, T)`` right-padded with ``[PAD]``; targets ``(B, T)``: the id of
    the referent at the position of "it", -1 elsewhere (ignored by the loss); it_index ``(B,)``; candidates
    ``(B, 2)``: the positions of the first and second noun; candidate_ids ``(B, 2)``: their word ids;
    labels ``(B,)``: 0 or 1, which candidate is the referent."""

    tokens: Tensor
    targets: Tensor
    it_index: Tensor
    candidates: Tensor
    candidate_ids: Tensor
    labels: Tensor


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, length: int | None = None) -> Tensor:
    """Right-pad id lists to one length: ``(B, T)`` long."""
    T = max(len(r) for r in rows) if length is None else length
    out = torch.full((len(rows), T), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def encode_pronoun(examples: Sequence[PronounExample], tok: WordTokenizer, length: int | None = None) -> PronounBatch:
    """Pronoun examples -> :class:`PronounBatch` (targets: the referent's id at the position of "it")."""
    tokens = pad_batch([tok.encode(e.words) for e in examples], tok.pad_id, length)  # (B, T)
    targets = torch.full_like(tokens, -1)
    it_index = torch.tensor([e.it_index for e in examples])  # (B,)
    rows = torch.arange(len(examples))
    targets[rows, it_index] = torch.tensor([tok.stoi[e.referent] for e in examples])
    candidates = torch.tensor([e.candidates for e in examples])  # (B, 2)
    candidate_ids = tokens.gather(1, candidates)  # (B, 2)
    labels = torch.tensor([e.label for e in examples])  # (B,)
    return PronounBatch(tokens, targets, it_index, candidates, candidate_ids, labels)


def encode_lexicon(examples: Sequence[LexiconExample], tok: WordTokenizer, length: int | None = None):
    """Lexicon examples -> tokens ``(B, T)`` and targets ``(B, T)`` (the masked word's id at its position, -1
    elsewhere)."""
    tokens = pad_batch([tok.encode(e.words) for e in examples], tok.pad_id, length)  # (B, T)
    targets = torch.full_like(tokens, -1)
    rows = torch.arange(len(examples))
    targets[rows, torch.tensor([e.masked_index for e in examples])] = torch.tensor(
        [tok.stoi[e.target] for e in examples]
    )
    return tokens, targets


def max_length() -> int:
    """The longest sentence any generator makes (in words)."""
    return max(len(t.split()) for t in [f.text for f in FRAMES] + list(LEXICON_TEMPLATES))


__all__ = [
    "ANIMATE_ADJECTIVES",
    "ANIMATE_NOUNS",
    "FRAMES",
    "HELD_OUT_ADJECTIVES",
    "HELD_OUT_NOUNS",
    "INANIMATE_ADJECTIVES",
    "INANIMATE_NOUNS",
    "LEXICON_TEMPLATES",
    "MASK",
    "PAD",
    "Frame",
    "LexiconExample",
    "PronounBatch",
    "PronounExample",
    "WordTokenizer",
    "encode_lexicon",
    "encode_pronoun",
    "lexicon_sentences",
    "make_example",
    "max_length",
    "minimal_pairs",
    "pad_batch",
    "vocabulary",
    "word_lists",
]
