"""The figures of ``vanishing-gradients``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import COLORS, figure, style

LABELS = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM (PyTorch init)", "lstm_forget1": "LSTM (forget bias 1)"}


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data = result["data"]
    dist = data["distance"]
    fig, axes = figure(5.4, 4.2, ncols=2, sharey=True)
    for ax, state in zip(axes, ("init", "trained"), strict=True):
        for name, cell in data["cells"].items():
            probe = cell[state]
            ax.plot(dist, [10**v for v in probe["h"]], "-", color=COLORS[name], label=f"{LABELS[name]}: h")
            if "c" in probe:
                ax.plot(dist, [10**v for v in probe["c"]], ":", color=COLORS[name], lw=2, label=f"{LABELS[name]}: c")
        when = "at initialisation" if state == "init" else "after training on the memory task"
        style(ax, "distance d = T - t (steps)", "||dL/dh_t||, ||dL/dc_t||  (geometric mean)", when, logy=True)
    fig.suptitle("Gradient reaching the state d steps back from the last (solid: h; dotted: the LSTM's cell state c)")
    fig.tight_layout()

    fig2, ax2 = figure()
    solve = result["config"]["task"]["solve"]
    for name, cell in data["cells"].items():
        runs = cell["runs"]
        won = sum(run["solved"] for run in runs)
        outcome = (f"{won} of {len(runs)} seeds solved" if len(runs) > 1 else "solved") if won else "budget ran out"
        for i, run in enumerate(runs):  # the first seed drawn bold, the others faint
            curve = run["curve"]
            ax2.plot(
                [p[0] for p in curve],
                [p[1] for p in curve],
                "o-" if i == 0 else "-",
                ms=3,
                lw=1.5 if i == 0 else 0.8,
                alpha=1.0 if i == 0 else 0.4,
                color=COLORS[name],
                label=f"{LABELS[name]} ({outcome})" if i == 0 else None,
            )
    ax2.axhline(solve, ls="--", color="k", lw=0.8, label=f"solved (>= {solve:g})")
    style(
        ax2,
        "training step",
        "held-out accuracy",
        f"Recall the symbol {result['config']['lag']} steps back" + (" (first seed bold)" if len(runs) > 1 else ""),
        ylim=(0, 1.03),
    )

    fig3, ax3 = figure()
    radii = sorted(data["radii"], key=float)
    for k, rho in enumerate(radii):
        shade = k / max(1, len(radii) - 1)
        ax3.plot(dist, [10**v for v in data["radii"][rho]], color=(shade, 0.2, 1 - shade), label=f"rho={rho}")
    style(
        ax3,
        "distance d = T - t (steps)",
        "||dL/dh_t||",
        "tanh RNN, W_hh = rho Q: vanishing below 1, exploding above",
        logy=True,
    )

    fig4, ax4 = figure(6.4, 3.6)
    clip = data["clip"]
    steps = range(1, len(clip["update_unclipped"]) + 1)
    ax4.plot(steps, clip["update_unclipped"], "o-", color=COLORS["rnn"], label="without clipping")
    ax4.plot(steps, clip["update_clipped"], "o-", color=COLORS["lstm"], label="with clip_grad_norm_")
    ax4.axhline(data["update_bound"], ls=":", color="k", label="lr * max_norm")
    style(ax4, "batch", "SGD update norm", "Gradient-norm clipping bounds the update", logy=True)
    return {"decay": fig, "learning": fig2, "exploding": fig3, "clipping": fig4}


__all__ = ["plot"]
