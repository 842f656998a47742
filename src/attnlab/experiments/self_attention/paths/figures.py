"""The figures of ``paths``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import COLORS, figure, loglog

NAMES = {
    "attention": "self-attention (layers)",
    "restricted": "restricted attention (layers)",
    "recurrent": "recurrent (steps)",
    "convolution": "contiguous conv (layers)",
    "dilated": "dilated conv (layers)",
}


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data = result["data"]
    fig, axes = figure(5.25, 4.2, ncols=2)
    for ax, xs, rows, label, what in (
        (axes[0], data["flop_lengths"], data["by_n"], f"sequence length n (d = {data['flop_width']})", "n"),
        (axes[1], data["flop_widths"], data["by_d"], f"width d (n = {data['flop_length']})", "d"),
    ):
        ax.plot(xs, rows["attention"]["core"], "o-", color=COLORS["attention"], label="self-attention (Q K^T, P V)")
        ax.plot(xs, rows["attention"]["flops"], "o--", color=COLORS["attention"], alpha=0.5, label="+ projections")
        ax.plot(xs, rows["recurrent"]["flops"], "s-", color=COLORS["recurrent"], label="recurrent (RNN)")
        ax.plot(xs, rows["convolution"]["flops"], "^-", color=COLORS["convolution"], label="convolution")
        loglog(ax, label, "forward FLOPs", f"FLOPs per layer against {what}", legend=8 if what == "n" else None)

    fig2, ax2 = figure()
    for kind, marker in (("attention", "o"), ("restricted", "D"), ("recurrent", "s"), ("convolution", "^")):
        ax2.plot(data["flop_lengths"], data["by_n"][kind]["matmul_depth"], marker + "-", color=COLORS[kind], label=kind)
    loglog(
        ax2, "sequence length n", "dependent matrix products (one forward)", "Minimum sequential operations per layer"
    )

    fig3, ax3 = figure()
    for kind, p in data["paths"].items():
        if p["n"]:
            ax3.plot(p["n"], p["expected"], "-", color=COLORS[kind], alpha=0.4)
            ax3.plot(p["n"], p["measured"], "o", color=COLORS[kind], label=NAMES[kind])
    title = "Maximum path length, from gradients (dots; lines: expected)"
    loglog(ax3, "sequence length n", "path length from token 1 to token n", title)
    return {"flops": fig, "sequential": fig2, "path_length": fig3}


__all__ = ["plot"]
