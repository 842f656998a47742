"""The measuring of ``alignment``: a date model's attention against the gold alignment (argmax agreement and mass
on the gold field, against chance), and a German -> English model's maps."""

from __future__ import annotations

from typing import Any

import torch

from attnlab._checks import resolve_device
from attnlab.data.seq2seq import DATE_FORMATS, Vocab, date_pairs, make_batch
from attnlab.experiments.base import viewer_payload
from attnlab.experiments.seq2seq import build, de_en_part, greedy_scores
from attnlab.experiments.training import one_thread, train
from attnlab.train.seq2seq import batch_sampler, evaluate, translate

# the report may run it beside another experiment: trains on one thread; it measures attention weights, not time
SHARES_CORES = True

FIELDS = ("year", "month", "day")
ISO_FIELDS = ("year",) * 4 + (None,) + ("month",) * 2 + (None,) + ("day",) * 2  # the field of each YYYY-MM-DD char
EOS_TOKEN = "<eos>"


# --- agreement with the gold alignment ---------------------------------------------------------------------------


def agreement(weights: torch.Tensor, pairs: list, src_lengths: list[int]) -> dict[str, Any]:
    """Per target digit of every date: whether the argmax source position is inside the gold field, the mass on
    the field, and chance (``|field| / S``).

    ``weights`` ``(N, T, S)``: row t the weights with which target character t was produced (teacher forcing);
    ``pairs`` :class:`~attnlab.data.seq2seq.DatePair` with ``align[t]`` the gold field's source positions.
    Returns the per-digit lists ``inside``, ``mass``, ``chance`` and ``field`` (``"year"|"month"|"day"``).
    """
    out: dict[str, list] = {"inside": [], "mass": [], "chance": [], "field": []}
    for i, (pair, S) in enumerate(zip(pairs, src_lengths, strict=True)):
        rows = weights[i, : len(pair.tgt), :S]  # (10, S) over the real source characters
        best = rows.argmax(-1).tolist()  # (10,)
        for t, gold in enumerate(pair.align):
            if not gold:  # the two '-' come from nowhere in the source
                continue
            field = torch.tensor(gold)
            out["inside"].append(best[t] in gold)
            out["mass"].append(float(rows[t, field].sum()))
            out["chance"].append(len(gold) / S)
            out["field"].append(ISO_FIELDS[t])
    return out


def _mean(xs: list) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def summarize(per_digit: dict[str, Any]) -> dict[str, float]:
    """Means of :func:`agreement`'s lists: ``argmax`` (fraction inside), ``mass``, ``chance``."""
    return {
        "argmax": _mean([float(x) for x in per_digit["inside"]]),
        "mass": _mean(per_digit["mass"]),
        "chance": _mean(per_digit["chance"]),
    }


def _by_field(per_digit: dict[str, Any], field: str) -> dict[str, float]:
    keep = [k for k, f in enumerate(per_digit["field"]) if f == field]
    return summarize({key: [v[k] for k in keep] for key, v in per_digit.items()})


def judge(cfg: Any, overall: dict[str, float]) -> tuple[bool, dict[str, bool]]:
    verdict = {
        "argmax_above_chance": overall["argmax"] >= cfg.argmax_ratio * overall["chance"],
        "mass_above_chance": overall["mass"] >= cfg.mass_ratio * overall["chance"],
    }
    return all(verdict.values()), verdict


# --- dates -------------------------------------------------------------------------------------------------------


def _dates(cfg: Any, device: str) -> dict[str, Any]:
    sample = date_pairs(cfg.vocab_sample, torch.Generator().manual_seed(10_007 * (cfg.seed + 1)))
    src_vocab, tgt_vocab = Vocab.build(p.src for p in sample), Vocab.build(p.tgt for p in sample)

    def get_batch(split: str, gen: torch.Generator):  # fresh dates every batch; the split is not used
        return make_batch(date_pairs(cfg.batch_size, gen), src_vocab, tgt_vocab)

    torch.manual_seed(cfg.seed)
    model = build(cfg.attention, cfg.hidden, (len(src_vocab), len(tgt_vocab)), cfg.emb, cfg.cell)
    fit = train(model, cfg.train, get_batch, seed=cfg.seed, device=device)
    formats = list(DATE_FORMATS)
    per_format: dict[str, Any] = {}
    all_digits: dict[str, list] = {"inside": [], "mass": [], "chance": [], "field": []}
    maps, viewer = [], []
    correct_total = 0
    for k, name in enumerate(formats):
        gen = torch.Generator().manual_seed(1_000_003 * (cfg.seed + 1) + k)
        pairs = date_pairs(cfg.eval_per_format, gen, formats=[name])
        batch = make_batch(pairs, src_vocab, tgt_vocab, device=device)
        with torch.no_grad():
            weights = model(*batch).weights.cpu()  # (N, 11, S): 10 characters + EOS, teacher forcing
        lengths = batch.src_lengths.tolist()
        digits = agreement(weights, pairs, lengths)
        scores = greedy_scores(model, pairs, src_vocab, tgt_vocab)
        correct_total += scores["accuracy"] * len(pairs)
        per_format[name] = {**summarize(digits), "accuracy": scores["accuracy"], "example": "".join(pairs[0].src)}
        for key in all_digits:
            all_digits[key].extend(digits[key])
        # the first held-out date of each format as a map
        decoded = model.greedy(batch.src[:1], batch.src_lengths[:1], max_len=len(pairs[0].tgt) + 5)
        prediction = "".join(tgt_vocab.decode(decoded.tokens[0]))
        S = lengths[0]
        w = weights[0, : len(pairs[0].tgt) + 1, :S]  # (11, S): the gold characters and EOS
        title = f"{cfg.attention}: {''.join(pairs[0].src)!r} -> {''.join(pairs[0].tgt)}"
        viewer.append(viewer_payload(title, [*pairs[0].tgt, EOS_TOKEN], pairs[0].src, w, kind="cross"))
        maps.append(
            {
                "format": name,
                "gold": [list(a) for a in pairs[0].align],
                "prediction": prediction,
                "correct": prediction == "".join(pairs[0].tgt),
            }
        )
    n_eval = cfg.eval_per_format * len(formats)
    return {
        "overall": summarize(all_digits),
        "by_field": {f: _by_field(all_digits, f) for f in FIELDS},
        "by_format": per_format,
        "accuracy": correct_total / n_eval,
        "n_eval": n_eval,
        "n_digits": len(all_digits["inside"]),
        "vocab": [len(src_vocab), len(tgt_vocab)],
        "params": model.num_parameters(),
        "history": fit["history"],
        "train_seconds": fit["seconds"],
        "maps": maps,
        "viewer": viewer,
    }


# --- German -> English maps --------------------------------------------------------------------------------------


def _de_en(cfg: Any, device: str) -> dict[str, Any]:
    return de_en_part(cfg.de_en, cfg.seed, lambda data, src, tgt: _de_en_maps(cfg, device, data, src, tgt))


def _de_en_maps(cfg: Any, device: str, data: Any, src_vocab: Vocab, tgt_vocab: Vocab) -> dict[str, Any]:
    """A German -> English model's test BLEU and its attention on a few test sentences (no gold alignment)."""
    part = cfg.de_en
    torch.manual_seed(cfg.seed)
    model = build(cfg.attention, part.hidden, (len(src_vocab), len(tgt_vocab)), part.emb, cfg.cell, part.dropout)
    get_batch = batch_sampler(data, src_vocab, tgt_vocab, part.batch_size)
    fit = train(model, part.train, get_batch, seed=cfg.seed, device=device)
    ev = evaluate(model, data.test, src_vocab, tgt_vocab, beam_size=1)
    # the first test sentences of 6 to 10 tokens whose every source token is in the vocabulary
    chosen = [p for p in data.test if 6 <= len(p.src) <= 10 and Vocab.UNK not in src_vocab.encode(p.src)][
        : part.sentences
    ]
    viewer = []
    for pair in chosen:
        (tr,) = translate(model, src_vocab, tgt_vocab, [" ".join(pair.src)], tokenizer=str.split)
        if not tr.target_tokens:  # an empty translation has no rows to show
            continue
        title = f"{cfg.attention} de->en: {' '.join(pair.src)!r} -> {tr.text!r} (reference {' '.join(pair.tgt)!r})"
        viewer.append(viewer_payload(title, tr.target_tokens, tr.source_tokens, tr.weights, kind="cross"))
    return {
        "bleu": ev["bleu"],
        "chrf": ev["chrf"],
        "params": model.num_parameters(),
        "pairs": sum(map(len, data)),  # train + valid + test: the whole corpus
        "history": fit["history"],
        "train_seconds": fit["seconds"],
        "viewer": viewer,
    }


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    with one_thread(device):
        dates = _dates(cfg, device)
        de_en = _de_en(cfg, device)
    overall = dates["overall"]
    held, verdict = judge(cfg, overall)
    m: dict[str, Any] = {
        "argmax_agreement": round(overall["argmax"], 4),
        "gold_mass": round(overall["mass"], 4),
        "chance": round(overall["chance"], 4),
        "argmax_over_chance": round(overall["argmax"] / overall["chance"], 3),
        "mass_over_chance": round(overall["mass"] / overall["chance"], 3),
        "accuracy": round(dates["accuracy"], 4),
        "params": dates["params"],
        "train_seconds": dates["train_seconds"],
    }
    for f, s in dates["by_field"].items():
        m[f"argmax_agreement/{f}"] = round(s["argmax"], 4)
        m[f"gold_mass/{f}"] = round(s["mass"], 4)
    for name, s in dates["by_format"].items():
        m[f"argmax_agreement/format={name}"] = round(s["argmax"], 4)
        m[f"gold_mass/format={name}"] = round(s["mass"], 4)
        m[f"accuracy/format={name}"] = round(s["accuracy"], 4)
    if de_en["status"] == "measured":
        m["de-en/bleu"] = round(de_en["bleu"], 2)
        m["de-en/chrf"] = round(de_en["chrf"], 2)
    else:
        m["de-en/status"] = de_en["status"]
    data = {
        "attention": cfg.attention,
        "overall": overall,
        "by_field": dates["by_field"],
        "by_format": dates["by_format"],
        "maps": dates["maps"],
        "history": dates["history"],
        "de_en": {k: v for k, v in de_en.items() if k != "viewer"},
        "verdict": verdict,
        "viewer": dates["viewer"] + de_en.get("viewer", []),
    }
    data["dates"] = {k: dates[k] for k in ("accuracy", "n_eval", "n_digits", "vocab", "params")}
    return {"held": held, "metrics": m, "device": device, "data": data}


__all__ = ["EOS_TOKEN", "FIELDS", "agreement", "judge", "run", "summarize"]
