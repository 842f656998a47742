"""The figures of ``parallelism``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import COLORS, figure, loglog

MODELS = ("lstm", "attention")


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data = result["data"]
    lengths, s = data["lengths"], data["series"]
    labels = {
        "lstm": f"LSTM block ({data['params']['lstm']:,} params)",
        "attention": f"attention block ({data['params']['attention']:,} params)",
    }

    fig, ax = figure()
    for m in MODELS:
        ax.plot(lengths, [t * 1e3 for t in s[m]["seconds"]], "o-", color=COLORS[m], label=labels[m])
        if len(s[m]["seconds_at"]) > 1:  # each thread count tried, faint; the solid line is the faster
            for t, secs in s[m]["seconds_at"].items():
                ax.plot(
                    lengths,
                    [x * 1e3 for x in secs],
                    ":" if t == "1" else "--",
                    color=COLORS[m],
                    alpha=0.4,
                    label=f"  {t} thread(s)",
                )
    loglog(
        ax, "sequence length T", "training step (ms, median)", f"Training-step time against T ({result['device_name']})"
    )

    fig2, ax2 = figure(6.4, 4.0)
    lo, hi = data["claimed_ratio"]
    ax2.axhspan(lo, hi, color="tab:green", alpha=0.15, label=f"claimed {lo:g}-{hi:g}x")
    ax2.axhline(1.0, color="k", lw=0.8, ls=":")
    ax2.plot(lengths, data["ratio"], "o-", color="k", label="measured LSTM / attention")
    loglog(
        ax2,
        "sequence length T",
        "time ratio LSTM / attention",
        f"Speed-up of attention over the LSTM at equal parameters ({result['device_name']})",
    )

    fig3, ax3 = figure(6.4, 4.0)
    for m in MODELS:
        ax3.plot(lengths, s[m]["matmul_depth"], "o-", color=COLORS[m], label=labels[m])
    title = "Sequential steps in one training step (longest dependent chain)"
    loglog(ax3, "sequence length T", "dependent matrix products per step", title)
    return {"time": fig, "ratio": fig2, "sequential": fig3}


__all__ = ["plot"]
