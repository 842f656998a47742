r"""The practice page's pronoun exercise: minimal pairs, and where each head of all-MiniLM-L6-v2 looks from "it".

Sentences: the classic pair ("The animal didn't cross the street because it was too tired / wide"), three of the
hand-written Winograd-style pairs of :data:`attnlab.experiments.transformer.pronoun.sentences.WINOGRAD_PAIRS` and one
generated pair of :mod:`attnlab.data.pronoun` (seed 0). The two sentences of a pair differ in one word, which
decides the referent.

For each word w of a sentence, the weight head (l, h) puts on it from "it" is the sum over the word's pieces of
the row of "it" (all sentences in one forward pass):

.. math::
    a^{(l,h)}_w = \sum_{j \in w} A^{(l,h)}_{\text{it}, j}

For the two candidate nouns these are :func:`attnlab.experiments.transformer.pronoun.pretrained.attention_masses`'
:math:`m_{\text{ref}}` and :math:`m_{\text{other}}`: a head resolves the sentence when
:math:`m_{\text{ref}} > m_{\text{other}}`, the project's criterion. The page generalises it to any word the
learner picks: a head agrees with a word when that word gets more weight than each competing candidate noun.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import torch
from torch import Tensor

MODEL = "all-MiniLM-L6-v2"
DIGITS = 5  # weights in the page, rounded
WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")  # a word ("didn't" is one) or one punctuation mark
CLASSIC_PAIR = ("The animal didn't cross the street because it was too {}.", "animal", "street", ("tired", "wide"))
WINOGRAD_FIRST_NOUNS = ("trophy", "fish", "bird")  # which of the project's hand-written pairs the page uses


class Sentence(NamedTuple):
    """One sentence of the exercise: its words (text and character span), the index of "it", of the two
    candidate nouns and of the referent, its pair and where it comes from."""

    text: str
    words: tuple[tuple[str, tuple[int, int]], ...]
    it: int
    candidates: tuple[int, int]
    referent: int
    pair: int
    source: str


def exercise_sentences() -> list[Sentence]:
    """The exercise: the classic pair, three hand-written pairs and one generated pair, two sentences per pair
    (the first noun the referent, then the second)."""
    from attnlab.experiments.transformer.pronoun.sentences import WINOGRAD_PAIRS, make_items

    pairs = [CLASSIC_PAIR] + [tuple(w) for w in WINOGRAD_PAIRS if w.first in WINOGRAD_FIRST_NOUNS]
    out = []
    for template, first, second, fillers in pairs:
        source = "classic" if template == CLASSIC_PAIR[0] else "winograd"
        for k, filler in enumerate(fillers):
            out.append(_sentence(template.format(filler), (first, second), k, len(out) // 2, source))
    for item in make_items(1, seed=0, winograd=False):
        nouns = (item.sentence[slice(*item.referent)], item.sentence[slice(*item.other)])  # (referent, other)
        in_order = nouns if item.referent < item.other else nouns[::-1]
        out.append(_sentence(item.sentence, in_order, in_order.index(nouns[0]), len(out) // 2, "generated"))
    return out


def _sentence(text: str, nouns: tuple[str, str], referent: int, pair: int, source: str) -> Sentence:
    """``nouns``: the two candidates in the order of the sentence; ``referent``: 0 or 1, which one "it" is."""
    words = tuple((m.group(), m.span()) for m in WORD.finditer(text))
    lower = [w.lower() for w, _ in words]

    def only(word: str) -> int:
        if lower.count(word) != 1:
            raise ValueError(f"sentence: expected {word!r} exactly once in {text!r}, found {lower.count(word)}")
        return lower.index(word)

    candidates = (only(nouns[0]), only(nouns[1]))
    return Sentence(text, words, only("it"), candidates, candidates[referent], pair, source)


@torch.no_grad()
def it_weights(encoder: Any, sentences: list[Sentence]) -> tuple[list[Tensor], list[Tensor]]:
    """One forward pass over all sentences (eval mode). Per sentence: the weight from "it" on each word,
    ``(W, L, nh)`` float64, and on the special tokens ``[CLS]`` and ``[SEP]`` together, ``(L, nh)``."""
    if encoder.tokenizer is None:
        raise ValueError("encoder: expected one with a tokenizer (Encoder.from_pretrained)")
    texts = [s.text for s in sentences]
    ids, mask, tokens = encoder.tokenize(texts)  # (B, T), (B, T)
    device = encoder.word_embeddings.weight.device
    was_training = encoder.training
    encoder.eval()
    try:
        out = encoder(ids.to(device), mask.to(device), output_attentions=True)
    finally:
        encoder.train(was_training)
    att = torch.stack(out.attentions, 1).double().cpu()  # (B, L, nh, T, T)
    T = att.shape[-1]
    on_words, on_special = [], []
    for b, (s, enc) in enumerate(zip(sentences, encoder.tokenizer.encode_batch(texts), strict=True)):
        if list(enc.tokens) != tokens[b]:
            raise RuntimeError(f"tokenizer: offsets computed on other pieces than the model's for {s.text!r}")
        member = torch.zeros(len(s.words), T, dtype=torch.float64)  # (W, T): 1 where piece t is part of word w
        special = torch.zeros(T, dtype=torch.bool)  # (T,): [CLS], [SEP]
        for t, (start, end) in enumerate(enc.offsets):
            if enc.special_tokens_mask[t]:
                special[t] = True
                continue
            w = next((k for k, (_, (a, z)) in enumerate(s.words) if a <= start and end <= z), None)
            if w is None:
                raise RuntimeError(f"tokenizer: piece {enc.tokens[t]!r} of {s.text!r} lies in no word")
            member[w, t] = 1.0
        (it_piece,) = member[s.it].nonzero().flatten().tolist()  # "it" is one word piece
        row = att[b, :, :, it_piece]  # (L, nh, T): the row of "it" in every layer and head
        on_words.append(torch.einsum("wt,lht->wlh", member, row))  # (W, L, nh): a_w = sum_{j in w} A_{it,j}
        on_special.append(row[..., special].sum(-1))  # (L, nh)
    return on_words, on_special


def exercise_data(encoder: Any = None) -> dict[str, Any]:
    """The exercise as JSON for the page: per sentence its words, which are choosable, "it", the candidates, the
    referent, and per word and head (index ``l * nh + h``) the weight from "it"; ``pick``: per head, the
    candidate with more weight (-1 for a tie), from the unrounded weights. ``encoder``: default all-MiniLM-L6-v2."""
    if encoder is None:
        from attnlab.models import Encoder

        encoder = Encoder.from_pretrained()
    sentences = exercise_sentences()
    on_words, on_special = it_weights(encoder, sentences)
    L, nh = on_words[0].shape[1:]
    items = []
    for s, w, sp in zip(sentences, on_words, on_special, strict=True):
        flat = w.reshape(len(s.words), L * nh)  # (W, L*nh)
        first, second = (flat[c].tolist() for c in s.candidates)
        c1, c2 = s.candidates
        items.append(
            {
                "text": s.text,
                "words": [t for t, _ in s.words],
                "choosable": [k != s.it and t[0].isalnum() for k, (t, _) in enumerate(s.words)],
                "space": [k > 0 and s.text[span[0] - 1].isspace() for k, (_, span) in enumerate(s.words)],
                "it": s.it,
                "candidates": list(s.candidates),
                "referent": s.referent,
                "pair": s.pair,
                "source": s.source,
                "weights": flat.round(decimals=DIGITS).tolist(),  # [W][L*nh]
                "special": sp.reshape(L * nh).round(decimals=DIGITS).tolist(),  # [L*nh]
                "pick": [c1 if x > y else c2 if y > x else -1 for x, y in zip(first, second, strict=True)],
            }
        )
    return {"model": MODEL, "layers": L, "heads": nh, "sentences": items}


__all__ = ["CLASSIC_PAIR", "MODEL", "Sentence", "exercise_data", "exercise_sentences", "it_weights"]
