"""pronoun: the tiny profile's robust measurements, the attention measures on hand-built weights, held computed
from the numbers, the model's padding mask, JSON, plots and config errors.

The tiny profile (600 steps, one seed) learns the task on training words in every seed of the sweep, but whether
it generalises to held-out words, and whether "it" itself or the adjective carries the link, varies from seed to
seed at that budget (the quick and full profiles measure it); the test asserts what held in all of them:
training words resolved, and no first-layer head pointing to the referent in more than half of the sentences (a
consequence of the minimal pairs, see :func:`attnlab.experiments.transformer.pronoun.attention.choose`). The
attention measures themselves are checked on hand-built weights below.
"""

import json

import matplotlib
import pytest
import torch

from attnlab.experiments.transformer.pronoun import SPEC, Config
from attnlab.experiments.transformer.pronoun.attention import (
    attention_table,
    choose,
    points_to_referent,
    strongest_link,
)
from attnlab.experiments.transformer.pronoun.measure import EXAMPLES, _judge

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def tiny(tiny_runner):
    return tiny_runner("pronoun", pretrained_pairs=6)  # the pretrained part too, on a few pairs


def test_tiny_learns_the_task_on_training_words(tiny):
    """Swept over seeds 0-19 at 1 thread and 0-1 at 2 (the model trains on one thread: identical): "it" resolved
    on sentences of training words in 22 of 22 (accuracy 1.00 in every run; bound 0.95). Not asserted, as it did
    not hold across the sweep: the referent picked out by attention, from "it" (strongest link 0.50-1.00) or the
    adjective's best head (0.50-1.00), at least 0.9 by one of them in 19 of 22 runs (seeds 7, 15 and 16: 0.50,
    0.50, 0.53; the bound this test asserted after 5 seeds); held-out accuracy 0.37-1.00."""
    (sd,) = tiny["data"]["seeds"]
    assert sd["val_accuracy"] >= 0.95
    assert 0 <= tiny["metrics"]["heldout/accuracy"] <= 1


def test_first_layer_heads_cannot_point_to_the_referent_in_more_than_half(tiny):
    """A consequence of the minimal pairs, so in every run: the largest first-layer share was 0.50 in all 22."""
    for split in ("val", "heldout"):
        for share in tiny["data"]["attention"][split]["head"]["resolution"][0]:
            assert share <= 0.5


def test_result_layout_json_and_verdict(tiny):
    assert {"held", "metrics", "setup", "summary", "data", "headline", "device"} <= set(tiny)
    json.dumps(tiny, allow_nan=False)
    data, cfg = tiny["data"], Config.for_profile("tiny")
    seeds = data["seeds"]
    held, verdict = _judge(cfg, [s["heldout_accuracy"] for s in seeds], [s["strongest_link_heldout"] for s in seeds])
    assert verdict == data["verdict"] and tiny["held"] is held is all(verdict.values())
    assert ("did not hold" in tiny["summary"]) is (held is False)
    head = data["attention"]["heldout"]["head"]
    assert len(head["resolution"]) == cfg.num_layers and len(head["resolution"][0]) == cfg.nhead
    assert [e["name"] for e in data["examples"]] == [e[0] for e in EXAMPLES]
    ex = data["examples"][0]
    assert ex["words"][ex["it_index"]] == "it" and ex["referent"] == "animal"
    assert len(ex["rows"]) == cfg.num_layers and len(ex["rows"][0]) == cfg.nhead
    for layer in ex["rows"]:
        for row in layer:
            assert len(row) == len(ex["words"]) and sum(row) == pytest.approx(1, abs=1e-5)


def test_pretrained_part_reports_its_head_and_hands_the_classic_pair_to_the_viewer(tiny):
    m, data = tiny["metrics"], tiny["data"]
    assert 0.0 <= m["pretrained/best_head_heldout_accuracy"] <= 1.0
    assert m["pretrained/attention_row_sum_max_error"] < 1e-5  # real softmax rows
    grid = data["pretrained"]["data"]["grid"]
    assert (len(grid), len(grid[0])) == (6, 12)  # all-MiniLM-L6-v2: 6 layers x 12 heads
    assert len(data["viewer"]) == 2  # the tired / wide sentences
    for payload in data["viewer"]:
        assert "it" in payload["query_tokens"]
        assert len(payload["layers"]) == 6 and len(payload["layers"][0]) == 12


def test_plot_draws_the_maps_from_the_result(tiny):
    figs = SPEC.plot(json.loads(json.dumps(tiny)))
    assert set(figs) == {"resolution", "heads", "pretrained_heads"} | {f"map_{e[0]}" for e in EXAMPLES}
    cfg = Config.for_profile("tiny")
    image = figs["map_animal_tired"].axes[0].images[0].get_array()
    assert image.shape == (cfg.num_layers * (cfg.nhead + 1), 11)  # each layer's heads and their mean, by word
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs.values())


def test_attention_measures_on_hand_built_weights():
    # 4 sentences, 2 layers, 2 heads; mass[..., 0] on the referent, [..., 1] on the other noun
    mass = torch.zeros(4, 2, 2, 2)
    mass[:, 0, 0] = torch.tensor([[0.9, 0.0], [0.0, 0.8], [0.9, 0.0], [0.0, 0.8]])  # L1 H1: animate noun, always
    mass[:, 0, 1] = torch.tensor([[0.05, 0.01], [0.05, 0.01], [0.05, 0.01], [0.05, 0.01]])  # too weak to count
    mass[:, 1, 0] = torch.tensor([[0.6, 0.1], [0.7, 0.2], [0.5, 0.0], [0.4, 0.3]])  # L2 H1: the referent
    animate = torch.tensor([True, False, True, False])
    pts = points_to_referent(mass, 0.1)
    assert pts[:, 0, 0].tolist() == [True, False, True, False]
    assert not pts[:, 0, 1].any()  # more weight on the referent, but below min_weight
    assert pts[:, 1, 0].all()
    table = attention_table(mass, animate, 0.1)
    assert table["head"]["resolution"][0] == [0.5, 0.0] and table["head"]["resolution"][1][0] == 1.0
    assert table["head"]["resolution_animate"][0][0] == 1.0 and table["head"]["resolution_inanimate"][0][0] == 0.0
    assert table["head"]["referent"][1][0] == pytest.approx(0.55)
    assert table["layer"]["referent"][0] == pytest.approx(0.25)  # heads averaged: (0.9 + 0.05) / 2 in half
    assert choose(table) == ((1, 0), 1)
    (best_animate, _) = choose(table, "resolution_animate")
    assert best_animate == (1, 0)  # L1 H1 ties at 1.0; L2 H1 has the larger weight gap (0.40 against 0.05)
    # strongest link: L1 H1 in sentences 0 and 2 (the referent), 1 and 3 (the other noun) ...
    assert strongest_link(mass, 0.1).tolist() == [True, False, True, False]
    assert not strongest_link(mass * 0.05, 0.1).any()  # ... and nothing when every weight is small


@pytest.mark.parametrize(
    ("accuracy", "link", "held"),
    [
        ([1.0], [1.0], True),
        ([1.0], [0.5], False),  # resolved without "it" attending to the referent
        ([0.5], [1.0], False),  # attends, but does not generalise
        ([1.0, 1.0, 0.6], [1.0, 0.5, 1.0], False),  # each in a majority, both only in seed 0
        ([1.0, 1.0, 0.6], [1.0, 0.9, 0.5], True),
    ],
)
def test_held_is_computed_from_the_measurements(accuracy, link, held):
    got, verdict = _judge(Config.for_profile("tiny"), accuracy, link)
    assert got is held and got is all(verdict.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("d_model", 30),  # not a multiple of nhead=4
        ("nhead", 0),
        ("num_layers", 0),
        ("train.max_iters", 0),
        ("batch_size", 1),
        ("lexicon_fraction", 1.0),
        ("train.lr", 0.0),
        ("train.weight_decay", -0.1),
        ("eval_pairs", 0),
        ("seeds", 0),
        ("margin", 0.5),
        ("min_weight", 0.0),
        ("device", "tpu"),
    ],
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field.split(".")[-1]):
        Config.for_profile("full", **{field: value})
