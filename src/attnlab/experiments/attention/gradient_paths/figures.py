"""The figures of ``gradient-paths``, drawn from the saved result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import COLORS, figure, style


def _when(data: dict[str, Any], state: str) -> str:
    return "at initialisation" if state == "init" else f"after {data['train_steps']} training steps"


def _per_state(data: dict[str, Any], draw: Any, xlabel: str, over: str) -> Any:
    """One panel per state (initialisation, trained), ``draw(ax, model, its probe)`` for every model."""
    fig, axes = figure(5.4, 4.0, ncols=len(data["states"]), squeeze=False)
    for ax, state in zip(axes[0], data["states"], strict=True):
        for name, r in data["results"][state].items():
            draw(ax, name, r)
        ylabel = f"||dL / dx_j|| ({over})" if state == "init" else ""
        style(ax, xlabel, ylabel, _when(data, state), logy=True, legend="small")
    fig.tight_layout()
    return fig


def plot(result: dict[str, Any]) -> dict[str, Any]:
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import MaxNLocator

    data = result["data"]
    states, S = data["states"], data["src_len"]
    figs: dict[str, Any] = {}

    def positions(ax: Any, name: str, r: dict[str, Any]) -> None:
        ax.plot(range(S), r["g"], marker=".", color=COLORS.get(name), label=f"{name} (far/near {r['far_near']:.2g})")

    def distance(ax: Any, name: str, r: dict[str, Any]) -> None:
        ds = list(range(len(r["by_distance"])))
        ax.plot(ds, r["by_distance"], "o", color=COLORS.get(name), ms=4)
        fit = [r["by_distance"][0] * 10 ** (r["slope"] * k) for k in ds]
        ax.plot(ds, fit, "-", color=COLORS.get(name), alpha=0.6, label=f"{name}: x{10 ** r['slope']:.2f}/step")

    figs["positions"] = _per_state(data, positions, "source position j", "whole target, mean over strings")
    figs["positions"].suptitle(f"Gradient reaching each source token ({data['task']}, length {S})")
    figs["distance"] = _per_state(data, distance, "d = min(j, S-1-j): recurrent steps to the fixed vector",
                                  "mean over j at distance d")  # fmt: skip

    models = list(data["results"][states[0]])
    fig3, axes3 = figure(3.9, 3.4, ncols=len(models), nrows=len(states), squeeze=False, layout="constrained")
    for row, state in zip(axes3, states, strict=True):
        grads = [data["results"][state][name]["G"] for name in models]
        values = [v for G in grads for r in G for v in r if v > 0]
        norm = LogNorm(vmin=max(min(values), max(values) * 1e-4), vmax=max(values))  # one scale per row
        for ax, name, G in zip(row, models, grads, strict=True):
            im = ax.imshow(G, aspect="auto", cmap="viridis", norm=norm, interpolation="nearest")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("source position j")
            ax.set_ylabel("target step t")
            ax.set_title(f"{name} ({_when(data, state)})", fontsize=10)
        fig3.colorbar(im, ax=list(row), fraction=0.03)
    fig3.suptitle("||dL_t / dx_j||: the loss of target step t reaching source token j")
    figs["steps"] = fig3
    return figs


__all__ = ["plot"]
