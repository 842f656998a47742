"""The sentences ``pronoun``'s pretrained part reads: generated minimal pairs and hand-written ones in the style of
the Winograd schema challenge (Levesque et al. 2012), "it" in every one, with the character spans of "it", the
referent and the other candidate."""

from __future__ import annotations

import re
from typing import NamedTuple

from attnlab._checks import check_positive_int
from attnlab.data.pronoun import PronounExample, minimal_pairs


class WinogradPair(NamedTuple):
    """A sentence with one ``{}`` slot after "it", two candidate nouns (each once in the sentence, as in the text),
    and the two fillers: ``fillers[0]`` makes "it" refer to ``first``, ``fillers[1]`` to ``second``."""

    text: str
    first: str
    second: str
    fillers: tuple[str, str]


# Hand-written pairs: the sentence with {} for the word after "it", the first and the second candidate, the word
# that makes "it" the first and the word that makes it the second.
_PAIRS = """
The trophy didn't fit into the suitcase because it was too {}. | trophy | suitcase | large | small
The sculpture rolled off the shelf because it wasn't {}. | sculpture | shelf | anchored | level
The fish ate the worm because it was {}. | fish | worm | hungry | tasty
The table would not fit through the doorway because it was too {}. | table | doorway | wide | narrow
The bird could not fly over the wall because it was too {}. | bird | wall | tired | high
The boat could not sail under the bridge because it was too {}. | boat | bridge | tall | low
The cake did not fit in the box because it was too {}. | cake | box | big | small
The medicine did not cure the cough because it was too {}. | medicine | cough | weak | severe
The blanket did not cover the bed because it was too {}. | blanket | bed | small | big
The shelf could not hold the book because it was too {}. | shelf | book | flimsy | heavy
The rope could not hold the piano because it was too {}. | rope | piano | thin | heavy
The hammer could not break the stone because it was too {}. | hammer | stone | light | hard
The paint did not hide the stain because it was too {}. | paint | stain | thin | dark
The computer could not run the game because it was too {}. | computer | game | old | demanding
The plant did not survive the winter because it was too {}. | plant | winter | delicate | harsh
The bridge could not carry the truck because it was too {}. | bridge | truck | weak | heavy
The knife could not cut the bread because it was too {}. | knife | bread | blunt | hard
The umbrella did not keep out the rain because it was too {}. | umbrella | rain | small | heavy
The horse could not pull the cart because it was too {}. | horse | cart | weak | heavy
The phone did not fit in the pocket because it was too {}. | phone | pocket | big | small
The fox could not catch the rabbit because it was too {}. | fox | rabbit | slow | fast
The lamp could not light the hall because it was too {}. | lamp | hall | dim | large
The glass shattered on the floor because it was so {}. | glass | floor | fragile | hard
The snake could not swallow the egg because it was too {}. | snake | egg | small | big
"""
WINOGRAD_PAIRS = tuple(
    WinogradPair(text, first, second, (to_first, to_second))
    for text, first, second, to_first, to_second in (line.split(" | ") for line in _PAIRS.strip().splitlines())
)


class Item(NamedTuple):
    """One sentence: the character spans ``(start, end)`` of "it", the referent and the other candidate, its pair
    and where it came from (``"generated"`` or ``"winograd"``)."""

    sentence: str
    it: tuple[int, int]
    referent: tuple[int, int]
    other: tuple[int, int]
    pair: int
    source: str


def _word_span(sentence: str, word: str) -> tuple[int, int]:
    """The span of the only whole-word occurrence of ``word`` (case-insensitive)."""
    found = [m.span() for m in re.finditer(rf"\b{re.escape(word)}\b", sentence, flags=re.IGNORECASE)]
    if len(found) != 1:
        raise ValueError(f"sentence: expected the word {word!r} exactly once in {sentence!r}, found {len(found)}")
    return found[0]


def _generated_item(e: PronounExample, pair: int) -> Item:
    starts = [0]
    for w in e.words[:-1]:
        starts.append(starts[-1] + len(w) + 1)  # the sentence is the words joined by single spaces
    spans = [(s, s + len(w)) for s, w in zip(starts, e.words, strict=True)]
    first, second = e.candidates
    ref, other = (first, second) if e.label == 0 else (second, first)
    return Item(e.sentence, spans[e.it_index], spans[ref], spans[other], pair, "generated")


def make_items(n_pairs: int, seed: int = 0, winograd: bool = True) -> list[Item]:
    """``n_pairs`` distinct generated minimal pairs (training word lists), then the hand-written ones; two
    consecutive items per pair, pair ids 0, 1, ..."""
    check_positive_int("n_pairs", n_pairs)
    items: list[Item] = []
    seen: set[str] = set()
    examples = minimal_pairs(2 * n_pairs + 50, "train", seed=seed)  # more than enough: duplicates are skipped
    for a, b in zip(examples[0::2], examples[1::2], strict=True):
        if len(items) == 2 * n_pairs:
            break
        if a.sentence in seen or b.sentence in seen:
            continue  # no sentence twice: it could land in both the selection and the report half
        seen |= {a.sentence, b.sentence}
        pair = len(items) // 2
        items += [_generated_item(a, pair), _generated_item(b, pair)]
    if len(items) < 2 * n_pairs:
        raise ValueError(f"n_pairs: the generator gave only {len(items) // 2} distinct pairs, asked for {n_pairs}")
    if winograd:
        for w in WINOGRAD_PAIRS:
            pair = len(items) // 2
            for k, filler in enumerate(w.fillers):
                s = w.text.format(filler)
                ref, other = (w.first, w.second) if k == 0 else (w.second, w.first)
                items.append(Item(s, _word_span(s, "it"), _word_span(s, ref), _word_span(s, other), pair, "winograd"))
    return items


__all__ = ["WINOGRAD_PAIRS", "Item", "WinogradPair", "make_items"]
