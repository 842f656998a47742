r"""Experiment ``alignment`` (claim C3; seed 001 §3.2): attention learns a soft alignment between source and target.

Bahdanau et al. 2015 call their attention model one that learns "to align and translate": the weight ``a_ij`` of
target word i on source word j, never supervised, comes out as a soft alignment (their Figure 3). Here the gold
alignment is known exactly: date normalisation (:func:`attnlab.data.seq2seq.date_pairs`), e.g.
``"the 3rd of March 2021" -> "2021-03-03"`` character by character in six source formats, where each target digit
comes from one field of the source (year, month word or number, day with its ordinal suffix).

An attention model (:class:`attnlab.models.seq2seq.Seq2Seq`, ``attention`` Bahdanau by default) is trained on
fresh dates every batch. Then, on held-out dates of every format, with the gold target fed in (teacher forcing:
the weights the model gives each gold target character; the greedy output's exact-match accuracy is reported
beside), for every target digit t (the two ``-`` have no source):

- **argmax agreement**: the fraction of target digits whose most-attended source character lies inside the gold
  field;
- **mass on the gold field**: ``sum_{j in field(t)} a_tj``, averaged over the target digits;
- **chance**: what uniform attention (``a_tj = 1/S``) scores on both, ``|field(t)| / S`` averaged the same way: a
  random source position lands inside the field with that probability, and uniform weights put that mass on it.

Both are also given per field (year, month, day) and per source format. ``held`` when, over all held-out dates,
the argmax agreement is at least ``argmax_ratio`` times chance and the mass on the gold field at least
``mass_ratio`` times chance.

Heatmaps (target rows x source columns, the gold field outlined) for one date of each format and, in the full
profile, for German -> English sentences from a small attention model trained on ``trans-de-en`` (no gold
alignment there: a picture of what the model learned, with its test BLEU); every map also goes to the report's
interactive viewer (``data["viewer"]``, kind ``"cross"``: query tokens the target, key tokens the source).

Measured in development (seed 0): the quick profile (Bahdanau, hidden 48, 300 steps at batch 32) normalised every
one of 600 held-out dates; argmax agreement 0.978 and mass 0.888 against chance 0.249 (by field, argmax / mass:
year 1.00 / 0.97, month 1.00 / 0.86, day 0.91 / 0.75; every format >= 0.97 argmax). Luong-general after the same
training: argmax 0.956, mass 0.950. The tiny profile (120 steps) normalises no date yet, but its attention already
finds the year (argmax 1.00) and scores 0.65 / 0.56 overall.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from attnlab._checks import resolve_device
from attnlab.data.seq2seq import (
    DATE_FORMATS,
    DE_EN_PATH,
    Vocab,
    date_pairs,
    make_batch,
)
from attnlab.experiments.base import ExperimentConfig, ExperimentSpec, viewer_payload
from attnlab.experiments.seq2seq_common import (
    check_cell,
    check_de_en_switches,
    check_ints,
    check_positive,
    de_en_data,
    greedy_scores,
    model_config,
    one_thread,
    train_model,
)
from attnlab.models.seq2seq import ATTENTIONS, Seq2Seq
from attnlab.train.seq2seq import batch_sampler, evaluate, translate

FIELDS = ("year", "month", "day")
ISO_FIELDS = ("year",) * 4 + (None,) + ("month",) * 2 + (None,) + ("day",) * 2  # the field of each YYYY-MM-DD char
EOS_TOKEN = "<eos>"


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Defaults are the full profile; ``held`` needs the argmax agreement >= ``argmax_ratio`` x chance and the mass
    on the gold field >= ``mass_ratio`` x chance (over all held-out dates)."""

    attention: str = "bahdanau"
    cell: str = "gru"
    emb: int = 32
    hidden: int = 64
    train_steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    grad_clip: float = 1.0
    eval_per_format: int = 200  # held-out dates of each source format
    vocab_sample: int = 5000  # dates drawn to build the character vocabularies
    argmax_ratio: float = 2.0
    mass_ratio: float = 2.0
    # a German -> English model for the heatmaps (no gold alignment there)
    de_en: bool = True
    de_en_path: str = DE_EN_PATH
    de_en_max_len: int = 12
    de_en_min_freq: int = 2
    de_en_emb: int = 128
    de_en_hidden: int = 64
    de_en_dropout: float = 0.3
    de_en_steps: int = 3000
    de_en_batch: int = 64
    de_en_lr: float = 2e-3
    de_en_sentences: int = 3

    # quick: 300 steps at batch 32 (the date task is learned by then: accuracy ~1.0 in development), no de-en
    # model (thousands of steps for readable maps); tiny: the test's short run.
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {},
        "quick": {"hidden": 48, "train_steps": 300, "batch_size": 32, "eval_per_format": 100, "de_en": False},
        "tiny": {
            "hidden": 32,
            "train_steps": 120,
            "batch_size": 32,
            "eval_per_format": 40,
            "vocab_sample": 2000,
            "de_en": False,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.attention not in ATTENTIONS or self.attention == "none":
            raise ValueError(
                f"attention: expected one of {ATTENTIONS[1:]} (a model with attention), got {self.attention!r}"
            )
        check_cell(self)
        check_ints(
            self,
            (
                "emb",
                "hidden",
                "train_steps",
                "batch_size",
                "eval_per_format",
                "vocab_sample",
                "de_en_max_len",
                "de_en_min_freq",
                "de_en_emb",
                "de_en_hidden",
                "de_en_steps",
                "de_en_batch",
                "de_en_sentences",
            ),
        )
        check_positive(self, ("lr", "grad_clip", "de_en_lr", "argmax_ratio", "mass_ratio"))
        check_de_en_switches(self)


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


def judge(cfg: Config, overall: dict[str, float]) -> tuple[bool, dict[str, bool]]:
    verdict = {
        "argmax_above_chance": overall["argmax"] >= cfg.argmax_ratio * overall["chance"],
        "mass_above_chance": overall["mass"] >= cfg.mass_ratio * overall["chance"],
    }
    return all(verdict.values()), verdict


# --- dates -------------------------------------------------------------------------------------------------------


def _dates(cfg: Config, device: str) -> dict[str, Any]:
    sample = date_pairs(cfg.vocab_sample, torch.Generator().manual_seed(10_007 * (cfg.seed + 1)))
    src_vocab, tgt_vocab = Vocab.build(p.src for p in sample), Vocab.build(p.tgt for p in sample)

    def get_batch(split: str, gen: torch.Generator):  # fresh dates every batch; the split is not used
        return make_batch(date_pairs(cfg.batch_size, gen), src_vocab, tgt_vocab)

    torch.manual_seed(cfg.seed)
    model_cfg = model_config(cfg.attention, cfg.hidden, len(src_vocab), len(tgt_vocab), cfg.emb, cfg.cell)
    model = Seq2Seq(model_cfg).to(device)
    fit = train_model(
        model, get_batch, steps=cfg.train_steps, lr=cfg.lr, seed=cfg.seed, device=device, grad_clip=cfg.grad_clip
    )
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


def _de_en(cfg: Config, device: str) -> dict[str, Any]:
    loaded = de_en_data(cfg)
    if isinstance(loaded, dict):
        return loaded
    data, src_vocab, tgt_vocab = loaded
    torch.manual_seed(cfg.seed)
    model_cfg = model_config(
        cfg.attention, cfg.de_en_hidden, len(src_vocab), len(tgt_vocab), cfg.de_en_emb, cfg.cell, cfg.de_en_dropout
    )
    model = Seq2Seq(model_cfg).to(device)
    fit = train_model(
        model,
        batch_sampler(data, src_vocab, tgt_vocab, cfg.de_en_batch),
        steps=cfg.de_en_steps,
        lr=cfg.de_en_lr,
        seed=cfg.seed,
        device=device,
        grad_clip=cfg.grad_clip,
    )
    ev = evaluate(model, data.test, src_vocab, tgt_vocab, beam_size=1)
    # the first test sentences of 6 to 10 tokens whose every source token is in the vocabulary
    chosen = [p for p in data.test if 6 <= len(p.src) <= 10 and Vocab.UNK not in src_vocab.encode(p.src)][
        : cfg.de_en_sentences
    ]
    viewer = []
    for pair in chosen:
        (tr,) = translate(model, src_vocab, tgt_vocab, [" ".join(pair.src)], tokenizer=str.split)
        if not tr.target_tokens:  # an empty translation has no rows to show
            continue
        title = f"{cfg.attention} de->en: {' '.join(pair.src)!r} -> {tr.text!r} (reference {' '.join(pair.tgt)!r})"
        viewer.append(viewer_payload(title, tr.target_tokens, tr.source_tokens, tr.weights, kind="cross"))
    return {
        "status": "measured",
        "note": "",
        "bleu": ev["bleu"],
        "chrf": ev["chrf"],
        "params": model.num_parameters(),
        "pairs": sum(map(len, data)),  # train + valid + test: the whole corpus
        "history": fit["history"],
        "train_seconds": fit["seconds"],
        "viewer": viewer,
    }


# --- run ---------------------------------------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    with one_thread():
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
    return {
        "held": held,
        "metrics": m,
        "setup": _setup(cfg, dates, de_en),
        "summary": _summary(cfg, dates, de_en, held),
        "data": data,
    }


def _setup(cfg: Config, dates: dict[str, Any], de_en: dict[str, Any]) -> str:
    text = (
        f"Date normalisation, character level, six source formats ({', '.join(DATE_FORMATS)}) -> YYYY-MM-DD. attnlab "
        f"Seq2Seq with {cfg.attention} attention, bidirectional {cfg.cell.upper()} encoder, embeddings {cfg.emb}, "
        f"hidden {cfg.hidden} ({dates['params']:,} parameters), vocabularies {dates['vocab'][0]} / "
        f"{dates['vocab'][1]} characters; {cfg.train_steps} steps at batch {cfg.batch_size} on fresh dates, AdamW lr "
        f"{cfg.lr:g} (5% warm-up, cosine to lr/10), clipping {cfg.grad_clip:g}, seed {cfg.seed}. Measured on "
        f"{dates['n_eval']} held-out dates ({cfg.eval_per_format} per format, {dates['n_digits']} target digits) with "
        f"the gold target fed in: the argmax agreement (the most-attended source character inside the gold field) "
        f"and the attention mass on the gold field, against uniform attention (|field| / S)."
    )
    if de_en["status"] == "measured":
        text += (
            f" German -> English maps: the same architecture with embeddings {cfg.de_en_emb}, hidden "
            f"{cfg.de_en_hidden} ({de_en['params']:,} parameters), {cfg.de_en_steps} steps at batch {cfg.de_en_batch} "
            f"on {de_en['pairs']:,} trans-de-en sentence pairs (90% train); greedy translations of test sentences."
        )
    else:
        text += f" German -> English maps: {de_en['status']} ({de_en['note']})."
    return text


def _summary(cfg: Config, dates: dict[str, Any], de_en: dict[str, Any], held: bool) -> str:
    o = dates["overall"]
    fields = "; ".join(f"{f} {s['argmax']:.2f} / {s['mass']:.2f}" for f, s in dates["by_field"].items())
    worst = min(dates["by_format"].items(), key=lambda kv: kv[1]["argmax"])
    text = (
        f"After {cfg.train_steps} steps the model normalises {dates['accuracy']:.1%} of held-out dates exactly. "
        f"Its attention agrees with the gold alignment: for {o['argmax']:.1%} of target digits the most-attended "
        f"source character lies in the gold field, and {o['mass']:.1%} of the attention mass falls on it, where "
        f"uniform attention would give {o['chance']:.1%} for both ({o['argmax'] / o['chance']:.1f}x and "
        f"{o['mass'] / o['chance']:.1f}x chance). By field (argmax / mass): {fields}. Lowest argmax agreement by "
        f"format: {worst[0]} ({worst[1]['argmax']:.2f}, e.g. {worst[1]['example']!r}). "
    )
    if held:
        text += (
            f"The claim held: both measures are at least {cfg.argmax_ratio:g}x / {cfg.mass_ratio:g}x chance, an "
            f"alignment the model was never shown."
        )
    else:
        text += (
            f"The claim, as tested ({cfg.argmax_ratio:g}x chance for the argmax agreement, {cfg.mass_ratio:g}x for "
            f"the mass), did not hold."
        )
    if de_en["status"] == "measured":
        text += (
            f" The German -> English model (test BLEU {de_en['bleu']:.1f}) is shown in the maps for a picture of a "
            f"learned word alignment; there is no gold alignment to score it against."
        )
    return text


# --- figures -----------------------------------------------------------------------------------------------------


def plot(result: dict[str, Any]) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    data = result["data"]
    figs: dict[str, Any] = {}
    maps = data["maps"]
    payloads = data["viewer"]
    n = len(maps)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.3 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        payload, info = payloads[k], maps[k]
        w = payload["layers"][0][0]  # (T, S)
        ax.imshow(w, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
        for t, gold in enumerate(info["gold"]):  # the gold field of each target digit, outlined
            if gold:
                ax.add_patch(
                    Rectangle((min(gold) - 0.5, t - 0.5), len(gold), 1, fill=False, edgecolor="tab:red", lw=1.2)
                )
        ax.set_xticks(range(len(payload["key_tokens"])), [c if c != " " else "␣" for c in payload["key_tokens"]])
        ax.set_yticks(range(len(payload["query_tokens"])), payload["query_tokens"])
        ax.tick_params(labelsize=7)
        mark = "correct" if info["correct"] else f"wrong: {info['prediction']}"
        ax.set_title(f"{info['format']} ({mark})", fontsize=9)
    fig.suptitle(f"{data['attention']} attention on dates (rows: target, columns: source; red: the gold field)")
    fig.tight_layout()
    figs["dates"] = fig

    fig2, ax2 = plt.subplots(figsize=(7.0, 3.8))
    names = list(data["by_format"])
    x = range(len(names))
    argmax = [data["by_format"][f]["argmax"] for f in names]
    mass = [data["by_format"][f]["mass"] for f in names]
    chance = [data["by_format"][f]["chance"] for f in names]
    ax2.bar([i - 0.27 for i in x], argmax, width=0.27, label="argmax in gold field", color="tab:blue")
    ax2.bar(list(x), mass, width=0.27, label="mass on gold field", color="tab:green")
    ax2.bar([i + 0.27 for i in x], chance, width=0.27, label="chance (uniform attention)", color="tab:gray")
    ax2.set_xticks(list(x), names, rotation=20, fontsize=8)
    ax2.set_ylim(0, 1.3)
    ax2.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax2.set_ylabel("fraction (target digits)")
    ax2.set_title("Agreement of the attention with the gold date alignment, by source format")
    ax2.legend(fontsize="small", loc="upper center", ncol=3)
    ax2.grid(axis="y", alpha=0.3)
    fig2.tight_layout()
    figs["agreement"] = fig2

    extra = payloads[n:]  # German -> English maps, when they were made
    if extra:
        fig3, axes3 = plt.subplots(1, len(extra), figsize=(4.6 * len(extra), 4.2), squeeze=False)
        for ax, payload in zip(axes3.flat, extra, strict=True):
            w = payload["layers"][0][0]
            ax.imshow(w, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_xticks(range(len(payload["key_tokens"])), payload["key_tokens"], rotation=60, fontsize=8)
            ax.set_yticks(range(len(payload["query_tokens"])), payload["query_tokens"], fontsize=8)
        fig3.suptitle(f"{data['attention']} attention, German -> English (rows: output, columns: source)")
        fig3.tight_layout()
        figs["de_en"] = fig3
    return figs


SPEC = ExperimentSpec(
    name="alignment",
    title="Attention as soft alignment",
    claim=(
        "Attention learns a soft alignment between source and target: without being told, the decoder puts its "
        "weight on the source positions each output comes from."
    ),
    source="Claim C3: seed 001 §3.2 (attention as soft alignment); Bahdanau et al. 2015, Figure 3",
    config_cls=Config,
    run=run,
    plot=plot,
)

__all__ = ["SPEC", "Config", "agreement", "judge", "plot", "run", "summarize"]
