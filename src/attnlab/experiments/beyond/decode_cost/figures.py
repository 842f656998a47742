"""The figures of ``decode-cost``, drawn from the saved result: time per generated token against the context (with
the fitted slopes), and the machine-independent counts beside it (FLOPs per token, decoding memory)."""

from __future__ import annotations

import math
from typing import Any

from attnlab.experiments.figures import COLORS, figure, loglog

LABELS = {"attention": "softmax attention (KV cache)", "linear": "linear attention", "ssm": "Mamba (SSM)"}
COLOR = {"attention": COLORS["attention"], "linear": "tab:orange", "ssm": "tab:green"}


def _fit_line(ns: list[int], ys: list[float], fit: list[int], slope: float) -> tuple[list[int], list[float]]:
    """The fitted power law through the fit range (its log-mean point and slope), for drawing."""
    pts = [(n, y) for n, y in zip(ns, ys, strict=True) if n in fit]
    mx = sum(math.log(n) for n, _ in pts) / len(pts)
    my = sum(math.log(y) for _, y in pts) / len(pts)
    xs = [fit[0], fit[-1]]
    return xs, [math.exp(my + slope * (math.log(x) - mx)) for x in xs]


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data, m = result["data"], result["metrics"]
    ns, fit = data["lengths"], data["fit_lengths"]
    fig, ax = figure(6.4, 4.4)
    for mixer, s in data["series"].items():
        us = [t * 1e6 for t in s["seconds_per_token"]]
        ax.plot(ns, us, "o-", color=COLOR[mixer], label=f"{LABELS[mixer]}: slope {s['time_slope']:.2f}")
        xs, ys = _fit_line(ns, us, fit, s["time_slope"])
        ax.plot(xs, ys, "--", color=COLOR[mixer], alpha=0.6)
    ax.axvspan(fit[0], fit[-1], color="0.9", zorder=0, label=f"fit range (n >= {fit[0]})")
    if m.get("crossover_time"):
        ax.axvline(
            m["crossover_time"], color="0.4", ls=":", lw=1, label=f"attention crossover n ~ {m['crossover_time']:,}"
        )
    loglog(ax, "context length n (tokens)", "time per generated token (us)", "Decoding cost per token")

    fig2, (a, b) = figure(5.2, 4.2, ncols=2, layout="constrained")
    for mixer, s in data["series"].items():
        a.plot(ns, s["flops_per_token"], "o-", color=COLOR[mixer], label=LABELS[mixer])
        contexts = [n + data["extra_positions"] for n in ns]
        b.plot(contexts, [x / 2**20 for x in s["memory_bytes"]], "o-", color=COLOR[mixer], label=LABELS[mixer])
    loglog(a, "context length n", "FLOPs per token (counted)", "Work per token")
    loglog(b, "context length", "decoding memory per sequence (MiB)", "Cache or state held")
    return {"time": fig, "counts": fig2}


__all__ = ["plot"]
