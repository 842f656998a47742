"""Experiment ``bottleneck``: the tiny profile measures the claim, the equal-parameter rule, the verdicts, the
German -> English part on a small corpus file (and a missing one), the figures from the saved JSON.

The tiny profile (reverse, lengths 2-10, 300 steps, 30k parameters each) asserts what held over the seed/thread
sweep (see ``test_tiny_no_attention_falls_with_length_attention_holds``).
"""

import json

import matplotlib
import pytest
import torch

from attnlab.data.seq2seq import load_de_en, split_pairs
from attnlab.experiments.recurrence.bottleneck import SPEC, Config
from attnlab.experiments.recurrence.bottleneck.measure import (
    _de_en,
    breakdown_length,
    judge_de_en,
    judge_synthetic,
    paired_p_values,
)
from attnlab.experiments.seq2seq import build, solve_hidden, symbol_vocab

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_thread")
EXPERIMENT = "bottleneck"


def test_tiny_no_attention_falls_with_length_attention_holds(tiny):
    """Swept over seeds 0-19 (31 runs: seeds 0-10 at 1 and 2 threads, 11-19 at 1; the models run on one thread,
    and the 1- and 2-thread runs agreed to the last digit): exact match at length 3, no attention 0.95-1.00 and
    Bahdanau 0.99-1.00 (asserted >= 0.8); no attention at length 10 0.00-0.01 of its length-3 accuracy (asserted
    < 0.5); Bahdanau minus no attention at length 10 0.67-0.99 (asserted >= 0.5); per-token accuracy never below
    exact match. The verdict held in 30 of 31 runs: in seed 17 Bahdanau's accuracy at length 10 was 0.67 of its
    1.00 at length 3, below the verdict's 0.75, so neither that ratio nor ``held`` is asserted for one seed."""
    acc = {m: r["accuracy"] for m, r in tiny["data"]["synthetic"].items()}
    assert tiny["data"]["lengths"] == [3, 6, 10]
    assert acc["none"][0] >= 0.8 and acc["bahdanau"][0] >= 0.8  # both learn the short strings
    assert acc["none"][-1] < 0.5 * acc["none"][0]  # the fixed vector breaks down
    assert acc["bahdanau"][-1] >= acc["none"][-1] + 0.5  # attention keeps what the fixed vector loses
    assert tiny["data"]["breakdown_length"] == breakdown_length([3, 6, 10], acc["none"], 0.5) is not None
    # per-token accuracy: a string that is not exactly right still has most tokens right with attention
    tok = tiny["data"]["synthetic"]["bahdanau"]["token_accuracy"]
    assert all(t >= a for t, a in zip(tok, acc["bahdanau"], strict=True))
    verdict = judge_synthetic(Config.for_profile("tiny"), tiny["data"]["synthetic"])[0]
    assert tiny["held"] is tiny["metrics"]["held/synthetic"] is verdict
    assert tiny["metrics"]["held/de-en"] is None and tiny["data"]["de_en"]["status"] == "skipped"


def test_equal_parameter_count(tiny):
    syn = tiny["data"]["synthetic"]
    counts = [r["params"] for r in syn.values()]
    assert max(counts) <= 1.05 * min(counts)
    assert tiny["metrics"]["params_spread"] <= 0.05
    assert syn["none"]["hidden"] > syn["bahdanau"]["hidden"]  # the attention's parameters go to the fixed vector


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong-general"])
def test_solved_hidden_size_is_the_nearest_to_the_budget(attention):
    V = len(symbol_vocab(10))
    budget = 60_000
    H = solve_hidden(attention, budget, (V, V), 32, "gru")
    best = abs(build(attention, H, (V, V), 32, "gru").num_parameters() - budget)
    for other in (H - 1, H + 1):
        assert best <= abs(build(attention, other, (V, V), 32, "gru").num_parameters() - budget)


def test_breakdown_length_known_answers():
    assert breakdown_length([4, 8, 12], [1.0, 0.6, 0.4], 0.5) == 12
    assert breakdown_length([4, 8, 12], [0.8, 0.39, 0.5], 0.5) == 8
    assert breakdown_length([4, 8, 12], [1.0, 0.9, 0.8], 0.5) is None


def _runs(none, *attention):
    runs = {"none": {"accuracy": none}}
    for k, a in enumerate(attention):
        runs[("bahdanau", "luong-general")[k]] = {"accuracy": a}
    return runs


@pytest.mark.parametrize(
    ("runs", "held"),
    [
        (_runs([1.0, 0.4, 0.0], [1.0, 1.0, 0.9], [1.0, 0.9, 0.8]), True),
        (_runs([1.0, 0.8, 0.6], [1.0, 1.0, 0.9]), False),  # no breakdown
        (_runs([0.5, 0.1, 0.0], [1.0, 1.0, 0.9]), False),  # the no-attention model never learned
        (_runs([1.0, 0.4, 0.0], [1.0, 0.7, 0.5]), False),  # attention falls too
        (_runs([1.0, 0.4, 0.0], [1.0, 1.0, 0.9], [0.3, 0.3, 0.3]), False),  # one attention model never learned
    ],
)
def test_synthetic_verdict(runs, held):
    got, verdict = judge_synthetic(Config.for_profile("tiny"), runs)
    assert got is held and got is all(verdict.values())


def test_synthetic_verdict_needs_both_kinds():
    assert judge_synthetic(Config(), {"none": {"accuracy": [1.0, 0.0]}})[0] is None
    assert judge_synthetic(Config(), {"bahdanau": {"accuracy": [1.0, 1.0]}})[0] is None


def test_de_en_verdict():
    cfg = Config.for_profile("full", **{"de_en.significance": 0.05})
    models = {"none": {"bleu": 5.0, "p_value": None}, "bahdanau": {"bleu": 6.5, "p_value": 0.01}}
    measured = {"status": "measured", "models": models}
    assert judge_de_en(cfg, measured) == (True, {"bahdanau_bleu_above_none": True})
    models["bahdanau"]["p_value"] = 0.2  # above, but not significantly
    assert judge_de_en(cfg, measured)[0] is False
    models["bahdanau"].update(bleu=4.0, p_value=0.01)  # significantly below
    assert judge_de_en(cfg, measured)[0] is False
    assert judge_de_en(cfg, {"status": "missing", "note": "x"}) == (None, {})


def _corrupt(refs, rate, seed):
    """Each word replaced by "x" with probability ``rate``."""
    gen = torch.Generator().manual_seed(seed)
    return [" ".join("x" if float(torch.rand(1, generator=gen)) < rate else w for w in r.split()) for r in refs]


def test_paired_p_values_separate_a_real_difference_from_noise():
    refs = [f"the {w} is very big {k}." for k in range(100) for w in ("dog", "cat", "bird")]
    p_noise = paired_p_values({"none": _corrupt(refs, 0.2, 1), "bahdanau": _corrupt(refs, 0.2, 2)}, refs)
    p_real = paired_p_values({"none": _corrupt(refs, 0.4, 1), "bahdanau": _corrupt(refs, 0.2, 2)}, refs)
    assert p_noise["bahdanau"] > 0.05 and p_real["bahdanau"] < 0.01


def test_missing_corpus_is_reported_not_raised(tmp_path):
    cfg = Config.for_profile("tiny", **{"de_en.enabled": True, "de_en.path": str(tmp_path / "no-such-file")})
    part = _de_en(cfg, "cpu")
    assert part["status"] == "missing" and "apt-get install trans-de-en" in part["note"]
    assert judge_de_en(cfg, part)[0] is None


def _ding_file(path, n=80):
    """A small dictionary in trans-de-en's format: one example sentence pair per line."""
    words = [("Hund", "dog"), ("Katze", "cat"), ("Vogel", "bird"), ("Fisch", "fish")]
    lines = ["# a test dictionary"]
    for k in range(n):
        de, en = words[k % 4]
        extra_de, extra_en = " sehr" * (k % 7), " very" * (k % 7)
        lines.append(f"Der {de} ist{extra_de} gross {k}. :: The {en} is{extra_en} big {k}.")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_de_en_part_on_a_small_corpus(tmp_path):
    corpus = tmp_path / "de-en"
    _ding_file(corpus)
    part = {"enabled": True, "path": str(corpus), "min_freq": 1, "emb": 8, "budget": 4000, "train.max_iters": 3,
            "batch_size": 8, "max_len": 12, "buckets": (6, 9, 12)}  # fmt: skip
    cfg = Config.for_profile("tiny", **{f"de_en.{k}": v for k, v in part.items()})
    part = _de_en(cfg, "cpu")
    assert part["status"] == "measured" and part["pairs"] == 80 and sum(part["split"]) == 80
    test_lengths = [len(p.src) for p in split_pairs(load_de_en(corpus, 12), seed=cfg.seed)[2]]  # the same split
    assert part["bucket_sizes"] == [sum(lo <= n <= hi for n in test_lengths) for lo, hi in ((1, 6), (7, 9), (10, 12))]
    counts = [r["params"] for r in part["models"].values()]
    assert max(counts) <= 1.05 * min(counts)
    for r in part["models"].values():
        assert 0 <= r["bleu"] <= 100 and len(r["bleu_by_bucket"]) == 3
        assert all((b is None) == (n == 0) for b, n in zip(r["bleu_by_bucket"], part["bucket_sizes"], strict=True))
    assert part["models"]["none"]["p_value"] is None and 0 < part["models"]["bahdanau"]["p_value"] <= 1
    held, verdict = judge_de_en(cfg, part)
    assert held is all(verdict.values())


def test_plot_from_saved_json(tiny):
    saved = json.loads(json.dumps(tiny, allow_nan=False))
    figs = SPEC.plot(saved)
    assert set(figs) == {"accuracy", "training"}
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs.values())
    lines = figs["accuracy"].axes[0].lines  # two models, the breakdown and the mean training length
    assert len(lines) == 4
    assert list(lines[0].get_ydata()) == saved["data"]["synthetic"]["none"]["accuracy"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("task", "sort"),
        ("models", ("none", "none")),
        ("models", ("none", "transformer")),
        ("eval_lengths", (5,)),
        ("eval_lengths", (10, 5)),
        ("eval_lengths", (5, 40)),  # beyond the training lengths
        ("max_len", 1),
        ("train.lr", 0.0),
        ("hold_fraction", 1.5),
        ("de_en.buckets", (4, 20)),
        ("de_en.significance", 0.0),
        ("param_budget", 0),
    ],
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field.split(".")[-1]):
        Config.for_profile("full", **{field: value})
