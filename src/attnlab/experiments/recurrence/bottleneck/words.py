"""The words of ``bottleneck``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.words import failed, fill

TITLE = "The fixed-vector bottleneck: quality against source length, with and without attention"
CLAIM = (
    "The encoder-decoder's fixed vector is a bottleneck: without attention, quality falls as the source grows; "
    "attention, which gives the decoder every encoder state at every step, removes it (Bahdanau et al. 2015, "
    "Figure 2)."
)
SOURCE = "Claim C2: seed 001 §3.1 (the information bottleneck problem) and §3.2; Bahdanau et al. 2015, Figure 2"
MAIN_FIGURE = "accuracy"
NONE = "none"


def _sizes(models: dict[str, Any]) -> str:
    return ", ".join(f"{n} H={r['hidden']} ({r['params']:,} parameters)" for n, r in models.items())


SETUP = """
(a) {task} strings of {cfg.n_symbols} symbols, training lengths uniform in [{cfg.min_len}, {cfg.max_len}] (fresh
strings every batch). attnlab Seq2Seq, bidirectional {cell} encoder, embeddings {cfg.emb}, at equal parameter count
(budget {cfg.param_budget:,}): {sizes}. Equal training budget: {cfg.train.max_iters} steps at batch {cfg.batch_size},
AdamW lr {cfg.train.lr:g} ({cfg.train.warmup_iters} warm-up steps, cosine to {cfg.train.min_lr:g}), clipping
{cfg.train.grad_clip:g}, the same batches for every model (seed {cfg.seed}). Greedy decoding of {cfg.eval_examples}
held-out strings per length {cfg.eval_lengths}: exact-match and per-token accuracy.
"""
SETUP_B = """
(b) German -> English: {d[de_en][pairs]:,} sentence pairs of at most {cfg.de_en.max_len} tokens from trans-de-en
({d[de_en][split][0]:,} train / {d[de_en][split][1]:,} valid / {d[de_en][split][2]:,} test), vocabularies
{d[de_en][vocab][0]:,} / {d[de_en][vocab][1]:,} (tokens seen >= {cfg.de_en.min_freq} times), embeddings
{cfg.de_en.emb}, equal parameters (budget {cfg.de_en.budget:,}): {sizes}; {cfg.de_en.train.max_iters} steps at batch
{cfg.de_en.batch_size}, lr {cfg.de_en.train.lr:g}; greedy decoding of the test split, sacrebleu BLEU
({d[de_en][bleu_signature]}) overall and per source-length bucket {d[de_en][buckets]}.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    data = r["data"]
    text = fill(SETUP, cfg, r, task=cfg.task.capitalize(), cell=cfg.cell.upper(), sizes=_sizes(data["synthetic"]))
    de_en = data["de_en"]
    if de_en["status"] == "measured":
        text += " " + fill(SETUP_B, cfg, r, sizes=_sizes(de_en["models"]))
    else:
        text += f" (b) German -> English: {de_en['status']} ({de_en['note']})."
    return text + f" Measured on {r['device_name']}."


def _part_b(cfg: Any, de_en: dict[str, Any], held_b: bool | None) -> str:
    if de_en["status"] != "measured":
        return f"(b) German -> English not measured: {de_en['note']}. "
    models, significance = de_en["models"], cfg.de_en.significance
    bleu = "; ".join(
        f"{n} {r['bleu']:.2f} (chrF {r['chrf']:.1f}"
        + ("" if r["p_value"] is None else f", p = {r['p_value']:.3g}")
        + ")"
        for n, r in models.items()
    )
    text = f"(b) German -> English test BLEU: {bleu} (p: paired approximate randomization against none). "
    for n, r in models.items():
        cells = ", ".join(
            f"{label}: {'-' if b is None else f'{b:.1f}'}"
            for label, b in zip(de_en["buckets"], r["bleu_by_bucket"], strict=True)
        )
        text += f"{n} by source length: {cells}. "
    if held_b is None:
        return text + "Part (b) needs both the no-attention model and an attention model. "
    if held_b:
        return text + f"Attention is above the no-attention model in BLEU, significantly (p < {significance:g}). "
    return text + (
        f"Attention is not significantly (p < {significance:g}) above the no-attention model in BLEU: "
        "part (b) does not hold. "
    )


def summary(cfg: Any, r: dict[str, Any]) -> str:
    data, m = r["data"], r["metrics"]
    synthetic, breakdown, held_a = data["synthetic"], data["breakdown_length"], m["held/synthetic"]
    L0, L1 = cfg.eval_lengths[0], cfg.eval_lengths[-1]
    parts = [f"{n} {s['accuracy'][0]:.2f} -> {s['accuracy'][-1]:.2f}" for n, s in synthetic.items()]
    text = f"(a) Exact-match accuracy at length {L0} -> {L1}: " + "; ".join(parts) + ". "
    if NONE in synthetic:
        text += (
            f"The no-attention model breaks down (below {cfg.breakdown_fraction:g} of its short-string accuracy) "
            f"at length {breakdown}. "
            if breakdown is not None
            else "The no-attention model does not fall below "
            f"{cfg.breakdown_fraction:g} of its short-string accuracy up to length {L1}. "
        )
    if held_a is None:
        text += "Not measurable without both the no-attention model and an attention model. "
    elif held_a:
        text += "Part (a) shows the claim: without attention accuracy falls with length, with attention it holds. "
    else:
        text += (
            f"Part (a) does not show the claim as tested: {', '.join(failed(data['verdict']['synthetic']))} failed. "
        )
    text += _part_b(cfg, data["de_en"], m["held/de-en"])
    if r["held"] is None:
        return text + "The claim could not be measured."
    return text + (
        "The claim held in every part measured." if r["held"] else "The claim did not hold in every part measured."
    )


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    m, L0, L1 = r["metrics"], cfg.eval_lengths[0], cfg.eval_lengths[-1]
    rows = [
        (f"exact match, {n}: length {L0} / {L1}", f"{m[f'acc/{n}/len={L0}']:.2f} / {m[f'acc/{n}/len={L1}']:.2f}")
        for n in cfg.models
    ]
    rows.append(("no-attention breakdown length", m["breakdown_length"]))
    rows.append(("parameters (spread between models)", f"{m[f'params/{cfg.models[0]}']:,} ({m['params_spread']:.1%})"))
    if "de-en/bleu/none" in m:
        rows.append(
            (
                "German -> English BLEU, " + " / ".join(cfg.de_en.models),
                " / ".join(f"{m[f'de-en/bleu/{n}']:.2f}" for n in cfg.de_en.models),
            )
        )
    return rows


WORDS = Words(setup, summary, headline)
