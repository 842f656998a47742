"""The figures of ``heads``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import figure, style
from attnlab.experiments.self_attention.heads.measure import MARKER1, MARKER2, QUERY


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data = result["data"]
    hs = data["head_counts"]
    xs = list(range(len(hs)))

    fig, ax = figure(5.6, 4.2)
    means = [sum(data["accuracy"][str(h)]) / len(data["accuracy"][str(h)]) for h in hs]
    ax.bar(xs, means, color="tab:blue", alpha=0.5, label="mean over seeds")
    for x, h in zip(xs, hs, strict=True):
        accs = data["accuracy"][str(h)]
        ax.plot([x] * len(accs), accs, "o", color="tab:blue", label="one seed" if x == 0 else None)
    ax.axhline(data["chance"], ls=":", color="k", label="chance (1/d)")
    ax.axhline(data["one_marker_bayes"], ls="--", color="tab:red", label="best from one marker alone")
    ax.set_xticks(xs, [f"h = {h}\n(head size {data['embed_dim'] // h})" for h in hs])
    style(
        ax,
        "",
        "test accuracy",
        f"argmax(a - b): same width E = {data['embed_dim']}, same budget",
        ylim=(0, 1.02),
        legend=None,
        grid="major",
    )
    ax.legend(fontsize=8, loc="upper left")

    kinds = data["example"]["kinds"]
    ticks = [{MARKER1: "M1", MARKER2: "M2", QUERY: "Q"}.get(k, str(t)) for t, k in enumerate(kinds)]
    fig2, axes = figure(4.6, 3.2, ncols=len(hs), nrows=2, squeeze=False, height_ratios=(1, 1.1), layout="constrained")
    for col, h in enumerate(hs):
        a = axes[0][col]
        im = a.imshow(data["example"]["weights"][str(h)], vmin=0, vmax=1, cmap="viridis", aspect="auto")  # (nh, T)
        a.set_xticks(range(len(kinds)), ticks, fontsize=8)
        a.set_yticks(range(h), [f"head {i + 1}" for i in range(h)])
        a.set_xlabel("key position")
        a.set_title(f"h = {h}: weights on one test example", fontsize=10)
        mass, b, heads = data["mass"][str(h)][0], axes[1][col], range(h)
        b.bar([i - 0.2 for i in heads], mass["marker1"], width=0.4, color="tab:orange", label="marker 1")
        b.bar([i + 0.2 for i in heads], mass["marker2"], width=0.4, color="tab:green", label="marker 2")
        b.set_xticks(list(heads), [f"head {i + 1}" for i in heads])
        b.set_xlim(-0.7, max(h, 2) - 0.3)
        style(b, "", "mean attention mass", f"h = {h}: mean mass per head, test set", ylim=(0, 1.02), grid="major")
    fig2.colorbar(im, ax=[axes[0][c] for c in range(len(hs))], fraction=0.02, label="attention weight")
    fig2.suptitle("Where each head looks (first seed): M1, M2 = the two markers, Q = the query position")
    return {"accuracy": fig, "attention": fig2}


__all__ = ["plot"]
