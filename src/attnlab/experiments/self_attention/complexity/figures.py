"""The figures of ``complexity``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import COLORS, figure, loglog


def plot(result: dict[str, Any]) -> dict[str, Any]:
    rows = result["data"]["rows"]
    figs = {}
    for name, key, label in (("time", "seconds", "time (s)"), ("memory", "peak_mib", "peak extra memory (MiB)")):
        fig, ax = figure()
        for impl, modes in rows.items():
            for mode, line in (("forward", "o-"), ("train", "s--")):
                s = modes[mode]
                if s["n"]:
                    ax.plot(s["n"], s[key], line, color=COLORS.get(impl), label=f"{impl} {mode}")
        what = "Time" if key == "seconds" else "Peak memory"
        loglog(ax, "sequence length n", label, f"{what} of self-attention against n ({result['device_name']})")
        figs[name] = fig
    return figs


__all__ = ["plot"]
