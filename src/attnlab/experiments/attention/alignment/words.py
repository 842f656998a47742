"""The words of ``alignment``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.data.seq2seq import DATE_FORMATS
from attnlab.experiments.base import Words
from attnlab.experiments.words import table

TITLE = "Attention as soft alignment"
CLAIM = (
    "Attention learns a soft alignment between source and target: without being told, the decoder puts its "
    "weight on the source positions each output comes from."
)
SOURCE = "Claim C3: seed 001 §3.2 (attention as soft alignment); Bahdanau et al. 2015, Figure 3"
MAIN_FIGURE = "dates"


def setup(cfg: Any, r: dict[str, Any]) -> str:
    dates, de_en, tr = r["data"]["dates"], r["data"]["de_en"], cfg.train
    text = (
        f"Date normalisation, character level, six source formats ({', '.join(DATE_FORMATS)}) -> YYYY-MM-DD. attnlab "
        f"Seq2Seq with {cfg.attention} attention, bidirectional {cfg.cell.upper()} encoder, embeddings {cfg.emb}, "
        f"hidden {cfg.hidden} ({dates['params']:,} parameters), vocabularies {dates['vocab'][0]} / "
        f"{dates['vocab'][1]} characters; {tr.max_iters} steps at batch {cfg.batch_size} on fresh dates, AdamW lr "
        f"{tr.lr:g} ({tr.warmup_iters} warm-up steps, cosine to {tr.min_lr:g}), clipping {tr.grad_clip:g}, seed "
        f"{cfg.seed}. Measured on {dates['n_eval']} held-out dates ({cfg.eval_per_format} per format, "
        f"{dates['n_digits']} target digits) with the gold target fed in: the argmax agreement (the most-attended "
        "source character inside the gold field) and the attention mass on the gold field, against uniform attention "
        f"(|field| / S). Measured on {r['device_name']}."
    )
    part = cfg.de_en
    if de_en["status"] == "measured":
        return text + (
            f" German -> English maps: the same architecture with embeddings {part.emb}, hidden {part.hidden} "
            f"({de_en['params']:,} parameters), {part.train.max_iters} steps at batch {part.batch_size} on "
            f"{de_en['pairs']:,} trans-de-en sentence pairs (90% train); greedy translations of test sentences."
        )
    return text + f" German -> English maps: {de_en['status']} ({de_en['note']})."


def summary(cfg: Any, r: dict[str, Any]) -> str:
    data = r["data"]
    o, de_en = data["overall"], data["de_en"]
    fields = "; ".join(f"{f} {s['argmax']:.2f} / {s['mass']:.2f}" for f, s in data["by_field"].items())
    worst = min(data["by_format"].items(), key=lambda kv: kv[1]["argmax"])
    text = (
        f"After {cfg.train.max_iters} steps the model normalises {data['dates']['accuracy']:.1%} of held-out dates "
        f"exactly. Its attention agrees with the gold alignment: for {o['argmax']:.1%} of target digits the "
        f"most-attended source character lies in the gold field, and {o['mass']:.1%} of the attention mass falls on "
        f"it, where uniform attention would give {o['chance']:.1%} for both ({o['argmax'] / o['chance']:.1f}x and "
        f"{o['mass'] / o['chance']:.1f}x chance). By field (argmax / mass): {fields}. Lowest argmax agreement by "
        f"format: {worst[0]} ({worst[1]['argmax']:.2f}, e.g. {worst[1]['example']!r}). "
    )
    if r["held"]:
        text += (
            f"The claim held: both measures are at least {cfg.argmax_ratio:g}x / {cfg.mass_ratio:g}x chance, an "
            "alignment the model was never shown."
        )
    else:
        text += (
            f"The claim, as tested ({cfg.argmax_ratio:g}x chance for the argmax agreement, {cfg.mass_ratio:g}x "
            "for the mass), did not hold."
        )
    if de_en["status"] == "measured":
        text += (
            f" The German -> English model (test BLEU {de_en['bleu']:.1f}) is shown in the maps for a picture "
            "of a learned word alignment; there is no gold alignment to score it against."
        )
    return text


HEADLINE = """
dates normalised exactly (held-out) | {m[accuracy]:.1%}
most-attended character inside the gold field | {m[argmax_agreement]:.1%} ({m[argmax_over_chance]:.1f}x chance)
attention mass on the gold field | {m[gold_mass]:.1%} ({m[mass_over_chance]:.1f}x chance)
chance (uniform attention) | {m[chance]:.1%}
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    return table(HEADLINE, cfg, r)


WORDS = Words(setup, summary, headline)
