"""What the lab's figures share: one colour per model, axes finished one way (labels, log scales, grid, legend),
the log-log axes of every cost curve, heatmaps with their numbers written in, and a legend across twin axes.

Every figure is drawn from a saved result only (``plot(result)``), so ``attnlab report --replot`` redraws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# One colour per model or kind, the same in every figure of the report.
COLORS = {
    "rnn": "tab:red",
    "lstm": "tab:blue",
    "lstm_forget1": "tab:cyan",
    "gru": "tab:green",
    "attention": "tab:purple",
    "none": "tab:red",
    "bahdanau": "tab:blue",
    "luong-general": "tab:green",
    "luong-dot": "tab:olive",
    "naive": "tab:red",
    "chunked": "tab:blue",
    "torch": "tab:green",
    "unscaled": "tab:red",
    "scaled": "tab:blue",
    "restricted": "tab:cyan",
    "recurrent": "tab:red",
    "convolution": "tab:green",
    "dilated": "tab:olive",
    # beyond attention: the attention variants (kv-cache, variants) and the blocks (variants)
    "mha": "tab:blue",
    "gpt2": "tab:blue",
    "gqa": "tab:green",
    "mqa": "tab:olive",
    "mla": "tab:purple",
    "window": "tab:cyan",
    "modern": "tab:red",
    "swiglu": "tab:orange",
    "rmsnorm": "tab:pink",
}


def figure(width: float = 6.4, height: float = 4.2, ncols: int = 1, nrows: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots`` with the lab's default size (the size of one axes; ``ncols`` x ``nrows`` multiply it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def style(
    ax: Any,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    *,
    logx: int | None = None,
    logy: bool = False,
    ylim: tuple[float | None, float | None] | None = None,
    legend: float | str | None = 8,
    grid: str = "both",
) -> Any:
    """Finish an axes: labels, title, log scales (``logx``: the base of a log x axis), limits, grid, legend
    (its font size; None: no legend). Returns the axes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logx:
        ax.set_xscale("log", base=logx)
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, which=grid, alpha=0.3)
    if legend is not None and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=legend)
    return ax


def loglog(ax: Any, xlabel: str, ylabel: str, title: str | None = None, **kwargs: Any) -> Any:
    """The axes of a cost curve against a size: log base 2 in x, log in y (a power law is a straight line)."""
    return style(ax, xlabel, ylabel, title, logx=2, logy=True, **kwargs)


def joint_legend(ax: Any, twin: Any, **kwargs: Any) -> None:
    """One legend for an axes and its twin (``ax.twinx()``)."""
    (h1, l1), (h2, l2) = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, **{"fontsize": 8, **kwargs})


def annotated_heatmap(ax: Any, table: Sequence[Sequence[float]], vmin: float, vmax: float, cmap: str) -> Any:
    """``table`` (rows x columns) as an image with each value written in its cell (white on the dark ends of
    the colour map); returns the image for a colour bar."""
    image = ax.imshow(table, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
    for i, row in enumerate(table):
        for j, value in enumerate(row):
            dark = abs((value - vmin) / (vmax - vmin) - 0.5) > 0.3
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if dark else "k")
    return image


def band(ax: Any, xs: Sequence[float], series: dict[str, Sequence[float]], color: str | None, **line: Any) -> None:
    """A mean line with its min-max band (``series``: ``mean``, ``min``, ``max``, e.g. over seeds)."""
    ax.plot(xs, series["mean"], color=color, **line)
    ax.fill_between(xs, series["min"], series["max"], color=color, alpha=0.2, linewidth=0)


__all__ = ["COLORS", "annotated_heatmap", "band", "figure", "joint_legend", "loglog", "style"]
