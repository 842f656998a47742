"""The figures of ``scaling``, drawn from the saved result."""

from __future__ import annotations

import math
from typing import Any

from attnlab.experiments.figures import COLORS, figure, joint_legend, loglog, style

LABELS = {"unscaled": "unscaled  q.k", "scaled": "scaled  q.k / sqrt(d_k)"}


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data = result["data"]
    d_ks, series = data["d_ks"], data["series"]

    fig, ax = figure(5.6, 4.2)
    ax.plot(d_ks, d_ks, "-", color="0.75", lw=5, label="y = d_k (footnote 4)")
    ax.plot(d_ks, data["variance"], "o-", color=COLORS["unscaled"], label="Var(q.k), measured")
    ax.plot(
        d_ks,
        [v / d for v, d in zip(data["variance"], d_ks, strict=True)],
        "s-",
        color=COLORS["scaled"],
        label="Var(q.k / sqrt(d_k))",
    )
    loglog(
        ax,
        "d_k",
        "variance of the score",
        f"Score variance grows as d_k (slope {result['metrics']['variance_slope']:.3f})",
    )

    fig2, axes = figure(4.5, 3.9, ncols=3)
    for kind in ("unscaled", "scaled"):
        s = series[kind]
        axes[0].plot(d_ks, s["entropy"], "o-", color=COLORS[kind], label=LABELS[kind])
        axes[1].plot(d_ks, s["max_weight"], "o-", color=COLORS[kind], label=LABELS[kind])
        axes[2].plot(d_ks, s["jacobian_median"], "o-", color=COLORS[kind], label=f"{kind}, median")
        axes[2].plot(d_ks, s["jacobian_mean"], "--", color=COLORS[kind], alpha=0.6, label=f"{kind}, mean")
    axes[0].axhline(data["log_n_keys"], ls=":", color="k", label="log S (uniform)")
    axes[1].axhline(1 / data["n_keys"], ls=":", color="k", label="1/S (uniform)")
    style(axes[0], "d_k", "entropy (nats)", "Softmax entropy", logx=2, legend=7)
    style(axes[1], "d_k", "mean max_j p_j", "Largest weight", logx=2, legend=7)
    style(axes[2], "d_k", "Frobenius norm", "Softmax Jacobian ||d p / d s||_F", logx=2, logy=True, legend=7)
    fig2.suptitle(f"S = {data['n_keys']} keys: unscaled scores saturate the softmax as d_k grows")
    fig2.tight_layout()

    fig3, ax3 = figure()
    taus, sw = data["taus"], data["sweep"]
    ax3.plot(taus, sw["entropy"], "o-", color="tab:purple", label="entropy (nats)")
    ax3.axhline(data["log_n_keys"], ls=":", color="tab:purple", alpha=0.6, label="log S")
    ax3.axvline(1.0, ls="--", color=COLORS["scaled"], alpha=0.7, label="tau = 1 (scaled)")
    ax3.axvline(
        1 / math.sqrt(data["tau_d_k"]),
        ls="--",
        color=COLORS["unscaled"],
        alpha=0.7,
        label=f"tau = 1/sqrt({data['tau_d_k']}) (unscaled)",
    )
    style(
        ax3,
        "temperature tau   (weights = softmax(q.k / (tau sqrt(d_k))))",
        "entropy (nats)",
        f"Temperature sweep at d_k = {data['tau_d_k']}, S = {data['n_keys']}",
        logx=2,
        legend=None,
    )
    ax4 = ax3.twinx()
    ax4.plot(taus, sw["max_weight"], "s-", color="tab:orange", label="largest weight")
    ax4.set_ylabel("mean largest weight", color="tab:orange")
    ax4.set_ylim(0, 1.02)
    joint_legend(ax3, ax4, loc="center right")
    return {"variance": fig, "saturation": fig2, "temperature": fig3}


__all__ = ["plot"]
