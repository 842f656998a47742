"""recall (package ``associative_recall``) and the section's mixers at matched size: parameters matched within a
few percent in every profile (Mamba's width the closest), each mixer's decoding memory the formula's (attention's
grows with the pairs, the states do not); the tiny profile's training path (accuracies, curves) and the verdict as
the rule applied to the numbers; the quick profile measures sizes only and says so; figures and config errors.

Accuracies are not asserted: recall takes hundreds of steps to learn (attention ~800, Mamba ~2000 in
development), far more than a test's budget."""

import pytest
from matplotlib.figure import Figure

from attnlab.experiments.beyond.associative_recall import SPEC, Config
from attnlab.experiments.beyond.associative_recall.measure import configs
from attnlab.experiments.beyond.mixers import count, gpt_config, matched_width

EXPERIMENT = "recall"


@pytest.mark.parametrize("profile", ["tiny", "quick", "full"])
def test_parameters_match_within_a_few_percent(profile):
    cfg = Config.for_profile(profile)
    c = configs(cfg)
    n = {m: count(g) for m, g in c.items()}
    assert n["attention"] == n["linear"] and c["linear"].n_embd == cfg.n_embd  # the same projections
    # one width step (n_head = 4) moves the count by ~3.6% beside the quick/full profile's 2,192-token embedding:
    # the bound is that step; the neighbours' check below is the sharp one
    assert abs(n["ssm"] / n["attention"] - 1) <= 0.04
    fields = {k: getattr(c["ssm"], k) for k in ("vocab_size", "block_size", "n_layer", "n_head", "d_state")}
    for width in (c["ssm"].n_embd - cfg.n_head, c["ssm"].n_embd + cfg.n_head):  # the neighbours are no closer
        assert abs(count(gpt_config("ssm", width, **fields)) - n["attention"]) >= abs(n["ssm"] - n["attention"])


def test_matched_width_known_answer():
    fields = {"vocab_size": 65, "block_size": 64, "n_layer": 2, "n_head": 4}
    reference = count(gpt_config("attention", 64, **fields))
    assert matched_width("linear", reference, **fields) == 64
    assert matched_width("attention", reference + 1, **fields) == 64


def test_decoding_memory_is_the_formulas(tiny):
    cfg = Config.for_profile("tiny")
    sizes = tiny["data"]["sizes"]
    C, hs = cfg.n_embd, cfg.n_embd // cfg.n_head
    assert sizes["attention"]["state"] == [2 * C * 2 * D for D in cfg.pairs]  # keys and values of 2D tokens
    assert sizes["linear"]["state"] == [cfg.n_head * (hs * hs + hs)] * len(cfg.pairs)  # S and z per head
    d_inner = 2 * sizes["ssm"]["width"]
    assert sizes["ssm"]["state"] == [d_inner * (cfg.d_state + 3)] * len(cfg.pairs)  # scan state, K - 1 conv inputs
    assert tiny["metrics"]["params_spread"] <= 0.04


def test_training_path_and_verdict_from_the_numbers(tiny):
    cfg, data = Config.for_profile("tiny"), tiny["data"]
    assert data["seeds"] == [0]
    for mixer in cfg.mixers:
        (row,) = data["accuracy"][mixer]
        assert len(row) == len(cfg.pairs) and all(0 <= a <= 1 for a in row)
        (curve,) = data["curves"][mixer]
        assert curve[-1] == [cfg.train.max_iters, *row]  # the last check is the end of training
    mean, v = data["accuracy_mean"], data["verdict"]
    assert v["attention_recalls"] is (min(mean["attention"]) >= cfg.recall_min)
    for mixer in ("linear", "ssm"):
        row, att = mean[mixer], mean["attention"]
        assert v[f"{mixer}_falls_off"] is (row[-1] <= att[-1] - cfg.gap and row[-1] <= row[0] - cfg.drop)
    assert tiny["held"] is all(v.values())
    figs = SPEC.plot(tiny)
    assert set(figs) == {"accuracy", "training"} and all(isinstance(f, Figure) for f in figs.values())


def test_quick_profile_measures_sizes_only(tiny_runner):
    quick = tiny_runner("recall", seeds=0)
    assert quick["held"] is None and quick["data"]["verdict"] == {} and quick["data"]["accuracy_mean"] == {}
    assert "Only the models' sizes were measured" in quick["summary"]
    assert set(SPEC.plot(quick)) == {"accuracy"}
    assert Config.for_profile("quick").seeds == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pairs", (4,)),
        ("pairs", (8, 4)),
        ("pairs", (2, 5)),  # more pairs than keys (4)
        ("mixers", ("attention", "lstm")),
        ("n_embd", 18),  # not a multiple of n_head=4
        ("seeds", -1),
        ("eval_examples", 0),
        ("recall_min", 1.5),
        ("gap", 0.0),
    ],
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=f"^{field}"):
        Config.for_profile("tiny", **{field: value})
