"""The figures of ``variants``, drawn from the saved result."""

from __future__ import annotations

import statistics
from typing import Any

from attnlab.experiments.figures import COLORS, figure, style


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data, m = result["data"], result["metrics"]
    variants, val = data["variants"], data["val_loss"]

    fig, ax = figure(6.8, 0.5 * len(variants) + 1.8)
    ref = val["gpt2"]
    if len(ref) > 1:
        ax.axvspan(min(ref), max(ref), color=COLORS["gpt2"], alpha=0.12, lw=0, label="GPT-2's seed range")
    for i, v in enumerate(variants):
        y = len(variants) - 1 - i
        ax.plot(val[v], [y] * len(val[v]), "o", color=COLORS.get(v), alpha=0.6, ms=5)
        ax.plot([statistics.mean(val[v])], [y], "|", color="k", ms=14, mew=2)
    ax.set_yticks(range(len(variants)), list(reversed(variants)))
    seeds = len(data["seeds"])
    style(ax, "validation loss (nats/char; dots: seeds, bar: mean)", "",
          f"Equal parameters, equal budget ({seeds} seed{'s' if seeds > 1 else ''})", grid="major")  # fmt: skip

    fig2, (a, b) = figure(4.6, 0.45 * len(variants) + 1.8, ncols=2, layout="constrained")
    ys = list(range(len(variants)))[::-1]
    colors = [COLORS.get(v, "tab:gray") for v in variants]
    a.barh(ys, [m[f"cache_vs_gpt2/{v}"] for v in variants], color=colors)
    a.set_yticks(ys, variants)
    style(a, "KV cache per layer at the full context / MHA's", "", "Cache", grid="major")
    b.barh(ys, [m[f"decode_tokens_per_s/{v}"] for v in variants], color=colors)
    b.set_yticks(ys, variants)
    threads = ", one thread" if result["device"] == "cpu" else ""
    style(b, f"tokens/s (greedy, batch 1{threads})", "", f"Decoding on {result['device']}", grid="major")
    return {"loss": fig, "cache_speed": fig2}


__all__ = ["plot"]
