r"""Does a pretrained encoder's attention link "it" to its referent? All-MiniLM-L6-v2, every layer and head.

Sentences come in minimal pairs that differ only in a word after "it", which decides the referent::

    the horse didn't cross the river because it was too tired     ->  horse
    the horse didn't cross the river because it was too wide      ->  river
    The trophy didn't fit into the suitcase because it was too large.   ->  trophy
    The trophy didn't fit into the suitcase because it was too small.   ->  suitcase

(generated pairs from :func:`attnlab.data.pronoun.minimal_pairs`, and the hand-written Winograd-style pairs of
:data:`.sentences.WINOGRAD_PAIRS`). For each sentence, layer l and head h, the weight from "it" on each candidate
is summed
over the candidate's word pieces:

.. math::
    m^{(l,h)}_{\text{ref}} = \sum_{j \in \text{referent}} A^{(l,h)}_{\text{it}, j}, \qquad
    m^{(l,h)}_{\text{other}} = \sum_{j \in \text{other}} A^{(l,h)}_{\text{it}, j}

and the head resolves the sentence when :math:`m_{\text{ref}} > m_{\text{other}}`; its accuracy is the share of
sentences it resolves. Chance is 0.5, and on minimal pairs exactly so for any head blind to the deciding word: it
ranks the two nouns alike in both sentences of a pair and is right in exactly one. That includes every head of
the first layer, whose query at "it" and keys at the nouns do not depend on the deciding word (its position and
everything before it are the same in both sentences).

No cherry-picking: the pairs are split at random (by pair, so the two sentences of a pair stay together) into a
selection half, on which the best head is chosen (highest accuracy; ties: the earlier layer, then head), and a
report half, on which only that head's accuracy is reported, with a sign test: among the report pairs where the
head resolves both sentences or neither, how often both (one-sided binomial p-value against 1/2). The best head
on the report half itself (the cherry-picked figure) is given for comparison, marked as such.
"""

from __future__ import annotations

import math
import random
from typing import Any

import torch
from torch import Tensor

from attnlab._checks import check_positive_int
from attnlab.experiments.base import viewer_payload
from attnlab.experiments.transformer.pronoun.sentences import Item, make_items
from attnlab.models.encoder import Encoder

CHANCE = 0.5
CLASSIC = (
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
)


def _pieces(offsets: list[tuple[int, int]], special: list[int], span: tuple[int, int]) -> list[int]:
    """Indices of the word pieces inside a character span (special tokens excluded)."""
    return [i for i, (s, e) in enumerate(offsets) if not special[i] and s >= span[0] and e <= span[1] and e > s]


@torch.no_grad()
def attention_masses(encoder: Encoder, items: list[Item], batch_size: int = 64) -> tuple[Tensor, Tensor, Tensor]:
    """Weight from "it" on the referent's and on the other candidate's word pieces, in every layer and head
    (eval mode): ``m_ref`` and ``m_other`` ``(N, L, nh)``, and the largest deviation from 1 of the sum of a row
    of "it" (a 0-D tensor; the rows are probability distributions)."""
    if encoder.tokenizer is None:
        raise ValueError("encoder: expected one with a tokenizer (Encoder.from_pretrained)")
    was_training = encoder.training
    encoder.eval()
    try:
        return _masses(encoder, items, batch_size)
    finally:
        encoder.train(was_training)


def _masses(encoder: Encoder, items: list[Item], batch_size: int) -> tuple[Tensor, Tensor, Tensor]:
    refs, others, worst = [], [], torch.zeros(())
    device = encoder.word_embeddings.weight.device
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        ids, mask, tokens = encoder.tokenize([it.sentence for it in chunk])
        B, T = ids.shape
        it_index = torch.zeros(B, dtype=torch.long)
        on_ref = torch.zeros(B, T)  # (B, T): 1 at the referent's pieces
        on_other = torch.zeros(B, T)  # (B, T): 1 at the other candidate's pieces
        for b, (item, enc) in enumerate(
            zip(chunk, encoder.tokenizer.encode_batch([i.sentence for i in chunk]), strict=True)
        ):
            if list(enc.tokens) != tokens[b]:
                raise RuntimeError(
                    f"tokenizer: offsets computed on other pieces than the model's for {item.sentence!r}"
                )
            offsets, special = list(enc.offsets), list(enc.special_tokens_mask)
            (it_piece,) = _pieces(offsets, special, item.it)  # "it" is one word piece
            ref, other = _pieces(offsets, special, item.referent), _pieces(offsets, special, item.other)
            if not ref or not other:
                raise RuntimeError(f"tokenizer: no word piece for a candidate of {item.sentence!r}")
            it_index[b], on_ref[b, ref], on_other[b, other] = it_piece, 1.0, 1.0
        out = encoder(ids.to(device), mask.to(device), output_attentions=True)
        att = torch.stack(out.attentions, 1).cpu()  # (B, L, nh, T, T)
        rows = att[torch.arange(B), :, :, it_index]  # (B, L, nh, T): the row of "it" in every layer and head
        worst = torch.maximum(worst, (rows.sum(-1) - 1).abs().max())
        refs.append((rows * on_ref[:, None, None, :]).sum(-1))  # (B, L, nh): m_ref
        others.append((rows * on_other[:, None, None, :]).sum(-1))  # (B, L, nh): m_other
    return torch.cat(refs), torch.cat(others), worst


def split_pairs(n_pairs: int, seed: int) -> tuple[list[int], list[int]]:
    """Pair ids shuffled with ``seed`` and cut in two: (selection half, report half), disjoint, sorted."""
    ids = list(range(n_pairs))
    random.Random(f"pronoun-pretrained/split/{seed}").shuffle(ids)
    half = n_pairs // 2
    return sorted(ids[:half]), sorted(ids[half:])


def sign_test(both: int, neither: int) -> float:
    """One-sided binomial p-value P(X >= both), X ~ Bin(both + neither, 1/2): a head blind to the deciding word is
    right in exactly one sentence per pair, so only pairs with both or neither right tell it from chance."""
    n = both + neither
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(both, n + 1)) / 2**n


def _pair_outcomes(correct: Tensor, pair: Tensor, pairs: list[int]) -> tuple[int, int]:
    """(pairs with both sentences right, pairs with neither) among ``pairs``, from ``correct`` ``(N,)`` bool."""
    both = neither = 0
    for p in pairs:
        k = int(correct[pair == p].sum())
        both += k == 2
        neither += k == 0
    return both, neither


def analyse(
    n_pairs: int = 200, seed: int = 0, *, encoder: Encoder | None = None, winograd: bool = True
) -> dict[str, Any]:
    """Every head of all-MiniLM-L6-v2 on pronoun minimal pairs (see the module docstring).

    Args:
        n_pairs: generated minimal pairs (2 sentences each); the 24 hand-written pairs come on top (``winograd``).
        seed: the generator's and the selection/report split's seed.
        encoder: a loaded :class:`~attnlab.models.Encoder` (default: :meth:`~attnlab.models.Encoder.from_pretrained`).

    Returns a JSON-able dict: ``metrics`` (flat) and ``data`` (the grids per layer x head for a figure, the chosen
    head, the split, the viewer payloads of the classic pair under ``viewer``).
    """
    check_positive_int("n_pairs", n_pairs, minimum=2)
    encoder = Encoder.from_pretrained() if encoder is None else encoder
    items = make_items(n_pairs, seed, winograd)
    m_ref, m_other, row_error = attention_masses(encoder, items)  # (N, L, nh) each
    correct = m_ref > m_other  # (N, L, nh): the head resolves the sentence
    pair = torch.tensor([it.pair for it in items])  # (N,)
    total_pairs = int(pair.max()) + 1
    selection, report = split_pairs(total_pairs, seed)
    in_sel, in_rep = torch.isin(pair, torch.tensor(selection)), torch.isin(pair, torch.tensor(report))
    L, nh = correct.shape[1:]

    grid = correct.double().mean(0)  # (L, nh): accuracy on all sentences (descriptive, for the figure)
    grid_sel = correct[in_sel].double().mean(0)  # (L, nh)
    grid_rep = correct[in_rep].double().mean(0)  # (L, nh)
    best = int(torch.argmax(grid_sel.flatten()))  # the first maximum: earliest layer, then head
    bl, bh = divmod(best, nh)
    chosen = correct[:, bl, bh]  # (N,)
    acc_rep = float(chosen[in_rep].double().mean())
    both, neither = _pair_outcomes(chosen, pair, report)
    winograd_rep = in_rep & torch.tensor([it.source == "winograd" for it in items])
    generated_rep = in_rep & ~winograd_rep
    cherry = int(torch.argmax(grid_rep.flatten()))
    layer_mean = (m_ref.mean(2) > m_other.mean(2)).double()  # (N, L): each layer's heads averaged

    def acc(mask: Tensor) -> float | None:
        return round(float(chosen[mask].double().mean()), 4) if bool(mask.any()) else None

    p_value = sign_test(both, neither)
    metrics = {
        "chance": CHANCE,
        "sentences": len(items),
        "pairs": total_pairs,
        "selection_pairs": len(selection),
        "report_pairs": len(report),
        "best_head": f"L{bl + 1}H{bh + 1}",
        "best_head_selection_accuracy": round(float(grid_sel[bl, bh]), 4),
        "best_head_heldout_accuracy": round(acc_rep, 4),
        "best_head_heldout_accuracy_generated": acc(generated_rep),
        "best_head_heldout_accuracy_winograd": acc(winograd_rep),
        "best_head_heldout_pairs_both_right": both,
        "best_head_heldout_pairs_neither_right": neither,
        "best_head_heldout_sign_test_p": p_value,
        "above_chance": bool(acc_rep > CHANCE and p_value < 0.05),
        "cherry_picked_heldout_head": f"L{cherry // nh + 1}H{cherry % nh + 1}",
        "cherry_picked_heldout_accuracy": round(float(grid_rep.flatten()[cherry]), 4),
        "mean_head_accuracy": round(float(grid.mean()), 4),
        "first_layer_max_accuracy": round(float(grid[0].max()), 4),
        "best_layer_mean_accuracy": round(float(layer_mean.mean(0).max()), 4),
        "attention_row_sum_max_error": float(row_error),
    }
    viewer = []
    for s in CLASSIC:
        tokens, weights = encoder.attend(s)
        viewer.append(viewer_payload(f"all-MiniLM-L6-v2: {s}", tokens, tokens, weights))
    data = {
        "num_layers": L,
        "num_heads": nh,
        "chance": CHANCE,
        "grid": grid.tolist(),
        "grid_selection": grid_sel.tolist(),
        "grid_report": grid_rep.tolist(),
        "weight_gap": (m_ref - m_other).mean(0).tolist(),  # (L, nh): mean weight on the referent minus the other
        "best_head": [bl, bh],
        "selection_pairs": selection,
        "report_pairs": report,
        "sentences": [
            {
                "sentence": it.sentence,
                "pair": it.pair,
                "source": it.source,
                "referent": it.sentence[slice(*it.referent)],
            }
            for it in items
        ],
        "viewer": viewer,
    }
    return {"metrics": metrics, "data": data}


__all__ = ["CHANCE", "CLASSIC", "analyse", "attention_masses", "sign_test", "split_pairs"]
