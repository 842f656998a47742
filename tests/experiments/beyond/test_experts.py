"""experts: equal compute, exactly (active parameters and counted FLOPs per token differ from the dense model's by
the router and the experts' extra output biases only), total parameters growing with E; Mixtral's count from its
configuration; the router's loads; the tiny profile's training path and the verdict as the rule applied to the
numbers; the quick profile counts only and says so; figures and config errors.

Losses are not asserted: 20 iterations say nothing about the claim (the full profile judges it over 3 seeds)."""

import pytest
import torch
from matplotlib.figure import Figure

from attnlab.experiments.beyond.experts import SPEC, Config
from attnlab.experiments.beyond.experts.measure import flops_per_token, mixtral_counts, model_config, parameters
from attnlab.models.gpt import GPT

EXPERIMENT = "experts"


@pytest.mark.parametrize("profile", ["tiny", "full"])
def test_equal_active_parameters_and_flops(profile):
    """Counted FLOPs on the tiny models only (counting the full ones takes seconds); the parameters on both."""
    cfg = Config.for_profile(profile)
    C, L, k, V = cfg.n_embd, cfg.n_layer, cfg.top_k, 65
    x = torch.randint(0, V, (2, cfg.block_size))
    dense = GPT(model_config(cfg, 1, V))
    base = parameters(dense)
    base_flops = flops_per_token(dense, x, x) if profile == "tiny" else None
    assert base["total"] == base["active"]
    for E in cfg.experts[1:]:
        torch.manual_seed(0)
        moe = GPT(model_config(cfg, E, V))
        p = parameters(moe)
        per_expert = 2 * C * (4 * C // k) + 4 * C // k + C  # w1, w2, b1, b2 of one expert of width 4C / k
        assert p["total"] - p["active"] == L * (E - k) * per_expert
        assert p["active"] - base["total"] == L * (C * E + (k - 1) * C)  # the router, k output biases for one
        if base_flops is not None:  # the router's product differs; the experts' are the dense FFN's 16 C^2
            assert flops_per_token(moe, x, x) - base_flops == 2 * C * E * L


def test_mixtral_from_its_configuration():
    c = mixtral_counts()
    d, L, h, V = 4096, 32, 14336, 32000
    attention = d * d * 2 + 2 * d * 8 * 128  # W^Q, W^O: d x d; W^K, W^V: 8 kv heads of 128
    shared = L * (attention + 2 * d + 8 * d) + 2 * V * d + d
    assert c == {"total": shared + L * 8 * 3 * d * h, "active": shared + L * 2 * 3 * d * h}
    assert round(c["total"] / 1e9, 1) == 46.7 and round(c["active"] / 1e9, 1) == 12.9  # the paper: 47B and 13B


def test_training_path_loads_and_verdict(tiny):
    cfg, data, m = Config.for_profile("tiny"), tiny["data"], tiny["metrics"]
    for E in cfg.experts:
        assert len(data["val_loss"][str(E)]) == cfg.seeds and data["history"][str(E)][-1]["iter"] == 20
    for E in cfg.experts[1:]:
        loads = torch.tensor(data["loads"][str(E)])  # (L, E)
        assert loads.shape == (cfg.n_layer, E) and torch.allclose(loads.sum(1), torch.ones(cfg.n_layer))
        assert 1 <= m[f"router_max_over_share/E={E}"] <= E / cfg.top_k  # between even and all on k experts
    mean, v = data["val_loss_mean"], data["verdict"]
    assert data["sparse"] == [4] and v["equal_compute"] is (m["flops_spread"] <= 0.01)
    assert v["E=4_below_dense"] is (mean[2] < mean[0])
    assert tiny["held"] is all(v.values())
    figs = SPEC.plot(tiny)
    assert set(figs) == {"loss", "params", "balance"} and all(isinstance(f, Figure) for f in figs.values())


def test_quick_profile_counts_only(tiny_runner):
    quick = tiny_runner("experts", seeds=0)
    assert quick["held"] is None and quick["data"]["verdict"] == {}
    assert "were not trained here" in quick["summary"] and set(SPEC.plot(quick)) == {"params"}
    assert Config.for_profile("quick").seeds == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("experts", (2, 4)),  # the dense model first
        ("experts", (1,)),
        ("experts", (1, 4, 2)),
        ("experts", (1, 2, 4)),  # with top_k=3: E=2 < k
        ("top_k", 0),
        ("n_embd", 31),  # not a multiple of n_head=2
        ("seeds", -1),
        ("balance_batches", 0),
    ],
)
def test_config_rejects_bad_values_by_name(field, value):
    extra = {"top_k": 3} if value == (1, 2, 4) else {}
    with pytest.raises(ValueError, match=f"^{field}"):
        Config.for_profile("tiny", **{field: value, **extra})
