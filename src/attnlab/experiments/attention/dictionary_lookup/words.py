"""The words of ``dictionary-lookup``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.attention.dictionary_lookup.learned import tau_label
from attnlab.experiments.base import Words
from attnlab.experiments.words import closing, fill, table

TITLE = "Attention as a differentiable dictionary lookup"
CLAIM = (
    "Attention is a differentiable dictionary lookup: a query against stored keys retrieves a blend of the "
    "values; as the softmax temperature falls it becomes the hard argmax lookup, exact but with a vanishing "
    "gradient, while a high temperature gives a blurry lookup with a smooth gradient, through which a lookup "
    "can be learned (the hard one has no gradient at all)."
)
SOURCE = "Seed 001 (chapter 3), section 3.2 (differentiable dictionary lookup; backpropagation through attention)"
MAIN_FIGURE = "tradeoff"


SETUP = """
Part 1: {cfg.seeds} dictionary(ies) of N={cfg.n_keys} random unit-norm keys (d={cfg.key_dim}) and values
(dv={cfg.value_dim}), float64; {cfg.n_queries} queries per dictionary, each a stored key plus N(0, {cfg.noise:g}^2 I)
noise. Soft lookup: attnlab's scaled_dot_product_attention with scale=1/tau (weights = softmax(q.k / tau)), tau in
{taus}; hard lookup: the value of the argmax key. Per tau: argmax and nearest-value (decoded) accuracy, squared error
|r - v_true|^2, distance to the hard lookup's value, Frobenius norm of d r / d q by autograd (median; dead below
{cfg.dead_threshold:g}). Part 2: cues x = M k + N(0, {cfg.cue_noise:g}^2 I) in dx={cfg.cue_dim} dimensions (M fixed,
random); attnlab.nn.LuongAttention(score='general') learns W_a by Adam (lr {cfg.train.lr:g}, {cfg.train.max_iters}
steps of {cfg.batch_size}) on |r - v_true|^2, the cue divided by tau in {train_taus} (same initialisation and
batches); accuracy = argmax of the weights on {cfg.n_eval} held-out cues. The hard lookup v_[argmax x^T W_a k] is
differentiated by autograd at the same initialisation. Part 1 on the CPU in float64; part 2 trained on
{r[device_name]}.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    taus, train_taus = ([tau_label(t) for t in ts] for ts in (cfg.taus, cfg.train_taus))
    return fill(SETUP, cfg, r, taus=", ".join(taus), train_taus=", ".join(train_taus))


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, verdict, held = r["metrics"], r["data"]["verdict"], r["held"]
    lo, hi = tau_label(cfg.taus[0]), tau_label(cfg.taus[-1])
    first, last = tau_label(cfg.train_taus[0]), tau_label(min(cfg.train_taus))

    def at(key: str, tau: str) -> float:
        return m[f"{key}/tau={tau}"]

    def train(key: str, tau: str) -> float:
        return m[f"train/{key}/tau={tau}"]

    parts = [
        f"Falling temperature turns the blend into the hard lookup: at tau={lo} the blend is "
        f"{at('dist_to_hard', lo):.3g} from the hard lookup's value (mean largest weight "
        f"{at('max_weight', lo):.4f}); at tau={hi} it is {at('dist_to_hard', hi):.3g} away (largest weight "
        f"{at('max_weight', hi):.4f}, uniform is {1 / cfg.n_keys:.4f}).",
        f"The argmax accuracy is {m['hard/accuracy']:.3f} at every tau (a softmax keeps the order of its scores; with "
        f"noise sigma={cfg.noise:g}, {100 * (1 - m['hard/accuracy']):.1f}% of the queries are nearer a wrong key); "
        f"decoded to the nearest stored value, the blend is right {100 * at('accuracy_decoded', lo):.1f}% of the time "
        f"at tau={lo} and {100 * at('accuracy_decoded', hi):.1f}% at tau={hi}.",
        f"The price of sharpness is the gradient: the median norm of d r / d q is {at('jacobian_median', lo):.3g} at "
        f"tau={lo} ({100 * at('dead_fraction', lo):.0f}% of the queries below {cfg.dead_threshold:g}), peaks at "
        f"{m['jacobian_median/peak']:.3g} at tau={tau_label(m['jacobian_median/peak_tau'])}, then falls only as a "
        f"power of tau, not exponentially (log-log slope {m['jacobian_median/high_tau_slope']:.2f} between the two "
        f"largest tau; {at('jacobian_median', hi):.3g} at tau={hi}, {100 * at('dead_fraction', hi):.0f}% dead).",
        f"The squared error of the retrieved value is {at('sq_error', lo):.4f} at tau={lo} (the hard lookup's: "
        f"{m['hard/sq_error']:.4f}), smallest ({m['min_sq_error']:.4f}) at tau={tau_label(m['best_tau'])}, and "
        f"{at('sq_error', hi):.3f} at tau={hi} (the mean of all values: {m['uniform/sq_error']:.3f}): with noisy "
        f"queries the best lookup is soft. Bayes puts the optimum at tau = sigma^2 = {tau_label(m['bayes_tau'])}, "
        f"where the softmax is the posterior over the items.",
        f"Learned lookup (Luong general score): accuracy {train('accuracy_before', first):.3f} before and "
        f"{train('accuracy_after', first):.3f} after training at tau={first} (lowest seed "
        f"{train('min_accuracy_after', first):.3f}); from the same start at tau={last}, where "
        f"{100 * (1 - train('live_fraction_at_init', last)):.0f}% of the examples' gradients are below "
        f"{cfg.dead_threshold:g} at initialisation, {train('accuracy_after', last):.3f} after the same budget (Adam "
        f"rescales the few live gradients, which is why it learns at all). The hard lookup's loss is connected to "
        f"W_a in {m['train/hard_connected_seeds']} of {cfg.seeds} seed(s): gradient norm "
        f"{m['train/hard_grad_norm']:g}, against {m['train/soft_grad_norm_at_init']:.3g} for the soft lookup at the "
        f"same point.",
    ]
    parts.append(closing(held, verdict))
    return " ".join(parts)


HEADLINE = """
distance to the hard lookup at tau = <lo> / <hi> | {m[dist_to_hard/tau=<lo>]:.3g} / {m[dist_to_hard/tau=<hi>]:.3g}
median gradient ||dr/dq|| at tau = <lo> / peak / <hi> | {m[jacobian_median/tau=<lo>]:.3g} /
    {m[jacobian_median/peak]:.3g} / {m[jacobian_median/tau=<hi>]:.3g}
best temperature (Bayes: sigma^2) | <best> (<bayes>)
learned lookup accuracy, tau = <first> / <last> | {m[train/accuracy_after/tau=<first>]:.3f} /
    {m[train/accuracy_after/tau=<last>]:.3f}
hard lookup: gradient norm | {m[train/hard_grad_norm]:g}
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    m = r["metrics"]
    taus = {"lo": cfg.taus[0], "hi": cfg.taus[-1], "first": cfg.train_taus[0], "last": min(cfg.train_taus)}
    labels = {k: tau_label(t) for k, t in taus.items()}
    return table(HEADLINE, cfg, r, best=tau_label(m["best_tau"]), bayes=tau_label(m["bayes_tau"]), **labels)


WORDS = Words(setup, summary, headline)
