"""How ``pronoun`` reads attention: the row of "it" (or of the adjective) in every layer and head, its weight on
the referent and on the other noun, the share of sentences in which a row points to the referent, the strongest
link, and the head or layer chosen on validation sentences."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from attnlab.data.pronoun import WordTokenizer, encode_pronoun, max_length
from attnlab.models.pronoun import PronounModel


def _rows_and_mass(weights: list[Tensor], query: Tensor, candidates: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """One query position per sentence: its rows ``(N, L, nh, S)`` in every layer's weights ``(N, nh, T, S)``, and
    their weight on the referent and on the other candidate ``(N, L, nh, 2)``."""
    rows = torch.arange(len(query), device=weights[0].device)
    q = query.to(weights[0].device)
    it_rows = torch.stack([w[rows, :, q].cpu() for w in weights], 1)  # (N, L, nh, S)
    on_cands = it_rows.gather(3, candidates[:, None, None, :].expand(-1, *it_rows.shape[1:3], 2))  # (N, L, nh, 2)
    referent_first = (labels == 0)[:, None, None]  # (N, 1, 1)
    mass = torch.stack(
        [
            torch.where(referent_first, on_cands[..., 0], on_cands[..., 1]),  # on the referent
            torch.where(referent_first, on_cands[..., 1], on_cands[..., 0]),  # on the other candidate
        ],
        -1,
    )  # (N, L, nh, 2)
    return it_rows, mass


@torch.no_grad()
def evaluate(model: PronounModel, tok: WordTokenizer, examples, device: str) -> dict[str, Any]:
    """Resolution by the logits at "it" and by every head's weights from "it", on ``examples``.

    Returns ``correct`` ``(N,)`` bool (the referent's logit beats the other candidate's), ``mass`` ``(N, L, nh, 2)``
    (weight from "it" on the referent and on the other candidate), ``rows`` ``(N, L, nh, T)`` (the whole row of
    "it"), ``adjective_mass`` ``(N, L, nh, 2)`` (the same from the adjective, the other route a link can take),
    ``it_on_adjective`` ``(N, L, nh)`` (the weight from "it" on the adjective) and
    ``animate`` ``(N,)`` bool (the referent is the animate noun).
    """
    model.eval()
    b = encode_pronoun(examples, tok, max_length())
    out = model(b.tokens.to(device), need_weights=True)
    it_logits = out.logits[torch.arange(len(examples), device=device), b.it_index.to(device)].cpu()  # (N, V)
    cand = it_logits.gather(1, b.candidate_ids)  # (N, 2): logits of the first and second noun
    correct = cand.argmax(1) == b.labels  # (N,)
    rows, mass = _rows_and_mass(out.weights, b.it_index, b.candidates, b.labels)
    adjective = torch.tensor([e.words.index(e.adjective) for e in examples])  # (N,)
    _, adjective_mass = _rows_and_mass(out.weights, adjective, b.candidates, b.labels)
    on_adjective = rows[torch.arange(len(examples)), :, :, adjective]  # (N, L, nh): weight from "it" on the adjective
    animate = torch.tensor([(e.label == 0) == e.animate_first for e in examples])  # (N,): the referent is animate
    return {
        "correct": correct,
        "mass": mass,
        "rows": rows,
        "adjective_mass": adjective_mass,
        "it_on_adjective": on_adjective,
        "animate": animate,
    }


def points_to_referent(mass: Tensor, min_weight: float) -> Tensor:
    """``(..., 2)`` weights (referent, other candidate) -> ``(...)`` bool: the referent gets more weight than the
    other candidate, and at least ``min_weight`` (a row that hardly looks at either noun points at neither)."""
    ref, other = mass[..., 0], mass[..., 1]
    return (ref > other) & (ref >= min_weight)


def attention_table(mass: Tensor, animate: Tensor, min_weight: float) -> dict[str, dict[str, list]]:
    """From ``mass`` ``(N, L, nh, 2)``: per head ``(L, nh)`` and per layer with its heads averaged ``(L,)``, the mean
    weight from "it" on the referent and on the other candidate, and the share of sentences in which the row
    points to the referent (:func:`points_to_referent`: the attention-based resolution accuracy), over all
    sentences and over those whose referent is the animate noun (``animate`` ``(N,)`` True) or the inanimate one.

    Chance: a head that always looks at the first noun (or at either, at random) points to the referent in half
    of the sentences; one that looks at neither noun, in none.
    """
    out = {}
    for name, m in (("head", mass), ("layer", mass.mean(2))):  # (N, L, nh, 2) and (N, L, 2)
        prefers = points_to_referent(m, min_weight).double()  # (N, L, nh) or (N, L)
        out[name] = {
            "referent": m[..., 0].mean(0).tolist(),
            "other": m[..., 1].mean(0).tolist(),
            "resolution": prefers.mean(0).tolist(),
            "resolution_animate": prefers[animate].mean(0).tolist(),
            "resolution_inanimate": prefers[~animate].mean(0).tolist(),
        }
    return out


def strongest_link(mass: Tensor, min_weight: float) -> Tensor:
    """``(N,)`` bool: the head with the most weight from "it" on either candidate, over every layer and head,
    puts it on the referent (and at least ``min_weight`` of it): "it" resolved by where it attends most."""
    flat = mass.flatten(1)  # (N, L * nh * 2): weight on the referent at even indices, on the other at odd ones
    top, where = flat.max(1)  # (N,), (N,)
    return (where % 2 == 0) & (top >= min_weight)


def choose(table: dict[str, dict[str, list]], key: str = "resolution") -> tuple[tuple[int, int], int]:
    """The head ``(layer, head)`` and the layer (heads averaged) with the largest ``table[...][key]`` (the share of
    sentences in which the row points to the referent; ties: the larger mean weight on the referent minus the
    other candidate).

    Chosen by the share, not by the mean weight: in a head of the first layer the query of "it" and the keys of
    the nouns are the same in both sentences of a minimal pair (the adjective comes later), so the head ranks
    the two nouns alike in both and points to the referent in at most half of them; yet its mean weight on the
    referent can be far above that on the other noun when, in the other half, the adjective draws its weight
    away from both nouns.
    """
    h, lay = table["head"], table["layer"]
    L, nh = len(h[key]), len(h[key][0])
    best_head = max(
        ((i, j) for i in range(L) for j in range(nh)),
        key=lambda ij: (h[key][ij[0]][ij[1]], h["referent"][ij[0]][ij[1]] - h["other"][ij[0]][ij[1]]),
    )
    best_layer = max(range(L), key=lambda i: (lay[key][i], lay["referent"][i] - lay["other"][i]))
    return best_head, best_layer


__all__ = ["attention_table", "choose", "evaluate", "points_to_referent", "strongest_link"]
