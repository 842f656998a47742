"""The figures of ``long-range``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import COLORS, band, figure, style

# distinct markers and widths, so that models with equal accuracies (often 1.0) stay visible on top of each other
STYLES = {
    "rnn": {"marker": "o", "linewidth": 1.6},
    "lstm": {"marker": "s", "markersize": 8, "linewidth": 3.0},
    "gru": {"marker": "^", "linewidth": 1.4},
    "attention": {"marker": "D", "linewidth": 1.6},
}


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data = result["data"]
    d = data["distances"]
    fig, ax = figure()
    for name, r in data["results"].items():
        size = "C" if name == "attention" else "H"  # the attention model's width, the cells' hidden size
        label = f"{name.upper()} ({size}={data['hidden_size'][name]}, {data['params'][name]:,} params)"
        band(ax, d, r["accuracy"], COLORS.get(name), label=label, **STYLES.get(name, {"marker": "o"}))
    ax.axhline(data["chance"], color="gray", linestyle="--", label=f"chance (1/{round(1 / data['chance'])})")
    ax.axhline(data["solve"], color="k", linestyle=":", lw=0.8, label=f"solved (>= {data['solve']:g})")
    style(
        ax,
        "distance d (distractors between the symbol and the query)",
        "held-out accuracy",
        "Recall at distance d, each model trained at each d",
        ylim=(0, 1.03),
        legend="small",
    )

    fig2, axes = figure(4.0, 3.4, ncols=len(d), sharey=True, squeeze=False)
    for ax2, dist, k in zip(axes[0], d, range(len(d)), strict=True):
        for name, r in data["results"].items():
            curve = r["curves"][k]
            ax2.plot([p[0] for p in curve], [p[1] for p in curve], color=COLORS.get(name), label=name.upper())
        style(
            ax2,
            "training step",
            "held-out accuracy" if k == 0 else "",
            f"d = {dist}",
            ylim=(0, 1.03),
            legend=7 if k == 0 else None,
        )
    fig2.suptitle("Training at each distance until solved or out of budget (first seed)")
    fig2.tight_layout()
    return {"accuracy": fig, "training": fig2}


__all__ = ["plot"]
