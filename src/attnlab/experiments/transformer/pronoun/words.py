"""The words of ``pronoun``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.data.pronoun import FRAMES, HELD_OUT_ADJECTIVES, HELD_OUT_NOUNS
from attnlab.experiments.base import Words
from attnlab.experiments.transformer.pronoun.measure import head_name
from attnlab.experiments.transformer.pronoun.sentences import WINOGRAD_PAIRS
from attnlab.experiments.words import fill, table

TITLE = 'Attention links "it" to its referent'
CLAIM = (
    'Attention links "it" to its referent: in "The animal didn\'t cross the street because it was too tired" '
    '"it" attends to "animal"; with "too wide", to "street".'
)
SOURCE = "Seed 003 (attention and transformers, in brief), practice: the pronoun-resolution exercise"
MAIN_FIGURE = "resolution"


def _to_adjective(seed: dict[str, Any]) -> str:
    """Where "it" looks at the adjective most, in words: the head and its mean weight (held-out sentences)."""
    table = seed["it_on_adjective_heldout"]  # (L, nh)
    layer, head = max(
        ((i, j) for i in range(len(table)) for j in range(len(table[0]))), key=lambda ij: table[ij[0]][ij[1]]
    )
    return f"'it' put a mean weight of {table[layer][head]:.2f} on the adjective in {head_name([layer, head])}"


SETUP = """
Minimal pairs from {frames} frames (3 of which take either noun order) with 16 + 16 training nouns and 12 + 12
training adjectives; held-out test pairs made only of held-out words ({nouns} nouns, {adjectives} adjectives) that the
model met only in masked-word lexicon sentences ({cfg.lexicon_fraction:.0%} of every batch), never in a pronoun
pair. Model: word embedding + learned positions, {cfg.num_layers} pre-norm attnlab TransformerEncoderLayer blocks
(d_model {cfg.d_model}, {cfg.nhead} heads, bidirectional), tied output; trained to name the referent at 'it' (and the
hidden word at [MASK]), {cfg.train.max_iters} AdamW steps (attnlab Trainer, lr {cfg.train.lr:g}, warm-up + cosine),
batch {cfg.batch_size}, {cfg.seeds} seed(s). Resolution: referent's logit at 'it' above the other candidate's (chance
0.5), on {sentences} validation sentences of training words and {sentences} held-out sentences. Attention: the row of
'it' per layer and head (need_weights=True); the head with the largest mean weight on the referent minus the other
candidate on validation sentences is scored on held-out ones (share of sentences where it weights the referent
more). Trained on {r[device_name]}.
"""
PRETRAINED = """
Pretrained encoder: all-MiniLM-L6-v2 (6 layers x 12 heads, pretrained, not fine-tuned here) read
{m[pretrained/sentences]} sentences: {cfg.pretrained_pairs} generated minimal pairs (the animal/street frames) and
{winograd} hand-written Winograd-style pairs. For every head, the weight from 'it' on each candidate noun's word
pieces; a head resolves a sentence when the referent gets more. The best head is chosen on a random half of the
pairs and its accuracy reported on the other half.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    counts = {"frames": len(FRAMES), "nouns": len(HELD_OUT_NOUNS), "adjectives": len(HELD_OUT_ADJECTIVES)}
    text = fill(SETUP, cfg, r, sentences=2 * cfg.eval_pairs, **counts)
    if "pretrained" in r["data"]:
        text += " " + fill(PRETRAINED, cfg, r, winograd=len(WINOGRAD_PAIRS))
    return text


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, held, verdict, runs = r["metrics"], r["held"], r["data"]["verdict"], r["data"]["seeds"]
    bar = 0.5 + cfg.margin
    n = len(runs)
    single = m["attention/seeds_with_single_head"]
    animate_head = m["best_head_animate_referents/first_seed"]
    inanimate_head = m["best_head_inanimate_referents/first_seed"]
    parts = [
        f"Resolution by the model's output at 'it': {m['val/accuracy']:.3f} on validation sentences of training "
        f"words and {m['heldout/accuracy']:.3f} on sentences made only of held-out words (chance 0.5; held-out "
        f"fixed-order frames {m['heldout/accuracy_fixed_order']:.3f}, either-order frames "
        f"{m['heldout/accuracy_either_order']:.3f}; mean over {n} seed(s)).",
        f"Resolution by attention: in {m['attention/strongest_link/heldout']:.1%} of held-out sentences the "
        f"strongest weight from 'it' on either noun, over all layers and heads, falls on the referent. A row "
        f"points to the referent when it puts more weight on it than on the other noun, and at least "
        f"{cfg.min_weight:g}: the best single head chosen on validation ({m['best_head/first_seed']} in the first "
        f"seed) does so in {m['attention/best_head/heldout_resolution']:.1%} of held-out sentences (mean weight "
        f"{m['attention/best_head/heldout_referent']:.2f} on the referent, "
        f"{m['attention/best_head/heldout_other']:.2f} on the other noun), the best layer with its heads averaged "
        f"(layer {m['best_layer/first_seed']}) in {m['attention/best_layer/heldout_resolution']:.1%}.",
        f"By kind of referent: the head chosen for animate referents ({animate_head} in the first seed) points to "
        f"them in {m['attention/best_head_animate_referents/heldout_resolution']:.1%} of held-out sentences with "
        f"an animate referent, the head chosen for inanimate ones ({inanimate_head}) in "
        f"{m['attention/best_head_inanimate_referents/heldout_resolution']:.1%} of those with an inanimate one. "
        f"The adjective's own row (best head chosen on validation) points to the referent in "
        f"{m['adjective/best_head/heldout_resolution']:.1%}.",
    ]
    if n == 1:
        parts.append("One seed only (the full profile runs five and reports each).")
    else:
        per_seed = "; ".join(
            f"seed {cfg.seed + k}: accuracy {sd['heldout_accuracy']:.2f}, strongest link "
            f"{sd['strongest_link_heldout']:.2f}"
            for k, sd in enumerate(runs)
        )
        parts.append(f"Held-out, per seed: {per_seed}.")
    for k, sd in enumerate(runs):
        if sd["heldout_accuracy"] >= bar and sd["strongest_link_heldout"] < bar:
            parts.append(
                f"Seed {cfg.seed + k} resolved {sd['heldout_accuracy']:.1%} of held-out sentences without 'it' "
                f"attending to the referent: its adjective's row pointed to the referent in "
                f"{sd['adjective_best_head_heldout_resolution']:.1%} of them, and {_to_adjective(sd)}."
            )
    if held and single > n / 2:
        parts.append(
            f"The claim held: the model resolves 'it' in sentences of words it never met in a pronoun pair "
            f"(>= {bar:g}), and the attention from 'it' points to the referent, not the other noun, in one head "
            f"(>= {bar:g})."
        )
    elif held:
        split = (
            f" ({animate_head} for animate referents and {inanimate_head} for inanimate ones in the first seed)"
            if animate_head != inanimate_head
            else ""
        )
        parts.append(
            f"The claim held, with a nuance: the model resolves held-out sentences (>= {bar:g}) and where 'it' "
            f"attends most is its referent (>= {bar:g}), but no single head points to the referent in both kinds "
            f"of sentence in a majority of seeds: the link is split between heads{split}; see the maps."
        )
    else:
        acc_ok = sum(sd["heldout_accuracy"] >= bar for sd in runs)
        link_ok = sum(sd["strongest_link_heldout"] >= bar for sd in runs)
        both = sum(sd["heldout_accuracy"] >= bar and sd["strongest_link_heldout"] >= bar for sd in runs)
        failed = []
        if not verdict["heldout_accuracy_above_chance"]:
            failed.append(f"the model's held-out accuracy reached {bar:g} in only {acc_ok} of {n} seed(s)")
        if not verdict["attention_from_it_points_to_referent"]:
            failed.append(
                f"the strongest weight from 'it' fell on the referent in >= {bar:g} of held-out sentences in only "
                f"{link_ok} of {n} seed(s): the model resolves 'it' without 'it' attending to its referent"
            )
        if verdict["heldout_accuracy_above_chance"] and verdict["attention_from_it_points_to_referent"]:
            failed.append(f"each held in a majority of seeds, but both together in only {both} of {n}")
        parts.append("The claim did not hold here: " + "; ".join(failed) + ". Reported as measured.")
    if "pretrained" in r["data"]:
        parts.append("Pretrained all-MiniLM-L6-v2 (not part of the verdict above): " + pretrained_summary(m))
    return " ".join(parts)


def pretrained_summary(metrics: dict[str, Any]) -> str:
    """What the pretrained encoder's heads do, from its metrics (``pretrained/...`` in the experiment's, or those
    of :func:`.pretrained.analyse`)."""
    m = {k.removeprefix("pretrained/"): v for k, v in metrics.items()}
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


HEADLINE = """
resolved by the model: training words / held-out words | {m[val/accuracy]:.3f} / {m[heldout/accuracy]:.3f}
strongest link from 'it' on the referent (held-out) | {m[attention/strongest_link/heldout]:.1%}
best single head, chosen on validation (held-out) | {m[attention/best_head/heldout_resolution]:.1%}
seeds | {cfg.seeds}
all-MiniLM-L6-v2, head {m[pretrained/best_head]} on held-out pairs (p) | {m[pretrained/best_head_heldout_accuracy]:.0%}
    ({m[pretrained/best_head_heldout_sign_test_p]:.2g})
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    return table(HEADLINE, cfg, r)


WORDS = Words(setup, summary, headline)
