"""The figures of ``recall``, drawn from the saved result: accuracy against the number of pairs per mixer (the
main one), each model's decoding memory beside it, and the accuracy during training."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.beyond.decode_cost.figures import COLOR, LABELS
from attnlab.experiments.figures import band, figure, style


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data = result["data"]
    pairs, sizes = data["pairs"], data["sizes"]
    fig, (a, b) = figure(5.4, 4.2, ncols=2, layout="constrained")
    for mixer, rows in data["accuracy"].items():
        if not rows:
            continue
        cols = list(zip(*rows, strict=True))  # per D, over seeds
        stats = {"mean": data["accuracy_mean"][mixer], "min": [min(c) for c in cols], "max": [max(c) for c in cols]}
        band(a, pairs, stats, COLOR[mixer], marker="o", label=f"{LABELS[mixer]} ({sizes[mixer]['params']:,} params)")
    a.plot(pairs, data["context_guess"], ":", color="0.5", label="a random value of the context (1/D)")
    title = f"Recall against pairs ({len(data['seeds'])} seeds)" if data["seeds"] else "Recall (not trained here)"
    style(a, "key-value pairs D in context", "accuracy on the queries", title, logx=2, ylim=(0, 1.02))
    for mixer, s in sizes.items():
        b.plot(pairs, s["state"], "o-", color=COLOR[mixer], label=LABELS[mixer])
    style(b, "key-value pairs D", "numbers held per layer after the example", "Decoding memory", logx=2, logy=True)
    figs = {"accuracy": fig}
    curves = {k: v for k, v in data["curves"].items() if v}
    if curves:
        fig2, axes = figure(4.0, 3.4, ncols=len(curves), layout="constrained", squeeze=False)
        for ax, (mixer, runs) in zip(axes[0], curves.items(), strict=True):
            history = runs[0]  # the first seed
            for j, D in enumerate(pairs):
                ax.plot([h[0] for h in history], [h[1 + j] for h in history], "o-", ms=3, label=f"D={D}")
            style(ax, "iteration", "accuracy", f"{LABELS[mixer]} (seed {data['seeds'][0]})", ylim=(0, 1.02))
        figs["training"] = fig2
    return figs


__all__ = ["plot"]
