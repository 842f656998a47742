"""The figures of ``dictionary-lookup``, drawn from the saved result."""

from __future__ import annotations

import math
from typing import Any

from attnlab.experiments.attention.dictionary_lookup.learned import tau_label
from attnlab.experiments.figures import figure, joint_legend, style

TAU = "temperature tau   (weights = softmax(q.k / tau))"


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data = result["data"]
    taus, sw = data["taus"], data["sweep"]
    bayes = data["noise"] ** 2

    fig, axes = figure(4.8, 4.0, ncols=3)
    ax = axes[0]
    ax.plot(taus, sw["sq_error"], "o-", color="tab:blue", label="soft lookup |r - v_true|^2")
    ax.axhline(sw["hard_sq_error"], ls="--", color="k", label="hard lookup |v_argmax - v_true|^2")
    ax.axhline(sw["uniform_sq_error"], ls="-.", color="tab:blue", alpha=0.5, label="mean of all values")
    ax.plot(taus, sw["dist_to_hard"], "s-", color="tab:gray", alpha=0.7, label="|r - v_argmax| (to the hard lookup)")
    ax.axvline(bayes, ls=":", color="tab:green", label=f"tau = sigma^2 = {bayes:g} (Bayes)")
    style(ax, TAU, "mean over queries", "Retrieval error", logx=2, logy=True, legend=7)
    ax = axes[1]
    ax.plot(taus, sw["accuracy_argmax"], "o-", color="k", label="argmax of the weights (= hard lookup)")
    ax.plot(taus, sw["accuracy_decoded"], "s-", color="tab:orange", label="blend decoded to nearest value")
    ax.plot(taus, sw["max_weight"], "^--", color="tab:purple", alpha=0.7, label="mean largest weight")
    ax.axhline(1 / data["n_keys"], ls=":", color="tab:purple", alpha=0.6, label="1/N (uniform)")
    style(ax, TAU, "", "Accuracy and sharpness", logx=2, ylim=(0, 1.05), legend=7)
    ax = axes[2]
    floor = 1e-30  # below this (underflow to 0 included) the curve is drawn at the floor
    ax.plot(taus, [max(j, floor) for j in sw["jacobian_median"]], "o-", color="tab:red", label="median ||dr/dq||_F")
    ax.axhline(data["dead_threshold"], ls=":", color="tab:red", alpha=0.6, label="dead threshold")
    style(
        ax, TAU, "", "Gradient of the lookup w.r.t. the query", logx=2, logy=True, ylim=(floor / 10, None), legend=None
    )
    twin = ax.twinx()
    twin.plot(taus, sw["dead_fraction"], "s--", color="tab:brown", alpha=0.7, label="fraction of dead queries")
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("fraction dead", color="tab:brown")
    joint_legend(ax, twin, fontsize=7, loc="center right")
    fig.suptitle(f"Soft vs hard dictionary lookup: N = {data['n_keys']} keys, query noise sigma = {data['noise']:g}")
    fig.tight_layout()

    ex = data["example"]
    near_bayes = min(range(len(taus)), key=lambda i: abs(math.log(taus[i] / bayes)))
    peak = max(range(len(taus)), key=sw["jacobian_median"].__getitem__)
    last = len(taus) - 1
    shown = sorted({0, near_bayes, peak, (peak + last) // 2, last})  # sharpest, Bayes, steepest, blurring, flattest
    fig2, axes2 = figure(3.4, 3.0, ncols=len(shown), sharey=True)
    for a, i in zip(axes2, shown, strict=True):
        w = ex["weights"][i]
        a.bar(
            range(len(w)), w, color=["tab:green" if j == ex["target"] else "tab:blue" for j in range(len(w))], width=1
        )
        a.set_title(f"tau = {tau_label(taus[i])}")
        a.set_xlabel("key")
    axes2[0].set_ylabel("weight (green: the true key)")
    axes2[0].set_ylim(0, 1.02)
    fig2.suptitle("One query's weights over the stored keys")
    fig2.tight_layout()

    fig3, ax3 = figure(6.6, 4.2)
    palette = ("tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:olive")
    for k, tau in enumerate(data["train_taus"]):
        for s, t in enumerate(data["training"]):
            run = t["runs"][tau]
            ax3.plot(
                run["steps"],
                run["accuracy"],
                "-",
                color=palette[k % len(palette)],
                alpha=0.8,
                label=f"soft, tau={tau}" if s == 0 else None,
            )
    hard = [t["hard"]["accuracy"] for t in data["training"]]
    ax3.axhline(sum(hard) / len(hard), ls="--", color="k", label="hard lookup: no gradient, stays at init")
    style(
        ax3,
        "training step",
        "retrieval accuracy (held-out cues)",
        "Learning W_a through the lookup (Luong general score)",
        ylim=(0, 1.02),
        grid="major",
    )
    return {"tradeoff": fig, "weights": fig2, "training": fig3}


__all__ = ["plot"]
