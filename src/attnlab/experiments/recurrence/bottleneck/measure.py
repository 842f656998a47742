"""The measuring of ``bottleneck``: (a) accuracy against source length on reverse/copy, (b) German -> English BLEU
by source length, each with and without attention at equal parameters and training budget."""

from __future__ import annotations

from typing import Any

import torch

from attnlab._checks import resolve_device
from attnlab.data.seq2seq import copy_pairs, detokenize, make_batch, reverse_pairs
from attnlab.experiments.seq2seq import build, de_en_part, greedy_scores, solve_hidden, symbol_vocab
from attnlab.experiments.training import one_thread, train
from attnlab.train.seq2seq import batch_sampler, evaluate

# the report may run it beside another experiment: trains on one thread; it measures accuracy and BLEU, not time
SHARES_CORES = True

NONE = "none"


def _synthetic(cfg: Any, device: str) -> dict[str, Any]:
    vocab = symbol_vocab(cfg.n_symbols)
    sizes = (len(vocab), len(vocab))
    make = reverse_pairs if cfg.task == "reverse" else copy_pairs

    def get_batch(split: str, gen: torch.Generator):  # fresh strings every batch; the split is not used
        return make_batch(make(cfg.batch_size, cfg.min_len, cfg.max_len, cfg.n_symbols, gen), vocab, vocab)

    eval_sets = {  # the same held-out strings for every model, from their own generators
        L: make(cfg.eval_examples, L, L, cfg.n_symbols, torch.Generator().manual_seed(1_000_003 * (cfg.seed + 1) + L))
        for L in cfg.eval_lengths
    }
    out: dict[str, Any] = {}
    for name in cfg.models:
        hidden = solve_hidden(name, cfg.param_budget, sizes, cfg.emb, cfg.cell)
        torch.manual_seed(cfg.seed)
        model = build(name, hidden, sizes, cfg.emb, cfg.cell)
        fit = train(model, cfg.train, get_batch, seed=cfg.seed, device=device)
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


def judge_synthetic(cfg: Any, runs: dict[str, Any]) -> tuple[bool | None, dict[str, bool]]:
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


def _de_en(cfg: Any, device: str) -> dict[str, Any]:
    return de_en_part(cfg.de_en, cfg.seed, lambda data, src, tgt: _de_en_bleu(cfg, device, data, src, tgt))


def _de_en_bleu(cfg: Any, device: str, data: Any, src_vocab: Any, tgt_vocab: Any) -> dict[str, Any]:
    """Part (b): every model's test BLEU, overall and per source-length bucket, and its p-value against none."""
    import sacrebleu

    part = cfg.de_en
    sizes = (len(src_vocab), len(tgt_vocab))
    buckets = list(zip([1, *(b + 1 for b in part.buckets[:-1])], part.buckets, strict=True))  # (lo, hi) inclusive
    in_bucket = [[i for i, p in enumerate(data.test) if lo <= len(p.src) <= hi] for lo, hi in buckets]
    references = [detokenize(p.tgt) for p in data.test]
    models: dict[str, Any] = {}
    hypotheses: dict[str, list[str]] = {}
    for name in part.models:
        hidden = solve_hidden(name, part.budget, sizes, part.emb, cfg.cell)
        torch.manual_seed(cfg.seed)
        model = build(name, hidden, sizes, part.emb, cfg.cell, part.dropout)
        get_batch = batch_sampler(data, src_vocab, tgt_vocab, part.batch_size)
        fit = train(model, part.train, get_batch, seed=cfg.seed, device=device)
        ev = evaluate(model, data.test, src_vocab, tgt_vocab, beam_size=1)
        hyps = hypotheses[name] = ev["hypotheses"]
        models[name] = {
            "hidden": hidden,
            "params": model.num_parameters(),
            "bleu": ev["bleu"],
            "chrf": ev["chrf"],
            "bleu_by_bucket": [
                sacrebleu.metrics.BLEU().corpus_score([hyps[i] for i in idx], [[references[i] for i in idx]]).score
                if idx
                else None
                for idx in in_bucket
            ],
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
        "pairs": sum(map(len, data)),  # train + valid + test: the whole corpus
        "split": [len(data.train), len(data.valid), len(data.test)],
        "vocab": list(sizes),
        "buckets": [f"{lo}-{hi}" for lo, hi in buckets],
        "bucket_sizes": [len(idx) for idx in in_bucket],
        "bleu_signature": ev["bleu_signature"],
        "models": models,
    }


def judge_de_en(cfg: Any, de_en: dict[str, Any]) -> tuple[bool | None, dict[str, bool]]:
    """Part (b)'s verdict: every attention model's BLEU above the no-attention model's with ``p_value <
    significance``; None when the part was not measured or lacks either kind of model."""
    if de_en["status"] != "measured":
        return None, {}
    models = de_en["models"]
    attentive = [m for m in models if m != NONE]
    if NONE not in models or not attentive:
        return None, {}
    base = models[NONE]["bleu"]
    significance = cfg.de_en.significance
    verdict = {
        f"{m}_bleu_above_none": models[m]["bleu"] > base and models[m]["p_value"] < significance for m in attentive
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


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    with one_thread(device):
        synthetic = _synthetic(cfg, device)
        de_en = _de_en(cfg, device)
    held_a, verdict_a = judge_synthetic(cfg, synthetic)
    held_b, verdict_b = judge_de_en(cfg, de_en)
    measured = [h for h in (held_a, held_b) if h is not None]
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
        for key in ("params", "hidden", "train_seconds"):
            m[f"{key}/{name}"] = r[key]
    counts = [r["params"] for r in synthetic.values()]
    m["params_spread"] = round((max(counts) - min(counts)) / min(counts), 4)
    if de_en["status"] == "measured":
        for name, r in de_en["models"].items():
            m[f"de-en/bleu/{name}"], m[f"de-en/chrf/{name}"] = round(r["bleu"], 2), round(r["chrf"], 2)
            if r["p_value"] is not None:
                m[f"de-en/p_value/{name}"] = float(f"{r['p_value']:.4g}")
            for label, b in zip(de_en["buckets"], r["bleu_by_bucket"], strict=True):
                m[f"de-en/bleu/{name}/len={label}"] = None if b is None else round(b, 2)
            m[f"de-en/params/{name}"], m[f"de-en/hidden/{name}"] = r["params"], r["hidden"]
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
    return {"held": all(measured) if measured else None, "metrics": m, "device": device, "data": data}


__all__ = ["NONE", "breakdown_length", "judge_de_en", "judge_synthetic", "paired_p_values", "run"]
