"""Experiment ``alignment``: the agreement measures on known answers, the tiny run above chance, the viewer payloads,
the figures from the saved JSON, a missing corpus.

The tiny profile (120 steps) is too short to normalise dates (exact-match accuracy ~0), yet its attention already
agrees with the gold fields well above chance (argmax 0.65, mass 0.56 against chance 0.25 on seed 0); the quick
profile (250 steps) normalised 99.8% of the held-out dates with argmax agreement 0.98 and mass 0.88 (2026-12-04).
"""

import json

import matplotlib
import pytest
import torch

from attnlab.data.seq2seq import DATE_FORMATS, date_pairs
from attnlab.experiments.attention.alignment import SPEC, Config
from attnlab.experiments.attention.alignment.measure import _de_en, agreement, judge, summarize

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_thread")
EXPERIMENT = "alignment"


def _dates(n=5):
    pairs = date_pairs(n, torch.Generator().manual_seed(3))
    S = max(len(p.src) for p in pairs)
    return pairs, [len(p.src) for p in pairs], S


def test_agreement_of_the_gold_alignment_itself_is_perfect():
    pairs, lengths, S = _dates()
    weights = torch.zeros(len(pairs), 11, S)
    for i, p in enumerate(pairs):
        for t, gold in enumerate(p.align):
            if gold:
                weights[i, t, gold] = 1.0 / len(gold)  # all the mass spread over the gold field
    s = summarize(agreement(weights, pairs, lengths))
    assert s["argmax"] == 1.0 and s["mass"] == pytest.approx(1.0)
    assert len(agreement(weights, pairs, lengths)["inside"]) == 8 * len(pairs)  # 8 digits per date, no '-'


def test_uniform_attention_scores_chance_and_the_wrong_field_scores_zero():
    pairs, lengths, S = _dates()
    uniform = torch.zeros(len(pairs), 11, S)
    for i, n in enumerate(lengths):
        uniform[i, :, :n] = 1.0 / n  # padded positions get no weight
    digits = agreement(uniform, pairs, lengths)
    s = summarize(digits)
    assert s["mass"] == pytest.approx(s["chance"])
    want = [len(g) / n for p, n in zip(pairs, lengths, strict=True) for g in p.align if g]
    assert s["chance"] == pytest.approx(sum(want) / len(want))
    year_to_day = torch.zeros(len(pairs), 11, S)
    for i, p in enumerate(pairs):
        for t in range(10):
            year_to_day[i, t, p.align[8][0]] = 1.0  # every digit looks at the day's first character
    digits = agreement(year_to_day, pairs, lengths)
    year = [inside for inside, f in zip(digits["inside"], digits["field"], strict=True) if f == "year"]
    day = [inside for inside, f in zip(digits["inside"], digits["field"], strict=True) if f == "day"]
    assert not any(year) and all(day)


def test_tiny_attention_agrees_with_the_gold_alignment_above_chance(tiny):
    """Swept over seeds 0-19 (22 runs: seeds 0-1 at 1 and 2 threads, identical; the models run on one thread): argmax
    agreement 2.11-2.82x chance and mass 2.24-2.38x chance (asserted >= 2x, the verdict's threshold, below the whole
    spread); the year's argmax agreement 0.999-1.000 (asserted >= 0.9); chance 0.249-0.250. Held in all 22."""
    o, m = tiny["data"]["overall"], tiny["metrics"]
    assert 0.15 < o["chance"] < 0.35  # |field| / S for these formats
    assert o["argmax"] >= 2 * o["chance"] and o["mass"] >= 2 * o["chance"]
    assert m["argmax_over_chance"] == pytest.approx(o["argmax"] / o["chance"], rel=1e-3)
    assert tiny["data"]["by_field"]["year"]["argmax"] >= 0.9  # the year is found first
    assert set(tiny["data"]["by_format"]) == set(DATE_FORMATS)
    assert tiny["held"] is judge(Config.for_profile("tiny"), o)[0] is True


def test_viewer_payloads(tiny):
    viewer = tiny["data"]["viewer"]
    assert len(viewer) == len(DATE_FORMATS) == len(tiny["data"]["maps"])
    for payload, info in zip(viewer, tiny["data"]["maps"], strict=True):
        assert payload["kind"] == "cross"
        assert len(payload["query_tokens"]) == 11 and payload["query_tokens"][-1] == "<eos>"  # YYYY-MM-DD + EOS
        assert payload["query_tokens"][4] == "-" and info["gold"][4] == []
        w = torch.tensor(payload["layers"])  # (1, 1, T, S)
        assert w.shape == (1, 1, 11, len(payload["key_tokens"]))
        torch.testing.assert_close(w.sum(-1), torch.ones(1, 1, 11), atol=1e-3, rtol=0)  # rows are softmaxes
        assert all(0 <= j < len(payload["key_tokens"]) for gold in info["gold"] for j in gold)


def test_judge():
    cfg = Config()
    assert judge(cfg, {"argmax": 0.6, "mass": 0.5, "chance": 0.25}) == (
        True,
        {"argmax_above_chance": True, "mass_above_chance": True},
    )
    assert judge(cfg, {"argmax": 0.6, "mass": 0.4, "chance": 0.25})[0] is False


def test_missing_corpus_is_reported_not_raised(tmp_path):
    part = _de_en(Config.for_profile("full", **{"de_en.path": str(tmp_path / "none")}), "cpu")
    assert part["status"] == "missing" and "trans-de-en" in part["note"]


def test_de_en_maps_on_a_small_corpus(tmp_path):
    corpus = tmp_path / "de-en"
    words = [("Hund", "dog"), ("Katze", "cat"), ("Vogel", "bird"), ("Fisch", "fish")]
    lines = []
    for k in range(80):  # distinct pairs; every token occurs in many of them
        (de, en), m = words[k % 4], k % 7
        lines.append(f"Der {de} ist{' sehr' * m} gross {k % 10}. :: The {en} is{' very' * m} big {k % 10}.")
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    part_cfg = {"enabled": True, "path": str(corpus), "min_freq": 1, "emb": 8, "hidden": 8, "train.max_iters": 3}
    cfg = Config.for_profile("tiny", **{f"de_en.{k}": v for k, v in part_cfg.items()})
    part = _de_en(cfg, "cpu")
    assert part["status"] == "measured" and part["pairs"] == 80 and 0 <= part["bleu"] <= 100
    assert 1 <= len(part["viewer"]) <= cfg.de_en.sentences
    for payload in part["viewer"]:
        assert payload["kind"] == "cross" and 6 <= len(payload["key_tokens"]) <= 10  # the source sentence
        w = torch.tensor(payload["layers"])
        assert w.shape == (1, 1, len(payload["query_tokens"]), len(payload["key_tokens"]))
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-3, rtol=0)


def test_plot_from_saved_json(tiny):
    saved = json.loads(json.dumps(tiny, allow_nan=False))
    figs = SPEC.plot(saved)
    assert set(figs) == {"dates", "agreement"}  # no de-en maps in the tiny profile
    assert len(figs["dates"].axes) == len(DATE_FORMATS)
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("attention", "none"),
        ("attention", "dot"),
        ("cell", "rnn"),
        ("train.max_iters", 0),
        ("train.lr", -1.0),
        ("mass_ratio", 0.0),
        ("de_en.sentences", 0),
    ],
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field.split(".")[-1]):
        Config.for_profile("full", **{field: value})
