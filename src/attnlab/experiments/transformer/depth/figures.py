"""The figures of ``depth``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import figure, style


def plot(result: dict[str, Any]) -> dict[str, Any]:
    from matplotlib.ticker import FormatStrFormatter

    data = result["data"]
    depths, params, fit = data["depths"], data["params"], data["fit"]
    fig, ax = figure(5.6, 4.2)
    ax.plot(depths, params, "o", color="tab:blue", label="model's parameter count")
    xs = [0, max(depths)]
    ax.plot(
        xs,
        [fit["slope"] * x + fit["intercept"] for x in xs],
        "--",
        color="tab:red",
        label=f"fit: {fit['slope']:,.0f} L + {fit['intercept']:,.0f}",
    )
    style(ax, "depth L (blocks)", "parameters", "Parameters grow linearly with depth", grid="major")

    fig2, (a, b) = figure(5.5, 4.2, ncols=2, layout="constrained")
    n, val, slope = data["non_embedding_params"], data["val_loss"], data["loglog_slope"]
    a.plot(n, val, "o-", color="tab:blue")
    for d, x, y in zip(depths, n, val, strict=True):
        a.annotate(f"L={d}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    style(
        a,
        "non-embedding parameters",
        "validation loss (nats/char)",
        f"Loss against size, same budget (log-log slope {slope:.3f})" if slope is not None else "Loss",
        logx=10,
        logy=True,
    )
    a.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))  # plain numbers on a narrow log range
    a.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
    for d, hist in zip(depths, data["history"], strict=True):
        b.plot([h["iter"] for h in hist], [h["val"] for h in hist], "o-", label=f"L={d}")
    style(b, "iteration", "validation loss", "Validation loss during training", grid="major")
    return {"params": fig, "loss": fig2}


__all__ = ["plot"]
