"""dictionary-lookup: the tiny config asserts the qualitative claim; the lookup helpers are checked on known answers."""

import json

import pytest
import torch

from attnlab import experiments
from attnlab.experiments.attention.dictionary_lookup import SPEC, Config, run
from attnlab.experiments.attention.dictionary_lookup.dictionary import (
    hard_lookup,
    jacobian_norm,
    make_dictionary,
    noisy_queries,
    soft_lookup,
)
from attnlab.experiments.attention.dictionary_lookup.learned import (
    hard_lookup_gradient,
    per_example_gradient_norms,
    tau_label,
)
from attnlab.nn import LuongAttention

pytestmark = pytest.mark.usefixtures("one_thread")
EXPERIMENT = "dictionary-lookup"


def test_tiny_soft_lookup_sharpens_to_hard_and_trades_gradient_for_blur(tiny):
    """Every bound holds with room over the sweep of the tiny profile (seeds 0-19 at 1 thread, 0-1 also at 2;
    the experiment runs on one thread, so the thread count cannot change it): held in 22 of 22; at tau = 1/1024
    distance to the hard lookup 0.0005-0.0035 (bound 0.01), largest weight 0.9975-0.9996 (> 0.99), dead queries
    0.955-0.979 (> 0.5), decoded accuracy 0.88-0.93 (> 0.8), median Jacobian 1e-144-2e-128 of its peak (< 1e-6);
    at tau = 4 squared error 0.990-0.993 of the uniform blend's (> 0.9), decoded accuracy 0.007-0.039 (< 0.1),
    no dead query, median Jacobian 0.028-0.034 (> 1e-3); high-tau slope -1.043 to -1.027 (in (-1.2, -0.8));
    best squared error 0.69-0.80 of the hard lookup's (< 0.9), best tau = the Bayes tau in every run."""
    m, v = tiny["metrics"], tiny["data"]["verdict"]
    assert tiny["held"] is True and all(v.values())
    lo, hi = "1/1024", "4"
    # low tau: the hard lookup, and no gradient for almost every query
    assert m[f"dist_to_hard/tau={lo}"] < 1e-2 and m[f"max_weight/tau={lo}"] > 0.99
    assert m[f"jacobian_median/tau={lo}"] < 1e-6 * m["jacobian_median/peak"]
    assert m[f"dead_fraction/tau={lo}"] > 0.5
    # high tau: nearly the uniform blend, wrong when decoded, but every query has a gradient
    assert m[f"sq_error/tau={hi}"] > 0.9 * m["uniform/sq_error"]
    assert m[f"accuracy_decoded/tau={hi}"] < 0.1 < 0.8 < m[f"accuracy_decoded/tau={lo}"]
    assert m[f"dead_fraction/tau={hi}"] == 0 and m[f"jacobian_median/tau={hi}"] > 1e-3
    assert -1.2 < m["jacobian_median/high_tau_slope"] < -0.8  # ~ 1/tau: polynomial, not exponential, decay
    # a softmax never reorders: the argmax accuracy is the hard lookup's at every tau
    assert set(tiny["data"]["sweep"]["accuracy_argmax"]) == {tiny["data"]["sweep"]["hard_accuracy"]}
    # noisy queries: the best lookup is soft, near the Bayes temperature sigma^2 (the grid steps by 4x)
    assert m["min_sq_error"] < 0.9 * m["hard/sq_error"]
    assert m["bayes_tau"] / 4 <= m["best_tau"] <= 4 * m["bayes_tau"]


def test_tiny_lookup_learns_through_the_soft_weights_only(tiny):
    """Over the same sweep: accuracy before training 0.001-0.033 (< 0.1), after 0.997-1.0 (> 0.9); the sharp
    start ends 0.60-0.98 below it (> 0.3); live fraction at init 0.48-0.72 lower for the sharp start; the hard
    lookup's gradient 0 in every run, the soft one's 0.010-0.015 at init."""
    m = tiny["metrics"]
    assert m["train/accuracy_before/tau=1"] < 0.1 and m["train/accuracy_after/tau=1"] > 0.9
    assert m["train/accuracy_after/tau=1/1000"] < m["train/accuracy_after/tau=1"] - 0.3  # a sharp start stalls
    assert m["train/live_fraction_at_init/tau=1/1000"] < m["train/live_fraction_at_init/tau=1"]
    assert m["train/hard_connected_seeds"] == 0 and m["train/hard_grad_norm"] == 0
    assert m["train/soft_grad_norm_at_init"] > 0
    run_ = tiny["data"]["training"][0]["runs"]["1"]
    assert run_["steps"][0] == 0 and run_["steps"][-1] == 300 and len(run_["steps"]) == len(run_["accuracy"])


def test_tiny_result_is_json_and_plots(tiny):
    text = json.dumps(tiny, allow_nan=False)
    assert json.loads(text)["held"] is True
    assert set(SPEC.plot(tiny)) == {"tradeoff", "weights", "training"}
    assert experiments.get("dictionary-lookup").run is run


# --- the helpers on known answers ------------------------------------------------------------------------------


def test_soft_lookup_limits():
    gen = torch.Generator().manual_seed(0)
    keys, values = make_dictionary(16, 8, 4, gen)
    q, target = noisy_queries(keys, 50, 0.0, gen)  # exact keys: the argmax is the target
    hard, best = hard_lookup(q, keys, values)
    assert torch.equal(best, target) and torch.equal(hard, values[target])
    cold = soft_lookup(q, keys, values, 1e-3)
    torch.testing.assert_close(cold.output, hard, rtol=0, atol=1e-6)
    hot = soft_lookup(q, keys, values, 1e6)  # weights -> 1/N, the blend -> the mean value
    torch.testing.assert_close(hot.weights, torch.full((50, 16), 1 / 16, dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(hot.output, values.mean(0).expand(50, 4), rtol=0, atol=1e-6)
    assert torch.allclose(keys.norm(dim=-1), torch.ones(16, dtype=torch.float64))


def test_jacobian_norm_matches_the_closed_form_and_autograd():
    gen = torch.Generator().manual_seed(1)
    keys, values = make_dictionary(10, 6, 3, gen)
    q, _ = noisy_queries(keys, 7, 0.3, gen)
    tau = 0.2
    p = soft_lookup(q, keys, values, tau).weights  # (n, N)
    # d r / d q = (1/tau) V^T (diag p - p p^T) K for each query
    jac = torch.stack([values.T @ (torch.diag(row) - torch.outer(row, row)) @ keys / tau for row in p])
    torch.testing.assert_close(jacobian_norm(q, keys, values, tau), torch.linalg.matrix_norm(jac))
    one = torch.autograd.functional.jacobian(lambda x: soft_lookup(x[None], keys, values, tau).output[0], q[0])
    torch.testing.assert_close(jacobian_norm(q[:1], keys, values, tau)[0], torch.linalg.matrix_norm(one))


def test_hard_lookup_has_no_gradient_and_per_example_norms_match_autograd():
    gen = torch.Generator().manual_seed(2)
    keys, values = make_dictionary(12, 5, 3, gen, dtype=torch.float32)
    torch.manual_seed(0)
    attn = LuongAttention(4, 5, "general")
    x = torch.randn(6, 4, generator=gen)
    target = torch.randint(12, (6,), generator=gen)
    assert hard_lookup_gradient(attn, x, target, keys, values) == {"connected": False, "grad_norm": 0.0}
    tau = 0.5
    norms = per_example_gradient_norms(attn, x, target, keys, values, tau)
    for n in range(6):  # each example's own loss through the module, W_a's gradient by autograd
        out = attn(x[n : n + 1] / tau, keys[None], values[None])
        loss = (out.output[0] - values[target[n]]).square().sum()
        (g,) = torch.autograd.grad(loss, attn.W_a)
        torch.testing.assert_close(norms[n], g.norm())


def test_tau_label():
    assert [tau_label(t) for t in (2.0**-10, 0.01, 1.0, 4.0, 0.3)] == ["1/1024", "1/100", "1", "4", "0.3"]


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"^taus: expected at least 3 strictly increasing"):
        Config(taus=(1.0, 0.5, 2.0))
    with pytest.raises(ValueError, match=r"^taus: expected at least 3"):
        Config(taus=(0.0, 1.0, 2.0))
    with pytest.raises(ValueError, match=r"^train_taus: expected distinct"):
        Config(train_taus=(1.0, 1.0))
    with pytest.raises(ValueError, match=r"^train_taus: expected distinct temperatures, the largest first"):
        Config(train_taus=(0.001, 1.0))
    with pytest.raises(ValueError, match=r"^n_keys: expected an integer >= 2"):
        Config(n_keys=1)
    with pytest.raises(ValueError, match=r"^noise: expected a finite number >= 0"):
        Config(noise=-0.1)
    with pytest.raises(ValueError, match=r"lr: expected 0 <= min_lr <= lr and lr > 0"):
        Config.for_profile("full", **{"train.lr": 0.0, "train.min_lr": 0.0})
    with pytest.raises(ValueError, match=r"^blur_fraction: expected a number in"):
        Config(blur_fraction=1.5)
    with pytest.raises(ValueError, match=r"^eval_interval: expected an integer >= 1"):
        Config.for_profile("full", **{"train.eval_interval": 0})
    with pytest.raises(ValueError, match="unknown config field"):
        Config.for_profile("tiny", temperature=1.0)
