"""The figures of ``pronoun``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import annotated_heatmap, figure, style

BARS = (
    ("model: training words", "val_accuracy", "tab:gray"),
    ("model: held-out words", "heldout_accuracy", "tab:blue"),
    ("strongest link from 'it'", "strongest_link_heldout", "tab:red"),
    ("best single head", "best_head_heldout_resolution", "tab:orange"),
    ("adjective's row", "adjective_best_head_heldout_resolution", "tab:green"),
)


def _with_layer_mean(per_head: list[list[float]], per_layer: list[float]) -> list[list[float]]:
    """``(L, nh)`` and ``(L,)`` -> ``(L, nh + 1)``: each layer's heads, then their average."""
    return [[*row, mean] for row, mean in zip(per_head, per_layer, strict=True)]


def _resolution(data: dict[str, Any]) -> Any:
    seeds = data["seeds"]
    fig, ax = figure(1.4 * len(seeds) + 4.5, 4.2, layout="constrained")
    width = 0.8 / len(BARS)
    for k, (label, key, color) in enumerate(BARS):
        xs = [i + (k - (len(BARS) - 1) / 2) * width for i in range(len(seeds))]
        ax.bar(xs, [sd[key] for sd in seeds], width=width, color=color, label=label)
    ax.axhline(data["chance"], ls=":", color="k", label="chance")
    ax.axhline(data["chance"] + data["margin"], ls="--", color="k", lw=0.8, label="bar for held")
    ax.set_xticks(range(len(seeds)), [f"seed {sd['seed']}" for sd in seeds])
    style(
        ax,
        "",
        "share of sentences resolved (held-out, unless marked)",
        "Who resolves 'it': the model's output, and attention",
        ylim=(0, 1.05),
        legend=None,
        grid="major",
    )
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def _heads(data: dict[str, Any]) -> Any:
    L, nh = data["num_layers"], data["nhead"]
    att = data["attention"]["heldout"]
    head, layer = att["head"], att["layer"]
    gap_h = [[r - o for r, o in zip(*ro, strict=True)] for ro in zip(head["referent"], head["other"], strict=True)]
    gap_l = [r - o for r, o in zip(layer["referent"], layer["other"], strict=True)]
    panels = [
        (title, _with_layer_mean(head[key], layer[key]), 0, 1, "RdBu")
        for title, key in (
            ("points to the referent: all", "resolution"),
            ("... animate referents", "resolution_animate"),
            ("... inanimate referents", "resolution_inanimate"),
        )
    ]
    panels.append(("weight on referent - other", _with_layer_mean(gap_h, gap_l), -1, 1, "PuOr"))
    fig, axes = figure(3.3, 0.7 * L + 2.4, ncols=4, layout="constrained")
    for ax, (title, table, lo, hi, cmap) in zip(axes, panels, strict=True):
        im = annotated_heatmap(ax, table, lo, hi, cmap)
        ax.axvline(nh - 0.5, color="k", lw=1)
        ax.set_xticks(range(nh + 1), [f"H{h + 1}" for h in range(nh)] + ["mean"])
        ax.set_yticks(range(L), [f"layer {i + 1}" for i in range(L)])
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.05)
    fig.suptitle("Attention from 'it' on held-out sentences, per layer and head (first seed; chance share 0.5)")
    return fig


def _example(ex: dict[str, Any], L: int, nh: int) -> Any:
    words, T = ex["words"], len(ex["words"])
    rows, labels = [], []
    for i, heads in enumerate(ex["rows"]):  # (nh, T) per layer
        rows += [*heads, [sum(col) / nh for col in zip(*heads, strict=True)]]
        labels += [f"L{i + 1} H{h + 1}" for h in range(nh)] + [f"L{i + 1} mean"]
    fig, ax = figure(0.6 * T + 2.0, 0.3 * len(rows) + 1.8, layout="constrained")
    im = ax.imshow(rows, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(T), words, rotation=45, ha="right")
    for k, label in enumerate(ax.get_xticklabels()):
        if k in ex["candidates"]:
            label.set_fontweight("bold")
            label.set_color("tab:red" if words[k] == ex["referent"] else "k")
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    for i in range(1, L):
        ax.axhline(i * (nh + 1) - 0.5, color="w", lw=2)
    verdict = "resolved" if ex["resolved"] else "NOT resolved by the model"
    ax.set_title(f"'{' '.join(words)}'\nrow of 'it' (referent in red: {ex['referent']}; {verdict})", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03, label="weight from 'it'")
    return fig


def pretrained_heads(pretrained: dict[str, Any]) -> Any:
    """The pretrained encoder's layer x head accuracy grid (all sentences) with the chosen head outlined."""
    from matplotlib.patches import Rectangle

    data = pretrained["data"]
    grid, (bl, bh) = data["grid"], data["best_head"]
    L, nh = data["num_layers"], data["num_heads"]
    fig, ax = figure(0.6 * nh + 2.5, 0.5 * L + 1.8, layout="constrained")
    im = annotated_heatmap(ax, grid, 0, 1, "RdBu")
    ax.add_patch(Rectangle((bh - 0.5, bl - 0.5), 1, 1, fill=False, ec="k", lw=2))
    ax.set_xticks(range(nh), [f"H{h + 1}" for h in range(nh)])
    ax.set_yticks(range(L), [f"layer {i + 1}" for i in range(L)])
    ax.set_title(
        "all-MiniLM-L6-v2: share of sentences where 'it' attends more to its referent (chance 0.5)\n"
        f"outlined: the head chosen on the selection half; held-out accuracy "
        f"{pretrained['metrics']['best_head_heldout_accuracy']:.2f}",
        fontsize=9,
    )
    fig.colorbar(im, ax=ax, fraction=0.04)
    return fig


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data = result["data"]
    figs = {"resolution": _resolution(data), "heads": _heads(data)}
    for ex in data["examples"]:
        figs[f"map_{ex['name']}"] = _example(ex, data["num_layers"], data["nhead"])
    if "pretrained" in data:
        figs["pretrained_heads"] = pretrained_heads(data["pretrained"])
    return figs


__all__ = ["plot", "pretrained_heads"]
