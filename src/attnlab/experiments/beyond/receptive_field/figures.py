"""The figures of ``receptive-field``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import figure, style


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data, m = result["data"], result["metrics"]
    windows, depths, n = data["windows"], data["depths"], data["length"]

    fig, ax = figure()
    for i, w in enumerate(windows):
        color = f"C{i}"
        ax.plot(depths, [m[f"reach/w={w}/L={L}"] for L in depths], "o", color=color, label=f"measured, w={w}")
        ax.plot([0, max(depths)], [0, w * max(depths)], "--", color=color, lw=1, label=f"w L = {w} L")
    ax.axhline(m["reach/full/L=1"], color="k", ls=":", lw=1, label=f"full attention, 1 layer: {n - 1} (all)")
    style(ax, "layers L", "farthest input with a nonzero gradient (positions back)",
          "Receptive field of sliding-window attention through L layers", grid="major")  # fmt: skip

    w = windows[len(windows) // 2]
    fig2, ax2 = figure(7.2, 4.2)
    for i, (L, g) in enumerate(zip(depths, data["grads"][str(w)], strict=True)):
        d = [k for k, x in enumerate(g) if x > 0]  # exact zeros have no place on a log axis
        ax2.plot(d, [g[k] for k in d], "-", color=f"C{i}", lw=1.2, label=f"L={L}")
        ax2.axvline(w * L, color=f"C{i}", ls=":", lw=0.8)
    style(ax2, "distance back from the last position", "gradient norm (zero beyond: not drawn)",
          f"How much of the input arrives, window w={w} (dotted: w L)", logy=True, legend=7)  # fmt: skip
    return {"reach": fig, "gradient": fig2}


__all__ = ["plot"]
