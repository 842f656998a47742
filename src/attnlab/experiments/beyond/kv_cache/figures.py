"""The figures of ``kv-cache``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import COLORS, figure, loglog, style

ORDER = ("mha", "gqa", "mqa", "mla", "window")


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data, m = result["data"], result["metrics"]
    variants, lengths = data["variants"], data["lengths"]
    size = m["element_size"]

    fig, (a, b) = figure(5.4, 4.2, ncols=2, layout="constrained")
    growing = [v for v in ORDER if variants[v]["formula"]["per_token"] is not None]
    measured = [variants[v]["elements"] for v in growing]
    bars = a.bar(growing, measured, color=[COLORS.get(v, "tab:gray") for v in growing])
    a.plot(growing, [variants[v]["formula"]["per_token"] for v in growing], "k_", markersize=28, label="formula")
    for bar, v in zip(bars, growing, strict=True):
        label = f"{variants[v]['elements']:,}\n{variants[v]['formula']['text']}"
        a.annotate(label, (bar.get_x() + 0.4, bar.get_height()), ha="center", va="bottom", fontsize=7)
    style(a, "attention", "elements per token per layer", "KV cache per token, measured", logy=True, grid="major")
    a.set_ylim(top=max(measured) * 8)

    budget = data["budget_bytes"] / result["config"]["budget_layers"]  # per layer
    reach = max(m[f"longest_context/{v}"] for v in growing)
    for v in ORDER:
        per_layer = [row[0] for row in variants[v]["bytes"]]  # the first block's cache at each length (measured)
        b.plot(lengths, per_layer, "o", color=COLORS.get(v), label=v)
        if v == "window":  # constant: the same bytes at any length
            b.plot([lengths[0], reach], [per_layer[0]] * 2, "--", color=COLORS.get(v), lw=1)
        else:  # linear in the length, up to where it fills the budget: the longest context
            end = m[f"longest_context/{v}"]
            b.plot([lengths[0], end], [per_layer[0], per_layer[0] * end / lengths[0]], "--", color=COLORS.get(v), lw=1)
    b.axhline(budget, color="k", ls=":", lw=1, label=f"budget / layers ({budget / 2**20:,.0f} MiB)")
    loglog(b, "context length (tokens)", f"cache bytes per layer ({size}-byte elements)",
           "Measured (dots) and extended to the budget")  # fmt: skip
    figs = {"cache": fig}

    d = data["deepseek"]
    fig2, ax = figure(6.4, 4.2)
    labels = ["DeepSeek 67B\nGQA, BF16", "DeepSeek-V2\nMLA, BF16", "DeepSeek-V2\nMLA, 6 bits"]
    values = [d["67b_bytes_per_token"], d["v2_bytes_per_token"] * 16 / 6, d["v2_bytes_per_token"]]
    bars = ax.bar(labels, [x / 1024 for x in values], color=["tab:blue", "tab:purple", "tab:purple"])
    for bar, x in zip(bars, values, strict=True):
        ax.annotate(f"{x / 1024:,.1f} KiB", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=8)  # fmt: skip
    style(ax, "", "KV cache per token, whole model (KiB)",
          f"{100 * d['reduction']:.1f}% smaller as deployed (paper: {100 * d['paper_reduction']:.1f}%)",
          grid="major")  # fmt: skip
    figs["deepseek"] = fig2
    return figs


__all__ = ["plot"]
