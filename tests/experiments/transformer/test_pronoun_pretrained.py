"""pronoun_pretrained: every head of the real all-MiniLM-L6-v2 on pronoun minimal pairs. Structure and ranges of
the result, the selection and report halves (disjoint, the chosen head is the selection half's best), rows of the
real model's attention summing to 1, the first layer's exact 0.5 on minimal pairs, the sign test, the spans."""

import json

import matplotlib
import pytest
import torch

from attnlab.experiments.transformer.pronoun.figures import pretrained_heads
from attnlab.experiments.transformer.pronoun.pretrained import CLASSIC, analyse, sign_test, split_pairs
from attnlab.experiments.transformer.pronoun.sentences import WINOGRAD_PAIRS, make_items
from attnlab.experiments.transformer.pronoun.words import pretrained_summary
from attnlab.models import Encoder, EncoderConfig

matplotlib.use("Agg")
N_PAIRS = 12


@pytest.fixture(scope="module")
def encoder():
    return Encoder.from_pretrained()


@pytest.fixture(scope="module")
def result(encoder):
    return analyse(n_pairs=N_PAIRS, seed=0, encoder=encoder)


def test_structure_and_ranges(result):
    m, d = result["metrics"], result["data"]
    assert m["pairs"] == N_PAIRS + len(WINOGRAD_PAIRS) and m["sentences"] == 2 * m["pairs"]
    assert (d["num_layers"], d["num_heads"]) == (6, 12)
    for key in ("grid", "grid_selection", "grid_report", "weight_gap"):
        assert len(d[key]) == 6 and all(len(row) == 12 for row in d[key])
    for key in ("grid", "grid_selection", "grid_report"):
        assert all(0 <= a <= 1 for row in d[key] for a in row)
    for key in (
        "best_head_selection_accuracy",
        "best_head_heldout_accuracy",
        "best_head_heldout_accuracy_generated",
        "best_head_heldout_accuracy_winograd",
        "cherry_picked_heldout_accuracy",
        "mean_head_accuracy",
        "best_layer_mean_accuracy",
        "best_head_heldout_sign_test_p",
    ):
        assert 0 <= m[key] <= 1, key
    assert m["chance"] == 0.5 and isinstance(m["above_chance"], bool)
    assert pretrained_summary(m).startswith(f"Chosen on {m['selection_pairs']} pairs")
    json.dumps(result, allow_nan=False)


def test_selection_and_report_halves_are_disjoint_and_the_head_is_chosen_on_selection(result):
    m, d = result["metrics"], result["data"]
    sel, rep = set(d["selection_pairs"]), set(d["report_pairs"])
    assert not sel & rep and sel | rep == set(range(m["pairs"]))
    assert abs(len(sel) - len(rep)) <= 1 and (m["selection_pairs"], m["report_pairs"]) == (len(sel), len(rep))
    by_pair = {}
    for s in d["sentences"]:
        by_pair.setdefault(s["pair"], []).append(s["sentence"])
    assert all(len(v) == 2 for v in by_pair.values())
    sel_text = {t for p in sel for t in by_pair[p]}
    rep_text = {t for p in rep for t in by_pair[p]}
    assert not sel_text & rep_text  # not even one sentence in both halves
    grid_sel, grid_rep = torch.tensor(d["grid_selection"]), torch.tensor(d["grid_report"])
    bl, bh = d["best_head"]
    assert grid_sel[bl, bh] == grid_sel.max() and m["best_head"] == f"L{bl + 1}H{bh + 1}"
    assert m["best_head_heldout_accuracy"] == pytest.approx(float(grid_rep[bl, bh]), abs=1e-4)
    assert m["cherry_picked_heldout_accuracy"] == pytest.approx(float(grid_rep.max()), abs=1e-4)
    assert m["best_head_heldout_pairs_both_right"] + m["best_head_heldout_pairs_neither_right"] <= len(rep)


def test_real_attention_rows_sum_to_one(result, encoder):
    assert result["metrics"]["attention_row_sum_max_error"] < 1e-5  # the row of "it", every sentence, layer, head
    tokens, weights = encoder.attend(CLASSIC[0])
    torch.testing.assert_close(weights.sum(-1), torch.ones(6, 12, len(tokens)))
    for payload, sentence in zip(result["data"]["viewer"], CLASSIC, strict=True):
        assert payload["kind"] == "self" and sentence in payload["title"]
        assert payload["query_tokens"] == payload["key_tokens"] and "it" in payload["query_tokens"]
        w = torch.tensor(payload["layers"])  # (L, nh, T, T), rounded to 4 decimals
        assert w.shape == (6, 12, len(payload["query_tokens"]), len(payload["key_tokens"]))
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1], dtype=w.dtype), atol=1e-3, rtol=0)


def test_first_layer_heads_score_exactly_chance_on_minimal_pairs(result):
    # the first layer's query at "it" and keys at the nouns do not depend on the word after "it": every head ranks
    # the two nouns alike in both sentences of a pair, and is right in exactly one of them
    assert result["data"]["grid"][0] == [0.5] * 12
    assert result["metrics"]["first_layer_max_accuracy"] == 0.5


def test_sign_test_known_values():
    assert sign_test(3, 0) == 1 / 8
    assert sign_test(0, 3) == 1.0 and sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == pytest.approx(638 / 1024)
    assert sign_test(48, 0) == pytest.approx(2.0**-48)


def test_split_is_deterministic_disjoint_and_seeded():
    a, b = split_pairs(37, seed=3)
    assert (a, b) == split_pairs(37, seed=3) and a != split_pairs(37, seed=4)[0]
    assert not set(a) & set(b) and sorted(a + b) == list(range(37)) and (len(a), len(b)) == (18, 19)


def test_items_point_at_the_right_words():
    items = make_items(30, seed=1)
    assert len(items) == 2 * (30 + len(WINOGRAD_PAIRS)) and len({i.sentence for i in items}) == len(items)
    for it in items:
        assert it.sentence[slice(*it.it)].lower() == "it"
        assert it.sentence[slice(*it.referent)] != it.sentence[slice(*it.other)]
    trophy = [i for i in items if i.source == "winograd" and "trophy" in i.sentence]
    assert [t.sentence[slice(*t.referent)] for t in trophy] == ["trophy", "suitcase"]  # large -> trophy
    gen = [i for i in items if i.source == "generated"]
    for a, b in zip(gen[0::2], gen[1::2], strict=True):  # a minimal pair: same nouns, the referent swaps
        assert a.pair == b.pair and a.referent == b.other and a.other == b.referent


def test_plot_and_errors(result):
    fig = pretrained_heads(result)
    assert len(fig.axes[0].texts) == 6 * 12
    with pytest.raises(ValueError, match="n_pairs: expected an integer >= 2"):
        analyse(n_pairs=1)
    bare = Encoder(EncoderConfig(vocab_size=50, hidden_size=8, num_attention_heads=2, num_hidden_layers=1))
    with pytest.raises(ValueError, match="encoder: expected one with a tokenizer"):
        analyse(n_pairs=2, encoder=bare)
