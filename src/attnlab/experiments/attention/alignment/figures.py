"""The figures of ``alignment``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import figure, style


def _map(ax: Any, payload: dict[str, Any], rotation: int = 0) -> None:
    """One attention map (target rows x source columns) of the viewer's payload, in grey."""
    ax.imshow(payload["layers"][0][0], cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")  # (T, S)
    keys = [c if c != " " else "␣" for c in payload["key_tokens"]]
    ax.set_xticks(range(len(keys)), keys, rotation=rotation)
    ax.set_yticks(range(len(payload["query_tokens"])), payload["query_tokens"])
    ax.tick_params(labelsize=7)


def plot(result: dict[str, Any]) -> dict[str, Any]:
    from matplotlib.patches import Rectangle

    data = result["data"]
    figs: dict[str, Any] = {}
    maps, payloads = data["maps"], data["viewer"]
    n = len(maps)
    cols = min(3, n)
    fig, axes = figure(5.2, 3.3, ncols=cols, nrows=-(-n // cols), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        info = maps[k]
        _map(ax, payloads[k])
        for t, gold in enumerate(info["gold"]):  # the gold field of each target digit, outlined
            if gold:
                ax.add_patch(
                    Rectangle((min(gold) - 0.5, t - 0.5), len(gold), 1, fill=False, edgecolor="tab:red", lw=1.2)
                )
        mark = "correct" if info["correct"] else f"wrong: {info['prediction']}"
        ax.set_title(f"{info['format']} ({mark})", fontsize=9)
    fig.suptitle(f"{data['attention']} attention on dates (rows: target, columns: source; red: the gold field)")
    fig.tight_layout()
    figs["dates"] = fig

    fig2, ax2 = figure(7.0, 3.8)
    names = list(data["by_format"])
    x = range(len(names))
    for offset, key, label, color in (
        (-0.27, "argmax", "argmax in gold field", "tab:blue"),
        (0.0, "mass", "mass on gold field", "tab:green"),
        (0.27, "chance", "chance (uniform attention)", "tab:gray"),
    ):
        ax2.bar(
            [i + offset for i in x], [data["by_format"][f][key] for f in names], width=0.27, label=label, color=color
        )
    ax2.set_xticks(list(x), names, rotation=20, fontsize=8)
    ax2.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    style(
        ax2,
        "",
        "fraction (target digits)",
        "Agreement of the attention with the gold date alignment, by source format",
        ylim=(0, 1.3),
        legend=None,
        grid="major",
    )
    ax2.legend(fontsize="small", loc="upper center", ncol=3)
    fig2.tight_layout()
    figs["agreement"] = fig2

    extra = payloads[n:]  # German -> English maps, when they were made
    if extra:
        fig3, axes3 = figure(4.6, 4.2, ncols=len(extra), squeeze=False)
        for ax, payload in zip(axes3.flat, extra, strict=True):
            _map(ax, payload, rotation=60)
        fig3.suptitle(f"{data['attention']} attention, German -> English (rows: output, columns: source)")
        fig3.tight_layout()
        figs["de_en"] = fig3
    return figs


__all__ = ["plot"]
