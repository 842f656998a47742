"""The words of ``scaling``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.self_attention.scaling.measure import SATURATED
from attnlab.experiments.words import closing, fill, table

TITLE = "Why scale by 1/sqrt(d_k)"
CLAIM = (
    "Scaling the dot products by 1/sqrt(d_k) keeps the softmax out of saturation: unscaled scores have a "
    "variance that grows with d_k and push the softmax into regions with extremely small gradients."
)
SOURCE = "Seed 001 (chapter 3), section 3.3; Vaswani et al. 2017, section 3.2.1 and footnote 4"
MAIN_FIGURE = "saturation"


SETUP = """
q and S={cfg.n_keys} keys with i.i.d. N(0,1) components (float64), {cfg.n_queries} queries per head size and seed,
{cfg.seeds} seed(s), d_k in {cfg.d_ks}. Weights from attnlab's scaled_dot_product_attention (impl='naive',
return_weights=True) with scale=1 (unscaled) and 1/sqrt(d_k) (scaled). Per row: entropy (max log S =
{d[log_n_keys]:.3f}), largest weight, saturated if it exceeds {saturated:g}, and the Frobenius norm of the softmax
Jacobian d weights / d scores (median and mean over rows). Variance of q.k pooled over all (query, key) pairs; slope
of log var on log d_k by least squares. Temperature sweep at d_k={cfg.tau_d_k}: scale = 1/(tau sqrt(d_k)) for tau in
{taus}. On the CPU whatever the device: the statistics of random scores do not depend on where they are computed.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    return fill(SETUP, cfg, r, saturated=SATURATED, taus=", ".join(f"{t:g}" for t in cfg.taus))


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, verdict, held = r["metrics"], r["data"]["verdict"], r["held"]
    d0, d1 = cfg.d_ks[0], cfg.d_ks[-1]

    def span(key: str, fmt: str) -> str:  # "min-max" of a metric over every d_k
        values = [m[f"{key}/{d}"] for d in cfg.d_ks]
        return f"{min(values):{fmt}}-{max(values):{fmt}}"

    un_jac = m["unscaled/jacobian_median_ratio_first_to_last"]
    medians = [m[f"unscaled/jacobian_median/{d}"] for d in cfg.d_ks]
    top = max(range(len(medians)), key=medians.__getitem__)
    # a softmax that is peaked but not yet saturated has a larger Jacobian than a near-uniform one
    peak = f"; on the way it first rises to {medians[top]:.3g} at d_k={cfg.d_ks[top]}" if top > 0 else ""
    most_saturated = max(m[f"scaled/saturated_fraction/{d}"] for d in cfg.d_ks)
    saturated = "no row saturates" if most_saturated == 0 else f"at most {100 * most_saturated:.1f}% of rows saturate"
    parts = [
        f"Var(q.k) grows as d_k: slope {m['variance_slope']:.3f} on log-log axes (footnote 4 predicts 1); "
        f"var/d_k ranges {span('var_over_dk', '.3f')}.",
        f"Unscaled, from d_k={d0} to {d1} the softmax entropy falls from {m[f'unscaled/entropy/{d0}']:.3f} to "
        f"{m[f'unscaled/entropy/{d1}']:.3f} nats (log S = {m['log_S']:.3f}), the mean largest weight rises from "
        f"{m[f'unscaled/max_weight/{d0}']:.3f} to {m[f'unscaled/max_weight/{d1}']:.3f}, "
        f"{100 * m[f'unscaled/saturated_fraction/{d1}']:.0f}% of rows are saturated (largest weight > {SATURATED:g}) "
        f"at d_k={d1}, and the median Jacobian norm falls from {m[f'unscaled/jacobian_median/{d0}']:.3g} to "
        f"{m[f'unscaled/jacobian_median/{d1}']:.3g} ({un_jac:.3g}x smaller{peak}).",
        f"Its mean falls less, from {m[f'unscaled/jacobian_mean/{d0}']:.3g} to "
        f"{m[f'unscaled/jacobian_mean/{d1}']:.3g}: the rows whose two largest scores happen to be close keep a "
        f"gradient, and they carry the mean.",
        f"Scaled by 1/sqrt(d_k), across all d_k the entropy stays within {span('scaled/entropy', '.3f')}, the "
        f"largest weight within {span('scaled/max_weight', '.3f')}, {saturated}, and the median "
        f"Jacobian norm stays within {span('scaled/jacobian_median', '.3g')}.",
        f"Temperature sweep at d_k={cfg.tau_d_k}: entropy {m[f'sweep/entropy/tau={cfg.taus[0]:g}']:.3f} at "
        f"tau={cfg.taus[0]:g} rising to {m[f'sweep/entropy/tau={cfg.taus[-1]:g}']:.3f} at tau={cfg.taus[-1]:g}, the "
        f"largest weight {m[f'sweep/max_weight/tau={cfg.taus[0]:g}']:.3f} falling to "
        f"{m[f'sweep/max_weight/tau={cfg.taus[-1]:g}']:.3f}; the unscaled softmax at head size d_k is the point "
        f"tau = 1/sqrt(d_k) of this curve.",
    ]
    parts.append(closing(held, verdict))
    if not held:
        parts.append(
            f"(Flat: within {100 * cfg.flat_tolerance:g}% of the d_k={d0} value; collapse: at least "
            f"{cfg.collapse_factor:g}x smaller at d_k={d1}.)"
        )
    return " ".join(parts)


HEADLINE = """
slope of log Var(q.k) on log d_k (footnote 4: 1) | {m[variance_slope]:.3f}
unscaled: softmax entropy at d_k = <d0> / <d1> (log S = {m[log_S]:.2f}) | {m[unscaled/entropy/<d0>]:.3f} /
    {m[unscaled/entropy/<d1>]:.3f}
unscaled: median softmax Jacobian at d_k = <d0> / <d1> | {m[unscaled/jacobian_median/<d0>]:.3g} /
    {m[unscaled/jacobian_median/<d1>]:.3g}
scaled: softmax entropy at d_k = <d0> / <d1> | {m[scaled/entropy/<d0>]:.3f} / {m[scaled/entropy/<d1>]:.3f}
saturated rows at d_k = <d1>, unscaled / scaled | {m[unscaled/saturated_fraction/<d1>]:.0%} /
    {m[scaled/saturated_fraction/<d1>]:.0%}
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    return table(HEADLINE, cfg, r, d0=cfg.d_ks[0], d1=cfg.d_ks[-1])


WORDS = Words(setup, summary, headline)
