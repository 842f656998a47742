"""The figures of ``bottleneck``, drawn from the saved result."""

from __future__ import annotations

import math
from typing import Any

from attnlab.experiments.figures import COLORS, figure, style

MARKERS = {"none": "o", "bahdanau": "s", "luong-general": "^"}


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data = result["data"]
    lengths = data["lengths"]
    figs: dict[str, Any] = {}
    fig, axes = figure(5.25, 4.0, ncols=2, sharey=True)
    for name, r in data["synthetic"].items():
        line = {
            "color": COLORS.get(name),
            "marker": MARKERS.get(name, "D"),
            "label": f"{name} (H={r['hidden']}, {r['params']:,} params)",
        }
        axes[0].plot(lengths, r["accuracy"], **line)
        axes[1].plot(lengths, r["token_accuracy"], **line)
    for ax, what in zip(axes, ("exact-match accuracy", "per-token accuracy"), strict=True):
        if data["breakdown_length"] is not None:
            ax.axvline(
                data["breakdown_length"], color=COLORS["none"], ls=":", alpha=0.7, label="no-attention breakdown"
            )
        ax.axvline(sum(data["train_range"]) / 2, color="gray", ls="--", alpha=0.6, label="mean training length")
        style(
            ax,
            "source length",
            "accuracy (greedy, held-out)" if ax is axes[0] else "",
            what,
            ylim=(-0.02, 1.03),
            legend="small" if ax is axes[0] else None,
            grid="major",
        )
    fig.suptitle(f"{data['task'].capitalize()} task at equal parameters and training budget")
    fig.tight_layout()
    figs["accuracy"] = fig

    de_en = data["de_en"]
    if de_en["status"] == "measured":
        fig2, ax2 = figure(6.4, 4.0)
        x = list(range(len(de_en["buckets"])))
        for name, r in de_en["models"].items():
            ys = [math.nan if b is None else b for b in r["bleu_by_bucket"]]
            ax2.plot(x, ys, marker=MARKERS.get(name, "D"), color=COLORS.get(name), label=f"{name} ({r['bleu']:.1f})")
        ax2.set_xticks(x, [f"{b}\n(n={n})" for b, n in zip(de_en["buckets"], de_en["bucket_sizes"], strict=True)])
        style(
            ax2,
            "source length (tokens)",
            "test BLEU (sacrebleu)",
            "German -> English: BLEU by source length (overall in the legend)",
            legend="small",
            grid="major",
        )
        fig2.tight_layout()
        figs["bleu"] = fig2

    fig3, ax3 = figure(6.4, 3.6)
    for name, r in data["synthetic"].items():
        h = r["history"]
        ax3.plot([p["iter"] for p in h], [p["train"] for p in h], color=COLORS.get(name), label=f"{name} (a)")
    if de_en["status"] == "measured":
        for name, r in de_en["models"].items():
            h = r["history"]
            ax3.plot(
                [p["iter"] for p in h], [p["val"] for p in h], color=COLORS.get(name), ls="--", label=f"{name} (b)"
            )
    style(ax3, "training step", "loss (a: train, b: validation)", logy=True, legend="small", grid="major")
    fig3.tight_layout()
    figs["training"] = fig3
    return figs


__all__ = ["plot"]
