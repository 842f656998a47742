r"""Experiment ``bottleneck`` (claim C2; seed 001 §3.1-3.2): the encoder-decoder's fixed vector is a bottleneck.

An RNN encoder-decoder without attention (Cho et al. 2014; Sutskever et al. 2014) reads the whole source into one
fixed vector ``c = [h_fwd ; h_bwd]`` and generates the target from it alone: whatever the length of the source,
the decoder sees the same number of numbers. Attention (Bahdanau et al. 2015) gives the decoder, at every step, a
new context ``c_i = sum_j a_ij h_j`` over all the encoder states, so that the information need not pass through one
vector. Bahdanau et al.'s Figure 2 plots BLEU against sentence length: the encoder-decoder (RNNencdec) falls as the
sentences grow, the attention model (RNNsearch-50) holds past 50 words; their Table 1 (WMT'14 En->Fr, all
sentences): RNNencdec-30 13.93, RNNsearch-30 21.50, RNNencdec-50 17.82, RNNsearch-50 26.75 BLEU.

Models (:class:`attnlab.models.seq2seq.Seq2Seq`): the same bidirectional-GRU encoder and the same decoder (GRU,
maxout deep output) for every model except the attention: ``"none"`` (the fixed vector at every step),
``"bahdanau"`` (additive, from the previous state), ``"luong-general"`` (multiplicative, from the current state,
input feeding). **Equal parameter count**: each model's hidden size is solved so that its parameter count is the
nearest to ``param_budget`` (the no-attention model gets a larger hidden size for the same count; both counts are
recorded). **Equal training budget**: the same steps, batch size, learning-rate schedule, clipping and the same
stream of training batches (:func:`attnlab.experiments.seq2seq_common.train_model`).

Part (a), synthetic: reverse (or copy) strings of ``n_symbols`` symbols, lengths drawn uniformly from
``[min_len, max_len]`` for training (fresh examples every batch), then exact-match accuracy (greedy output equal
to the reference) and per-token accuracy on a held-out set of ``eval_examples`` strings of each length in
``eval_lengths`` (all within the training range: the question is capacity, not generalisation to unseen lengths;
the longest are well past the training average). The **breakdown length** is the first evaluated length at which
the no-attention accuracy is below ``breakdown_fraction`` of its accuracy at the shortest length.

Part (b), German -> English (the example sentences of the Debian dictionary ``trans-de-en``, read by
:func:`attnlab.data.seq2seq.load_de_en`, split 90/5/5): the no-attention and the attention models at equal
parameter count and training budget, greedy decoding of the test split, sacrebleu corpus BLEU (and chrF) overall and
per source-length bucket. The sentences are short (at most ``de_en_max_len`` tokens), so the effect of length can
only be smaller than in Bahdanau et al.'s 50-word sentences. A missing corpus does not fail the experiment: this
part then reports ``held`` None with the reason.

``held``: True when every part that was measured shows the claim (see :class:`Config`), False when one does not;
None when neither part could be measured.

Measured in development (seed 0, 2 busy cores):

- quick profile (reverse, lengths 2-20, 400 steps at batch 32; none H=43 with 60,078 parameters, bahdanau H=41 with
  60,524, luong-general H=48 with 60,094): exact match at lengths 4/8/12/16/20: none 0.92/0.185/0.005/0/0
  (breakdown at 8), bahdanau 0.995/0.995/0.995/1.0/0.95, luong-general 1.0/0.995/0.96/0.955/0.835. ~38 s of CPU.
- tiny profile (lengths 2-10, 300 steps), seeds 0-2: none 0.95-1.00 at length 3, 0.00-0.01 at 10; bahdanau
  0.88-0.97 at 10.
- German -> English (budget 2M, H ~80, embeddings 128, batch 64): after 400 steps both ~0.5 BLEU; after 1500 steps
  without dropout none 0.71, bahdanau 1.44 (validation loss 3.84 / 3.62, training loss 2.5: overfitting); after
  3000 steps with dropout 0.3 none 0.65, bahdanau 1.50 BLEU (chrF 11.5 / 13.4, validation loss 3.53 / 3.35). The
  outputs are full of ``<unk>``: ~12.6k training pairs with a 5.5k-word target vocabulary are too few for these
  models to translate; attention is ahead in loss, chrF and BLEU, by less than one BLEU point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from attnlab._checks import resolve_device
from attnlab.data.seq2seq import (
    DE_EN_PATH,
    copy_pairs,
    detokenize,
    make_batch,
    reverse_pairs,
)
from attnlab.experiments.base import ExperimentConfig, ExperimentSpec
from attnlab.experiments.seq2seq_common import (
    check_attentions,
    check_cell,
    check_de_en_switches,
    check_fractions,
    check_ints,
    check_positive,
    de_en_data,
    greedy_scores,
    model_config,
    one_thread,
    solve_hidden,
    symbol_vocab,
    train_model,
)
from attnlab.models.seq2seq import Seq2Seq
from attnlab.train.seq2seq import batch_sampler, evaluate

TASKS = ("reverse", "copy")
NONE = "none"


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Defaults are the full profile.

    ``held`` for part (a) needs all of: the no-attention model learns the short strings (accuracy at the shortest
    length >= ``learn_threshold``); it breaks down (at the longest length its accuracy is below
    ``breakdown_fraction`` of that at the shortest); and every attention model learns the short strings too and
    holds (at the longest length at least ``hold_fraction`` of its accuracy at the shortest). Part (b): every
    attention model's test BLEU is above the no-attention model's, and the difference is significant: sacrebleu's
    paired approximate randomization test (10,000 trials; Riezler and Maxwell 2005) gives ``p < significance``.

    The quick profile runs part (a) only: part (b) needs thousands of steps to say anything (after 400 steps at
    batch 64, both models scored about 0.5 BLEU, greedy outputs like "he is the <unk>."), minutes that the quick
    report does not have; ``--de-en true`` turns it on.
    """

    # part (a): reverse/copy
    task: str = "reverse"
    models: tuple[str, ...] = ("none", "bahdanau", "luong-general")
    cell: str = "gru"
    emb: int = 32
    param_budget: int = 100_000
    n_symbols: int = 10
    min_len: int = 2
    max_len: int = 30
    eval_lengths: tuple[int, ...] = (5, 10, 15, 20, 25, 30)
    eval_examples: int = 500
    train_steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-3
    grad_clip: float = 1.0
    learn_threshold: float = 0.8
    breakdown_fraction: float = 0.5
    hold_fraction: float = 0.75
    # part (b): German -> English
    de_en: bool = True
    de_en_path: str = DE_EN_PATH
    de_en_models: tuple[str, ...] = ("none", "bahdanau")
    de_en_max_len: int = 12
    de_en_min_freq: int = 2
    de_en_emb: int = 128
    de_en_dropout: float = 0.3  # a small corpus (~12.6k training pairs): without dropout the models overfit
    de_en_budget: int = 2_000_000
    de_en_steps: int = 4000
    de_en_batch: int = 64
    de_en_lr: float = 2e-3
    de_en_buckets: tuple[int, ...] = (4, 6, 8, 10, 12)  # upper edges of the source-length buckets (tokens)
    significance: float = 0.05  # the p-value below which a BLEU difference counts (paired approximate randomization)

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {},
        "quick": {
            "max_len": 20,
            "eval_lengths": (4, 8, 12, 16, 20),
            "param_budget": 60_000,
            "train_steps": 400,
            "batch_size": 32,
            "eval_examples": 200,
            "de_en": False,
        },
        "tiny": {
            "models": ("none", "bahdanau"),
            "max_len": 10,
            "eval_lengths": (3, 6, 10),
            "param_budget": 30_000,
            "train_steps": 300,
            "batch_size": 32,
            "lr": 5e-3,
            "eval_examples": 100,
            "de_en": False,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {TASKS}, got {self.task!r}")
        check_attentions("models", self.models)
        check_attentions("de_en_models", self.de_en_models)
        check_cell(self)
        check_ints(
            self,
            (
                "emb",
                "param_budget",
                "n_symbols",
                "min_len",
                "max_len",
                "eval_examples",
                "train_steps",
                "batch_size",
                "de_en_max_len",
                "de_en_min_freq",
                "de_en_emb",
                "de_en_budget",
                "de_en_steps",
                "de_en_batch",
            ),
        )
        if self.max_len < self.min_len:
            raise ValueError(f"max_len: expected >= min_len={self.min_len}, got {self.max_len}")
        for name, values, lo, hi in (
            ("eval_lengths", self.eval_lengths, self.min_len, self.max_len),
            ("de_en_buckets", self.de_en_buckets, 1, self.de_en_max_len),
        ):
            if (
                not isinstance(values, tuple)
                or len(values) < 2
                or any(isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi for v in values)
                or list(values) != sorted(set(values))
            ):
                raise ValueError(f"{name}: expected at least 2 increasing integers in [{lo}, {hi}], got {values!r}")
        check_positive(self, ("lr", "grad_clip", "de_en_lr"))
        check_fractions(self, ("learn_threshold", "breakdown_fraction", "hold_fraction", "significance"))
        check_de_en_switches(self)


# --- part (a): reverse / copy ------------------------------------------------------------------------------------


def _synthetic(cfg: Config, device: str) -> dict[str, Any]:
    vocab = symbol_vocab(cfg.n_symbols)
    make = reverse_pairs if cfg.task == "reverse" else copy_pairs

    def get_batch(split: str, gen: torch.Generator):  # fresh strings every batch; the split is not used
        return make_batch(make(cfg.batch_size, cfg.min_len, cfg.max_len, cfg.n_symbols, gen), vocab, vocab)

    eval_sets = {  # the same held-out strings for every model, from their own generators
        L: make(cfg.eval_examples, L, L, cfg.n_symbols, torch.Generator().manual_seed(1_000_003 * (cfg.seed + 1) + L))
        for L in cfg.eval_lengths
    }
    out: dict[str, Any] = {}
    for name in cfg.models:
        hidden = solve_hidden(name, cfg.param_budget, len(vocab), len(vocab), cfg.emb, cfg.cell)
        torch.manual_seed(cfg.seed)
        model = Seq2Seq(model_config(name, hidden, len(vocab), len(vocab), cfg.emb, cfg.cell)).to(device)
        fit = train_model(
            model, get_batch, steps=cfg.train_steps, lr=cfg.lr, seed=cfg.seed, device=device, grad_clip=cfg.grad_clip
        )
        scores = [greedy_scores(model, eval_sets[L], vocab, vocab) for L in cfg.eval_lengths]
        out[name] = {
            "hidden": hidden,
            "params": model.num_parameters(),
            "accuracy": [s["accuracy"] for s in scores],
            "token_accuracy": [s["token_accuracy"] for s in scores],
            "history": fit["history"],
            "train_seconds": fit["seconds"],
        }
    return out


def breakdown_length(lengths: tuple[int, ...] | list[int], accuracy: list[float], fraction: float) -> int | None:
    """The first length whose accuracy is below ``fraction`` of the accuracy at the first length; None if none is."""
    for L, a in zip(lengths, accuracy, strict=True):
        if a < fraction * accuracy[0]:
            return L
    return None


def judge_synthetic(cfg: Config, runs: dict[str, Any]) -> tuple[bool | None, dict[str, bool]]:
    """Part (a)'s verdict from the measured accuracies (see :class:`Config`); None without the no-attention model or
    without an attention model."""
    attentive = [m for m in runs if m != NONE]
    if NONE not in runs or not attentive:
        return None, {}
    none = runs[NONE]["accuracy"]
    verdict = {
        "none_learns_short": none[0] >= cfg.learn_threshold,
        "none_breaks_down": none[-1] < cfg.breakdown_fraction * none[0],
    }
    for m in attentive:
        acc = runs[m]["accuracy"]
        verdict[f"{m}_learns_short"] = acc[0] >= cfg.learn_threshold
        verdict[f"{m}_holds"] = acc[-1] >= cfg.hold_fraction * acc[0]
    return all(verdict.values()), verdict


# --- part (b): German -> English ----------------------------------------------------------------------------------


def _bucket_edges(cfg: Config) -> list[tuple[int, int]]:
    """``(lo, hi)`` source-length ranges, inclusive: ``(1, b_0), (b_0 + 1, b_1), ...``."""
    lows = [1, *(b + 1 for b in cfg.de_en_buckets[:-1])]
    return list(zip(lows, cfg.de_en_buckets, strict=True))


def _de_en(cfg: Config, device: str) -> dict[str, Any]:
    loaded = de_en_data(cfg)
    if isinstance(loaded, dict):
        return loaded
    import sacrebleu

    data, src_vocab, tgt_vocab = loaded
    get_batch = batch_sampler(data, src_vocab, tgt_vocab, cfg.de_en_batch)
    buckets = _bucket_edges(cfg)
    in_bucket = [[i for i, p in enumerate(data.test) if lo <= len(p.src) <= hi] for lo, hi in buckets]
    references = [detokenize(p.tgt) for p in data.test]
    models: dict[str, Any] = {}
    hypotheses: dict[str, list[str]] = {}
    for name in cfg.de_en_models:
        hidden = solve_hidden(name, cfg.de_en_budget, len(src_vocab), len(tgt_vocab), cfg.de_en_emb, cfg.cell)
        torch.manual_seed(cfg.seed)
        mc = model_config(name, hidden, len(src_vocab), len(tgt_vocab), cfg.de_en_emb, cfg.cell, cfg.de_en_dropout)
        model = Seq2Seq(mc).to(device)
        fit = train_model(
            model,
            get_batch,
            steps=cfg.de_en_steps,
            lr=cfg.de_en_lr,
            seed=cfg.seed,
            device=device,
            grad_clip=cfg.grad_clip,
        )
        ev = evaluate(model, data.test, src_vocab, tgt_vocab, beam_size=1)
        hyps = hypotheses[name] = ev["hypotheses"]
        by_bucket = [
            sacrebleu.metrics.BLEU().corpus_score([hyps[i] for i in idx], [[references[i] for i in idx]]).score
            if idx
            else None
            for idx in in_bucket
        ]
        models[name] = {
            "hidden": hidden,
            "params": model.num_parameters(),
            "bleu": ev["bleu"],
            "chrf": ev["chrf"],
            "bleu_by_bucket": by_bucket,
            "history": fit["history"],
            "train_seconds": fit["seconds"],
            "examples": [
                {"source": detokenize(data.test[i].src), "reference": references[i], "hypothesis": hyps[i]}
                for i in range(min(3, len(data.test)))
            ],
            "p_value": None,
        }
    if NONE in hypotheses and len(hypotheses) > 1:
        for name, p in paired_p_values(hypotheses, references).items():
            models[name]["p_value"] = p
    return {
        "status": "measured",
        "note": "",
        "pairs": sum(map(len, data)),  # train + valid + test: the whole corpus
        "split": [len(data.train), len(data.valid), len(data.test)],
        "vocab": [len(src_vocab), len(tgt_vocab)],
        "buckets": [f"{lo}-{hi}" for lo, hi in buckets],
        "bucket_sizes": [len(idx) for idx in in_bucket],
        "bleu_signature": ev["bleu_signature"],
        "models": models,
    }


def judge_de_en(cfg: Config, de_en: dict[str, Any]) -> tuple[bool | None, dict[str, bool]]:
    """Part (b)'s verdict: every attention model's BLEU above the no-attention model's with ``p_value <
    significance``; None when the part was not measured or lacks either kind of model."""
    if de_en["status"] != "measured":
        return None, {}
    models = de_en["models"]
    attentive = [m for m in models if m != NONE]
    if NONE not in models or not attentive:
        return None, {}
    base = models[NONE]["bleu"]
    verdict = {
        f"{m}_bleu_above_none": models[m]["bleu"] > base and models[m]["p_value"] < cfg.significance for m in attentive
    }
    return all(verdict.values()), verdict


def paired_p_values(hypotheses: dict[str, list[str]], references: list[str]) -> dict[str, float]:
    """Two-sided p-value of each system's BLEU difference from the no-attention baseline, by sacrebleu's paired
    approximate randomization test (10,000 trials, its fixed seed): the chance that swapping the two systems' outputs
    sentence by sentence at random gives a difference at least as large."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    others = [m for m in hypotheses if m != NONE]
    systems = [(NONE, hypotheses[NONE]), *((m, hypotheses[m]) for m in others)]
    _, results = PairedTest(systems, {"BLEU": BLEU()}, [references], test_type="ar", n_samples=10_000)()
    return {m: float(r.p_value) for m, r in zip(others, results["BLEU"][1:], strict=True)}


# --- run ---------------------------------------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    with one_thread():
        synthetic = _synthetic(cfg, device)
        de_en = _de_en(cfg, device)
    held_a, verdict_a = judge_synthetic(cfg, synthetic)
    held_b, verdict_b = judge_de_en(cfg, de_en)
    measured = [h for h in (held_a, held_b) if h is not None]
    held = all(measured) if measured else None
    breakdown = (
        breakdown_length(cfg.eval_lengths, synthetic[NONE]["accuracy"], cfg.breakdown_fraction)
        if NONE in synthetic
        else None
    )

    m: dict[str, Any] = {"held/synthetic": held_a, "held/de-en": held_b, "breakdown_length": breakdown}
    for name, r in synthetic.items():
        for L, a, t in zip(cfg.eval_lengths, r["accuracy"], r["token_accuracy"], strict=True):
            m[f"acc/{name}/len={L}"] = round(a, 4)
            m[f"token_acc/{name}/len={L}"] = round(t, 4)
        m[f"params/{name}"] = r["params"]
        m[f"hidden/{name}"] = r["hidden"]
        m[f"train_seconds/{name}"] = r["train_seconds"]
    counts = [r["params"] for r in synthetic.values()]
    m["params_spread"] = round((max(counts) - min(counts)) / min(counts), 4)
    if de_en["status"] == "measured":
        for name, r in de_en["models"].items():
            m[f"de-en/bleu/{name}"] = round(r["bleu"], 2)
            m[f"de-en/chrf/{name}"] = round(r["chrf"], 2)
            if r["p_value"] is not None:
                m[f"de-en/p_value/{name}"] = float(f"{r['p_value']:.4g}")
            for label, b in zip(de_en["buckets"], r["bleu_by_bucket"], strict=True):
                m[f"de-en/bleu/{name}/len={label}"] = None if b is None else round(b, 2)
            m[f"de-en/params/{name}"] = r["params"]
            m[f"de-en/hidden/{name}"] = r["hidden"]
        de_counts = [r["params"] for r in de_en["models"].values()]
        m["de-en/params_spread"] = round((max(de_counts) - min(de_counts)) / min(de_counts), 4)
    else:
        m["de-en/status"] = de_en["status"]

    data = {
        "task": cfg.task,
        "lengths": list(cfg.eval_lengths),
        "train_range": [cfg.min_len, cfg.max_len],
        "synthetic": synthetic,
        "breakdown_length": breakdown,
        "breakdown_fraction": cfg.breakdown_fraction,
        "de_en": de_en,
        "verdict": {"synthetic": verdict_a, "de_en": verdict_b},
    }
    return {
        "held": held,
        "metrics": m,
        "setup": _setup(cfg, synthetic, de_en),
        "summary": _summary(cfg, synthetic, de_en, breakdown, held_a, held_b, verdict_a, held),
        "data": data,
    }


def _setup(cfg: Config, synthetic: dict[str, Any], de_en: dict[str, Any]) -> str:
    sizes = ", ".join(f"{n} H={r['hidden']} ({r['params']:,} parameters)" for n, r in synthetic.items())
    text = (
        f"(a) {cfg.task.capitalize()} strings of {cfg.n_symbols} symbols, training lengths uniform in "
        f"[{cfg.min_len}, {cfg.max_len}] (fresh strings every batch). attnlab Seq2Seq, bidirectional {cfg.cell.upper()}"
        f" encoder, embeddings {cfg.emb}, at equal parameter count (budget {cfg.param_budget:,}): {sizes}. Equal "
        f"training budget: {cfg.train_steps} steps at batch {cfg.batch_size}, AdamW lr {cfg.lr:g} (5% warm-up, cosine "
        f"to lr/10), clipping {cfg.grad_clip:g}, the same batches for every model (seed {cfg.seed}). Greedy decoding "
        f"of {cfg.eval_examples} held-out strings per length {list(cfg.eval_lengths)}: exact-match and per-token "
        f"accuracy."
    )
    if de_en["status"] == "measured":
        sizes = ", ".join(f"{n} H={r['hidden']} ({r['params']:,} parameters)" for n, r in de_en["models"].items())
        train, valid, test = de_en["split"]
        text += (
            f" (b) German -> English: {de_en['pairs']:,} sentence pairs of at most {cfg.de_en_max_len} tokens from "
            f"trans-de-en ({train:,} train / {valid:,} valid / {test:,} test), vocabularies {de_en['vocab'][0]:,} / "
            f"{de_en['vocab'][1]:,} (tokens seen >= {cfg.de_en_min_freq} times), embeddings {cfg.de_en_emb}, equal "
            f"parameters (budget {cfg.de_en_budget:,}): {sizes}; {cfg.de_en_steps} steps at batch {cfg.de_en_batch}, "
            f"lr {cfg.de_en_lr:g}; greedy decoding of the test split, sacrebleu BLEU ({de_en['bleu_signature']}) "
            f"overall and per source-length bucket {de_en['buckets']}."
        )
    else:
        text += f" (b) German -> English: {de_en['status']} ({de_en['note']})."
    return text


def _summary(
    cfg: Config,
    synthetic: dict[str, Any],
    de_en: dict[str, Any],
    breakdown: int | None,
    held_a: bool | None,
    held_b: bool | None,
    verdict_a: dict[str, bool],
    held: bool | None,
) -> str:
    L0, L1 = cfg.eval_lengths[0], cfg.eval_lengths[-1]
    parts = [f"{n} {r['accuracy'][0]:.2f} -> {r['accuracy'][-1]:.2f}" for n, r in synthetic.items()]
    text = f"(a) Exact-match accuracy at length {L0} -> {L1}: " + "; ".join(parts) + ". "
    if NONE in synthetic:
        text += (
            f"The no-attention model breaks down (below {cfg.breakdown_fraction:g} of its short-string accuracy) at "
            f"length {breakdown}. "
            if breakdown is not None
            else f"The no-attention model does not fall below {cfg.breakdown_fraction:g} of its short-string accuracy "
            f"up to length {L1}. "
        )
    if held_a is None:
        text += "Not measurable without both the no-attention model and an attention model. "
    elif held_a:
        text += "Part (a) shows the claim: without attention accuracy falls with length, with attention it holds. "
    else:
        failed = [k for k, v in verdict_a.items() if not v]
        text += f"Part (a) does not show the claim as tested: {', '.join(failed)} failed. "
    if de_en["status"] == "measured":
        models = de_en["models"]
        bleu = "; ".join(
            f"{n} {r['bleu']:.2f} (chrF {r['chrf']:.1f}"
            + ("" if r["p_value"] is None else f", p = {r['p_value']:.3g}")
            + ")"
            for n, r in models.items()
        )
        text += f"(b) German -> English test BLEU: {bleu} (p: paired approximate randomization against none). "
        for n, r in models.items():
            cells = ", ".join(
                f"{label}: {'-' if b is None else f'{b:.1f}'}"
                for label, b in zip(de_en["buckets"], r["bleu_by_bucket"], strict=True)
            )
            text += f"{n} by source length: {cells}. "
        if held_b is None:
            text += "Part (b) needs both the no-attention model and an attention model. "
        elif held_b:
            text += f"Attention is above the no-attention model in BLEU, significantly (p < {cfg.significance:g}). "
        else:
            text += (
                f"Attention is not significantly (p < {cfg.significance:g}) above the no-attention model in BLEU: "
                "part (b) does not hold. "
            )
    else:
        text += f"(b) German -> English not measured: {de_en['note']}. "
    if held is None:
        text += "The claim could not be measured."
    else:
        text += "The claim held in every part measured." if held else "The claim did not hold in every part measured."
    return text


# --- figures -----------------------------------------------------------------------------------------------------

COLORS = {"none": "tab:red", "bahdanau": "tab:blue", "luong-general": "tab:green", "luong-dot": "tab:olive"}
MARKERS = {"none": "o", "bahdanau": "s", "luong-general": "^"}


def plot(result: dict[str, Any]) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = result["data"]
    lengths = data["lengths"]
    figs: dict[str, Any] = {}
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.0), sharey=True)
    for name, r in data["synthetic"].items():
        style = {"color": COLORS.get(name), "marker": MARKERS.get(name, "D")}
        label = f"{name} (H={r['hidden']}, {r['params']:,} params)"
        axes[0].plot(lengths, r["accuracy"], label=label, **style)
        axes[1].plot(lengths, r["token_accuracy"], label=label, **style)
    for ax, what in zip(axes, ("exact-match accuracy", "per-token accuracy"), strict=True):
        if data["breakdown_length"] is not None:
            ax.axvline(data["breakdown_length"], color="tab:red", ls=":", alpha=0.7, label="no-attention breakdown")
        ax.axvline(sum(data["train_range"]) / 2, color="gray", ls="--", alpha=0.6, label="mean training length")
        ax.set_xlabel("source length")
        ax.set_title(what)
        ax.set_ylim(-0.02, 1.03)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (greedy, held-out)")
    axes[0].legend(fontsize="small", loc="center right")
    fig.suptitle(f"{data['task'].capitalize()} task at equal parameters and training budget")
    fig.tight_layout()
    figs["accuracy"] = fig

    de_en = data["de_en"]
    if de_en["status"] == "measured":
        fig2, ax2 = plt.subplots(figsize=(6.4, 4.0))
        x = list(range(len(de_en["buckets"])))
        for name, r in de_en["models"].items():
            ys = [math.nan if b is None else b for b in r["bleu_by_bucket"]]
            ax2.plot(x, ys, marker=MARKERS.get(name, "D"), color=COLORS.get(name), label=f"{name} ({r['bleu']:.1f})")
        ax2.set_xticks(x, [f"{b}\n(n={n})" for b, n in zip(de_en["buckets"], de_en["bucket_sizes"], strict=True)])
        ax2.set_xlabel("source length (tokens)")
        ax2.set_ylabel("test BLEU (sacrebleu)")
        ax2.set_title("German -> English: BLEU by source length (overall in the legend)")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize="small")
        fig2.tight_layout()
        figs["bleu"] = fig2

    fig3, ax3 = plt.subplots(figsize=(6.4, 3.6))
    for name, r in data["synthetic"].items():
        h = r["history"]
        ax3.plot([p["iter"] for p in h], [p["train"] for p in h], color=COLORS.get(name), label=f"{name} (a)")
    if de_en["status"] == "measured":
        for name, r in de_en["models"].items():
            h = r["history"]
            ax3.plot(
                [p["iter"] for p in h], [p["val"] for p in h], color=COLORS.get(name), ls="--", label=f"{name} (b)"
            )
    ax3.set_xlabel("training step")
    ax3.set_ylabel("loss (a: train, b: validation)")
    ax3.set_yscale("log")
    ax3.grid(alpha=0.3)
    ax3.legend(fontsize="small")
    fig3.tight_layout()
    figs["training"] = fig3
    return figs


SPEC = ExperimentSpec(
    name="bottleneck",
    title="The fixed-vector bottleneck: quality against source length, with and without attention",
    claim=(
        "The encoder-decoder's fixed vector is a bottleneck: without attention, quality falls as the source grows; "
        "attention, which gives the decoder every encoder state at every step, removes it (Bahdanau et al. 2015, "
        "Figure 2)."
    ),
    source="Claim C2: seed 001 §3.1 (the information bottleneck problem) and §3.2; Bahdanau et al. 2015, Figure 2",
    config_cls=Config,
    run=run,
    plot=plot,
)

__all__ = ["SPEC", "Config", "breakdown_length", "judge_de_en", "judge_synthetic", "plot", "run"]
