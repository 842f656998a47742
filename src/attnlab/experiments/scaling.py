r"""Experiment ``scaling`` (claim C4, seed 001 §3.3): scaling by ``1/sqrt(d_k)`` keeps the softmax out of saturation.

Vaswani et al. 2017, footnote 4: if the components of q and k are independent with mean 0 and variance 1, then
``q . k = sum_i q_i k_i`` has mean 0 and variance ``d_k``. Unscaled scores therefore spread as ``sqrt(d_k)``:
the largest of S scores pulls away from the rest, the softmax puts (almost) all its weight on it, and its
gradient vanishes ("pushing the softmax function into regions where it has extremely small gradients").
Dividing by ``sqrt(d_k)`` (eq. 1) gives unit-variance scores for every head size.

Measured, for each ``d_k`` in ``cfg.d_ks``, on queries ``q (d_k,)`` and S keys ``k (S, d_k)`` with i.i.d. N(0, 1)
components (float64, several seeds, pooled):

- the empirical variance of ``q . k`` against ``d_k`` and the slope of ``log var`` on ``log d_k`` (expected 1);
- the softmax weights of the project's :func:`attnlab.functional.scaled_dot_product_attention` (``impl="naive"``,
  ``return_weights=True``) with ``scale=1`` (unscaled) and the default ``1/sqrt(d_k)`` (scaled): their entropy
  (maximum ``log S``, the uniform softmax), their largest weight, the fraction of rows with a weight above 0.99,
  and the Frobenius norm of the softmax Jacobian ``d weights / d scores`` (:func:`softmax_jacobian_norm`), the
  factor through which every gradient reaching the scores passes;
- a temperature sweep at one ``d_k``: ``weights = softmax(q . k / (tau sqrt(d_k)))`` (``scale = 1/(tau sqrt(d_k))``)
  from sharp (small tau) to flat (large tau). Unscaled scores at head size ``d_k`` are the point
  ``tau = 1/sqrt(d_k)`` of this sweep: scaled scores have the same distribution whatever ``d_k``.

Scaling fixes the variance of the scores on average over queries; at small ``d_k`` the squared norm of one
query, ``|q|^2 / d_k``, still fluctuates (chi-square with d_k degrees of freedom over d_k), so some rows are
sharper than others and the scaled softmax at ``d_k = 4`` differs from the large-``d_k`` one by a few percent
(hence a ``flat_tolerance`` of 15%, not 1%).

The Jacobian norm is summarised by its median over rows (the typical row) and by its mean, which a minority of
rows whose two largest scores happen to be close keeps up even when most rows are saturated.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, ClassVar

import torch
from torch import Tensor
from tqdm.auto import tqdm

from attnlab._checks import resolve_device
from attnlab.experiments.base import ExperimentConfig, ExperimentSpec
from attnlab.experiments.fitting import loglog_slope
from attnlab.functional import scaled_dot_product_attention

SATURATED = 0.99  # a row counts as saturated when its largest weight exceeds this
_CHUNK = 64  # queries per block (the keys of a block at d_k = 1024 in float64: 64 * S * 1024 * 8 bytes)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Head sizes, keys per query and sample sizes; the tolerances that decide ``held``.

    ``held`` needs all of: the slope of log var(q.k) on log d_k within ``slope_tolerance`` of 1 and every
    var/d_k within ``variance_tolerance`` of 1; the scaled entropy and median Jacobian norm within
    ``flat_tolerance`` (relative) of their values at the smallest d_k; the unscaled entropy and median Jacobian
    norm at the largest d_k at least ``collapse_factor`` times smaller than at the smallest; entropy rising and
    the largest weight falling with tau in the sweep.
    """

    d_ks: tuple[int, ...] = (4, 16, 64, 256, 1024)
    n_keys: int = 64  # S
    n_queries: int = 1024  # per d_k and seed
    seeds: int = 3
    taus: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0, 16.0)
    tau_d_k: int = 64  # the head size of the temperature sweep
    slope_tolerance: float = 0.1
    variance_tolerance: float = 0.2
    flat_tolerance: float = 0.15
    collapse_factor: float = 10.0

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {},
        "quick": {"n_queries": 512, "seeds": 2},
        "tiny": {"d_ks": (4, 64, 1024), "n_queries": 256, "seeds": 1, "taus": (1 / 16, 1 / 4, 1.0, 4.0, 16.0)},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, minimum in (("n_keys", 2), ("n_queries", 1), ("seeds", 1), ("tau_d_k", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
        if (
            len(self.d_ks) < 2
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.d_ks)
            or list(self.d_ks) != sorted(set(self.d_ks))
        ):
            raise ValueError(f"d_ks: expected at least two strictly increasing integers >= 1, got {self.d_ks!r}")
        if (
            len(self.taus) < 2
            or any(not isinstance(t, (int, float)) or not 0 < t < math.inf for t in self.taus)
            or list(self.taus) != sorted(set(self.taus))
        ):
            raise ValueError(f"taus: expected at least two strictly increasing positive numbers, got {self.taus!r}")
        for name in ("slope_tolerance", "variance_tolerance", "flat_tolerance"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ValueError(f"{name}: expected a number in (0, 1), got {value!r}")
        if not isinstance(self.collapse_factor, (int, float)) or not 1 < self.collapse_factor < math.inf:
            raise ValueError(f"collapse_factor: expected a finite number > 1, got {self.collapse_factor!r}")


def entropy(weights: Tensor) -> Tensor:
    """``H(p) = -sum_j p_j log p_j`` over the last dim (0 log 0 = 0); at most ``log S`` (uniform)."""
    return -torch.special.xlogy(weights, weights).sum(-1)


def _exclusive_sum(x: Tensor) -> Tensor:
    """``sum_{j != i} x_j`` for each i over the last dim, without subtracting (exact when one entry dominates)."""
    zero = torch.zeros_like(x[..., :1])
    before = torch.cat([zero, x[..., :-1]], -1).cumsum(-1)  # sum_{j < i} x_j
    after = torch.cat([zero, x.flip(-1)[..., :-1]], -1).cumsum(-1).flip(-1)  # sum_{j > i} x_j
    return before + after


def softmax_jacobian_norm(weights: Tensor) -> Tensor:
    r"""Frobenius norm of the softmax Jacobian ``J = d p / d s = diag(p) - p p^T`` for each row ``p`` of weights.

    ``||J||_F^2 = sum_i p_i^2 (1 - p_i)^2 + sum_{i != j} p_i^2 p_j^2 = sum_i p_i^2 (r_i^2 + R_i)`` with
    ``r_i = sum_{j != i} p_j`` (= 1 - p_i) and ``R_i = sum_{j != i} p_j^2``, both summed without subtracting, so a
    saturated row (p close to one-hot) keeps its tiny norm instead of cancelling to 0. Shape ``(..., S) -> (...)``.
    """
    r = _exclusive_sum(weights)
    big_r = _exclusive_sum(weights * weights)
    return (weights.square() * (r.square() + big_r)).sum(-1).sqrt()


def _rows(d_k: int, n: int, S: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """One block of n queries ``(n, 1, d_k)``, their keys ``(n, S, d_k)`` and dummy values ``(n, S, 1)``."""
    q = torch.randn(n, 1, d_k, generator=generator, dtype=torch.float64)
    k = torch.randn(n, S, d_k, generator=generator, dtype=torch.float64)
    return q, k, torch.zeros(n, S, 1, dtype=torch.float64)


def _weights(q: Tensor, k: Tensor, v: Tensor, scale: float | None) -> Tensor:
    """The softmax weights ``(n, S)`` of the project's SDPA (eq. 1 with the given scale; None: 1/sqrt(d_k))."""
    out = scaled_dot_product_attention(q, k, v, scale=scale, impl="naive", return_weights=True)
    return out.weights[:, 0]  # (n, 1, S) -> (n, S)


def _summarise(weights: list[Tensor]) -> dict[str, float]:
    p = torch.cat(weights)  # (N, S)
    jac = softmax_jacobian_norm(p)
    top = p.amax(-1)
    return {
        "entropy": entropy(p).mean().item(),
        "max_weight": top.mean().item(),
        "saturated_fraction": (top > SATURATED).double().mean().item(),
        "jacobian_median": jac.median().item(),
        "jacobian_mean": jac.mean().item(),
    }


def run(cfg: Config) -> dict[str, Any]:
    resolve_device(cfg.device)  # validates; this is cheap arithmetic on the CPU
    S = cfg.n_keys
    blocks = [min(_CHUNK, cfg.n_queries - i) for i in range(0, cfg.n_queries, _CHUNK)]
    bar = tqdm(total=(len(cfg.d_ks) + 1) * cfg.seeds * len(blocks), disable=not sys.stderr.isatty(), leave=False)
    variance, per_dk = [], {"unscaled": [], "scaled": []}
    for i, d_k in enumerate(cfg.d_ks):
        sums = [0.0, 0.0, 0]  # sum of q.k, sum of (q.k)^2, count
        rows: dict[str, list[Tensor]] = {"unscaled": [], "scaled": []}
        for s in range(cfg.seeds):
            gen = torch.Generator().manual_seed(1_000 * (cfg.seed + s) + i)
            for n in blocks:
                q, k, v = _rows(d_k, n, S, gen)
                dots = q @ k.transpose(-2, -1)  # (n, 1, d_k) @ (n, d_k, S) -> (n, 1, S): the unscaled q.k
                sums[0] += dots.sum().item()
                sums[1] += dots.square().sum().item()
                sums[2] += dots.numel()
                rows["unscaled"].append(_weights(q, k, v, scale=1.0))
                rows["scaled"].append(_weights(q, k, v, scale=None))
                bar.update()
        mean = sums[0] / sums[2]
        variance.append((sums[1] - sums[2] * mean**2) / (sums[2] - 1))
        for kind in rows:
            per_dk[kind].append(_summarise(rows[kind]))

    sweep_rows: dict[float, list[Tensor]] = {tau: [] for tau in cfg.taus}
    for s in range(cfg.seeds):
        gen = torch.Generator().manual_seed(1_000 * (cfg.seed + s) + 999)
        for n in blocks:
            q, k, v = _rows(cfg.tau_d_k, n, S, gen)
            for tau in cfg.taus:  # scale = 1 / (tau sqrt(d_k)): the same scores at every temperature
                sweep_rows[tau].append(_weights(q, k, v, scale=1.0 / (tau * math.sqrt(cfg.tau_d_k))))
            bar.update()
    bar.close()
    sweep = [_summarise(sweep_rows[tau]) for tau in cfg.taus]

    series = {
        kind: {key: [row[key] for row in per_dk[kind]] for key in per_dk[kind][0]} for kind in ("unscaled", "scaled")
    }
    metrics = _metrics(cfg, variance, series, sweep)
    verdict = _verdict(cfg, metrics, variance, series, sweep)
    held = all(verdict.values())
    return {
        "held": held,
        "metrics": metrics,
        "setup": _setup(cfg),
        "summary": _summary(cfg, metrics, verdict, held),
        "data": {
            "d_ks": list(cfg.d_ks),
            "n_keys": S,
            "log_n_keys": math.log(S),
            "variance": variance,
            "series": series,
            "taus": list(cfg.taus),
            "tau_d_k": cfg.tau_d_k,
            "sweep": {key: [row[key] for row in sweep] for key in sweep[0]},
            "verdict": verdict,
        },
    }


def _metrics(cfg: Config, variance: list[float], series: dict, sweep: list[dict]) -> dict[str, Any]:
    m: dict[str, Any] = {
        "variance_slope": round(loglog_slope(list(cfg.d_ks), variance), 4),
        "log_S": math.log(cfg.n_keys),
    }
    for d_k, var in zip(cfg.d_ks, variance, strict=True):
        m[f"var_over_dk/{d_k}"] = round(var / d_k, 4)
    for kind, s in series.items():
        for j, d_k in enumerate(cfg.d_ks):
            for key in ("entropy", "max_weight", "saturated_fraction"):
                m[f"{kind}/{key}/{d_k}"] = round(s[key][j], 4)
            for key in ("jacobian_median", "jacobian_mean"):
                m[f"{kind}/{key}/{d_k}"] = float(f"{s[key][j]:.4g}")
    for kind, s in series.items():
        m[f"{kind}/entropy_ratio_first_to_last"] = round(s["entropy"][0] / s["entropy"][-1], 3)
        m[f"{kind}/jacobian_median_ratio_first_to_last"] = float(
            f"{s['jacobian_median'][0] / s['jacobian_median'][-1]:.4g}"
        )
    for tau, row in zip(cfg.taus, sweep, strict=True):
        m[f"sweep/entropy/tau={tau:g}"] = round(row["entropy"], 4)
        m[f"sweep/max_weight/tau={tau:g}"] = round(row["max_weight"], 4)
    return m


def _verdict(cfg: Config, m: dict, variance: list[float], series: dict, sweep: list[dict]) -> dict[str, bool]:
    sc, un = series["scaled"], series["unscaled"]

    def flat(xs: list[float]) -> bool:
        return all(abs(x / xs[0] - 1) <= cfg.flat_tolerance for x in xs)

    ent = [row["entropy"] for row in sweep]
    top = [row["max_weight"] for row in sweep]
    return {
        "variance_grows_as_d_k": abs(m["variance_slope"] - 1) <= cfg.slope_tolerance
        and all(abs(v / d - 1) <= cfg.variance_tolerance for v, d in zip(variance, cfg.d_ks, strict=True)),
        "scaled_entropy_flat": flat(sc["entropy"]),
        "scaled_gradient_flat": flat(sc["jacobian_median"]),
        "unscaled_entropy_collapses": un["entropy"][0] >= cfg.collapse_factor * un["entropy"][-1],
        "unscaled_gradient_vanishes": un["jacobian_median"][0] >= cfg.collapse_factor * un["jacobian_median"][-1],
        "temperature_orders_sharpness": all(a <= b for a, b in pairwise(ent)) and all(a >= b for a, b in pairwise(top)),
    }


def _setup(cfg: Config) -> str:
    return (
        f"q and S={cfg.n_keys} keys with i.i.d. N(0,1) components (float64), {cfg.n_queries} queries per head size "
        f"and seed, {cfg.seeds} seed(s), d_k in {list(cfg.d_ks)}. Weights from attnlab's scaled_dot_product_attention "
        f"(impl='naive', return_weights=True) with scale=1 (unscaled) and 1/sqrt(d_k) (scaled). Per row: entropy "
        f"(max log S = {math.log(cfg.n_keys):.3f}), largest weight, saturated if it exceeds {SATURATED:g}, and the "
        f"Frobenius norm of the softmax Jacobian d weights / d scores (median and mean over rows). Variance of q.k "
        f"pooled over all (query, key) pairs; slope of log var on log d_k by least squares. Temperature sweep at "
        f"d_k={cfg.tau_d_k}: scale = 1/(tau sqrt(d_k)) for tau in {[f'{t:g}' for t in cfg.taus]}."
    )


def _summary(cfg: Config, m: dict, verdict: dict[str, bool], held: bool) -> str:
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
    if held:
        parts.append("Every part of the claim held.")
    else:
        failed = [k for k, v in verdict.items() if not v]
        parts.append(
            "Not every part held: "
            + ", ".join(failed)
            + f" (flat: within {100 * cfg.flat_tolerance:g}% of the d_k={d0} value; collapse: at least "
            f"{cfg.collapse_factor:g}x smaller at d_k={d1})."
        )
    return " ".join(parts)


def plot(result: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    data = result["data"]
    d_ks, series = data["d_ks"], data["series"]
    colors = {"unscaled": "tab:red", "scaled": "tab:blue"}
    labels = {"unscaled": "unscaled  q.k", "scaled": "scaled  q.k / sqrt(d_k)"}

    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    ax.plot(d_ks, d_ks, "-", color="0.75", lw=5, label="y = d_k (footnote 4)")
    ax.plot(d_ks, data["variance"], "o-", color=colors["unscaled"], label="Var(q.k), measured")
    ax.plot(
        d_ks,
        [v / d for v, d in zip(data["variance"], d_ks, strict=True)],
        "s-",
        color=colors["scaled"],
        label="Var(q.k / sqrt(d_k))",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("d_k")
    ax.set_ylabel("variance of the score")
    ax.set_title(f"Score variance grows as d_k (slope {result['metrics']['variance_slope']:.3f})")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)

    fig2, axes = plt.subplots(1, 3, figsize=(13.5, 3.9))
    for kind in ("unscaled", "scaled"):
        s = series[kind]
        axes[0].plot(d_ks, s["entropy"], "o-", color=colors[kind], label=labels[kind])
        axes[1].plot(d_ks, s["max_weight"], "o-", color=colors[kind], label=labels[kind])
        axes[2].plot(d_ks, s["jacobian_median"], "o-", color=colors[kind], label=f"{kind}, median")
        axes[2].plot(d_ks, s["jacobian_mean"], "--", color=colors[kind], alpha=0.6, label=f"{kind}, mean")
    axes[0].axhline(data["log_n_keys"], ls=":", color="k", label="log S (uniform)")
    axes[1].axhline(1 / data["n_keys"], ls=":", color="k", label="1/S (uniform)")
    axes[2].set_yscale("log")
    for a, title, ylabel in zip(
        axes,
        ("Softmax entropy", "Largest weight", "Softmax Jacobian ||d p / d s||_F"),
        ("entropy (nats)", "mean max_j p_j", "Frobenius norm"),
        strict=True,
    ):
        a.set_xscale("log", base=2)
        a.set_xlabel("d_k")
        a.set_ylabel(ylabel)
        a.set_title(title)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    fig2.suptitle(f"S = {data['n_keys']} keys: unscaled scores saturate the softmax as d_k grows")
    fig2.tight_layout()

    fig3, ax3 = plt.subplots(figsize=(6.4, 4.2))
    taus, sw = data["taus"], data["sweep"]
    ax3.plot(taus, sw["entropy"], "o-", color="tab:purple", label="entropy (nats)")
    ax3.axhline(data["log_n_keys"], ls=":", color="tab:purple", alpha=0.6, label="log S")
    ax3.set_xscale("log", base=2)
    ax3.set_xlabel("temperature tau   (weights = softmax(q.k / (tau sqrt(d_k))))")
    ax3.set_ylabel("entropy (nats)", color="tab:purple")
    ax4 = ax3.twinx()
    ax4.plot(taus, sw["max_weight"], "s-", color="tab:orange", label="largest weight")
    ax4.set_ylabel("mean largest weight", color="tab:orange")
    ax4.set_ylim(0, 1.02)
    tau_unscaled = 1 / math.sqrt(data["tau_d_k"])
    ax3.axvline(1.0, ls="--", color="tab:blue", alpha=0.7, label="tau = 1 (scaled)")
    ax3.axvline(tau_unscaled, ls="--", color="tab:red", alpha=0.7, label=f"tau = 1/sqrt({data['tau_d_k']}) (unscaled)")
    lines = ax3.get_legend_handles_labels()
    more = ax4.get_legend_handles_labels()
    ax3.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    ax3.set_title(f"Temperature sweep at d_k = {data['tau_d_k']}, S = {data['n_keys']}")
    ax3.grid(True, which="both", alpha=0.3)
    return {"variance": fig, "saturation": fig2, "temperature": fig3}


SPEC = ExperimentSpec(
    name="scaling",
    title="Why scale by 1/sqrt(d_k)",
    claim=(
        "Scaling the dot products by 1/sqrt(d_k) keeps the softmax out of saturation: unscaled scores have a "
        "variance that grows with d_k and push the softmax into regions with extremely small gradients."
    ),
    source="Seed 001 (chapter 3), section 3.3; Vaswani et al. 2017, section 3.2.1 and footnote 4",
    config_cls=Config,
    run=run,
    plot=plot,
)

__all__ = ["SPEC", "Config", "entropy", "plot", "run", "softmax_jacobian_norm"]
