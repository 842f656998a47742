r"""Does a pretrained encoder's attention link "it" to its referent? All-MiniLM-L6-v2, every layer and head.

Sentences come in minimal pairs that differ only in a word after "it", which decides the referent::

    the horse didn't cross the river because it was too tired     ->  horse
    the horse didn't cross the river because it was too wide      ->  river
    The trophy didn't fit into the suitcase because it was too large.   ->  trophy
    The trophy didn't fit into the suitcase because it was too small.   ->  suitcase

(generated pairs from :func:`attnlab.data.pronoun.minimal_pairs`, and the hand-written Winograd-style pairs of
:data:`WINOGRAD_PAIRS`). For each sentence, layer l and head h, the weight from "it" on each candidate is summed
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
import re
from typing import Any, NamedTuple

import torch
from torch import Tensor

from attnlab._checks import check_positive_int
from attnlab.data.pronoun import PronounExample, minimal_pairs
from attnlab.experiments.base import viewer_payload
from attnlab.models.encoder import Encoder

CHANCE = 0.5
CLASSIC = (
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
)


class WinogradPair(NamedTuple):
    """A sentence with one ``{}`` slot after "it", two candidate nouns (each once in the sentence, as in the text),
    and the two fillers: ``fillers[0]`` makes "it" refer to ``first``, ``fillers[1]`` to ``second``."""

    text: str
    first: str
    second: str
    fillers: tuple[str, str]


# Hand-written pairs in the style of the Winograd schema challenge (Levesque et al. 2012), "it" in every one.
WINOGRAD_PAIRS = (
    WinogradPair(
        "The trophy didn't fit into the suitcase because it was too {}.", "trophy", "suitcase", ("large", "small")
    ),
    WinogradPair(
        "The sculpture rolled off the shelf because it wasn't {}.", "sculpture", "shelf", ("anchored", "level")
    ),
    WinogradPair("The fish ate the worm because it was {}.", "fish", "worm", ("hungry", "tasty")),
    WinogradPair(
        "The table would not fit through the doorway because it was too {}.", "table", "doorway", ("wide", "narrow")
    ),
    WinogradPair("The bird could not fly over the wall because it was too {}.", "bird", "wall", ("tired", "high")),
    WinogradPair("The boat could not sail under the bridge because it was too {}.", "boat", "bridge", ("tall", "low")),
    WinogradPair("The cake did not fit in the box because it was too {}.", "cake", "box", ("big", "small")),
    WinogradPair("The medicine did not cure the cough because it was too {}.", "medicine", "cough", ("weak", "severe")),
    WinogradPair("The blanket did not cover the bed because it was too {}.", "blanket", "bed", ("small", "big")),
    WinogradPair("The shelf could not hold the book because it was too {}.", "shelf", "book", ("flimsy", "heavy")),
    WinogradPair("The rope could not hold the piano because it was too {}.", "rope", "piano", ("thin", "heavy")),
    WinogradPair("The hammer could not break the stone because it was too {}.", "hammer", "stone", ("light", "hard")),
    WinogradPair("The paint did not hide the stain because it was too {}.", "paint", "stain", ("thin", "dark")),
    WinogradPair(
        "The computer could not run the game because it was too {}.", "computer", "game", ("old", "demanding")
    ),
    WinogradPair(
        "The plant did not survive the winter because it was too {}.", "plant", "winter", ("delicate", "harsh")
    ),
    WinogradPair("The bridge could not carry the truck because it was too {}.", "bridge", "truck", ("weak", "heavy")),
    WinogradPair("The knife could not cut the bread because it was too {}.", "knife", "bread", ("blunt", "hard")),
    WinogradPair(
        "The umbrella did not keep out the rain because it was too {}.", "umbrella", "rain", ("small", "heavy")
    ),
    WinogradPair("The horse could not pull the cart because it was too {}.", "horse", "cart", ("weak", "heavy")),
    WinogradPair("The phone did not fit in the pocket because it was too {}.", "phone", "pocket", ("big", "small")),
    WinogradPair("The fox could not catch the rabbit because it was too {}.", "fox", "rabbit", ("slow", "fast")),
    WinogradPair("The lamp could not light the hall because it was too {}.", "lamp", "hall", ("dim", "large")),
    WinogradPair("The glass shattered on the floor because it was so {}.", "glass", "floor", ("fragile", "hard")),
    WinogradPair("The snake could not swallow the egg because it was too {}.", "snake", "egg", ("small", "big")),
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

    Returns a JSON-able dict: ``metrics`` (flat), ``data`` (the grids per layer x head for a figure, the chosen
    head, the split, the viewer payloads of the classic pair under ``viewer``), ``setup`` and ``summary``.
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
    return {"metrics": metrics, "data": data, "setup": _setup(n_pairs, len(items)), "summary": _summary(metrics)}


def _setup(n_pairs: int, n_sentences: int) -> str:
    return (
        f"all-MiniLM-L6-v2 (6 layers x 12 heads, pretrained, not fine-tuned here) read {n_sentences} sentences: "
        f"{n_pairs} generated minimal pairs (the animal/street frames) and {len(WINOGRAD_PAIRS)} hand-written "
        "Winograd-style pairs. For every head, the weight from 'it' on each candidate noun's word pieces; a head "
        "resolves a sentence when the referent gets more. The best head is chosen on a random half of the pairs "
        "and its accuracy reported on the other half."
    )


def _summary(m: dict[str, Any]) -> str:
    verdict = "above chance" if m["above_chance"] else "not distinguishable from chance at p < 0.05 (sign test)"
    if m["cherry_picked_heldout_head"] == m["best_head"]:
        hindsight = "Chosen on the held-out half itself, the same head would have been picked."
    else:
        hindsight = (
            f"Chosen on the held-out half itself, {m['cherry_picked_heldout_head']} would show "
            f"{m['cherry_picked_heldout_accuracy']:.0%}: the difference is what selecting and reporting on the same "
            "pairs would add."
        )
    return (
        f"Chosen on {m['selection_pairs']} pairs, head {m['best_head']} resolved "
        f"{m['best_head_selection_accuracy']:.0%} there and {m['best_head_heldout_accuracy']:.0%} of the sentences "
        f"of the {m['report_pairs']} held-out pairs ({verdict}; both sentences right in "
        f"{m['best_head_heldout_pairs_both_right']} pairs, neither in {m['best_head_heldout_pairs_neither_right']}, "
        f"p = {m['best_head_heldout_sign_test_p']:.2g}). {hindsight} The average head resolves "
        f"{m['mean_head_accuracy']:.0%}; first-layer heads at most {m['first_layer_max_accuracy']:.0%}, as they must "
        "on minimal pairs."
    )


def plot(analysis: dict[str, Any]) -> dict[str, Any]:
    """The layer x head accuracy grid (all sentences) with the chosen head outlined."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    data = analysis["data"]
    grid, (bl, bh) = data["grid"], data["best_head"]
    L, nh = data["num_layers"], data["num_heads"]
    fig, ax = plt.subplots(figsize=(0.6 * nh + 2.5, 0.5 * L + 1.8), layout="constrained")
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="RdBu", aspect="auto")
    for i in range(L):
        for j in range(nh):
            dark = abs(grid[i][j] - 0.5) > 0.3
            ax.text(j, i, f"{grid[i][j]:.2f}", ha="center", va="center", fontsize=7, color="w" if dark else "k")
    ax.add_patch(Rectangle((bh - 0.5, bl - 0.5), 1, 1, fill=False, ec="k", lw=2))
    ax.set_xticks(range(nh), [f"H{h + 1}" for h in range(nh)])
    ax.set_yticks(range(L), [f"layer {i + 1}" for i in range(L)])
    ax.set_title(
        f"all-MiniLM-L6-v2: share of sentences where 'it' attends more to its referent (chance 0.5)\n"
        f"outlined: the head chosen on the selection half; held-out accuracy "
        f"{analysis['metrics']['best_head_heldout_accuracy']:.2f}",
        fontsize=9,
    )
    fig.colorbar(im, ax=ax, fraction=0.04)
    return {"pretrained_heads": fig}


__all__ = [
    "CLASSIC",
    "WINOGRAD_PAIRS",
    "Item",
    "WinogradPair",
    "analyse",
    "attention_masses",
    "make_items",
    "plot",
    "sign_test",
    "split_pairs",
]
