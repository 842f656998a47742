"""The figures of ``experts``, drawn from the saved result: validation loss against the number of experts (at
equal compute), the total and active parameters beside Mixtral's, and the router's load per expert."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.figures import annotated_heatmap, figure, style


def plot(result: dict[str, Any]) -> dict[str, Any]:
    data, m = result["data"], result["metrics"]
    experts = data["experts"]
    figs = {}
    losses = [data["val_loss"][str(E)] for E in experts]
    if losses[0]:
        figs["loss"] = _loss(experts, losses, data["val_loss_mean"])
    figs["params"] = _params(data, m)
    if data["loads"]:
        figs["balance"] = _balance(data)
    return figs


def _loss(experts: list[int], losses: list[list[float]], mean: list[float]) -> Any:
    fig, ax = figure(5.8, 4.2)
    ax.plot(experts, mean, "o-", color="tab:blue", label=f"mean over {len(losses[0])} seed(s)")
    if len(losses[0]) > 1:
        ax.fill_between(experts, [min(v) for v in losses], [max(v) for v in losses], color="tab:blue", alpha=0.2,
                        linewidth=0, label="min-max over seeds")  # fmt: skip
    style(ax, "experts E (1 = dense; k of them per token)", "validation loss (nats/char)",
          "Loss at equal compute per token", logx=2)  # fmt: skip
    return fig


def _params(data: dict[str, Any], m: dict[str, Any]) -> Any:
    experts = data["experts"]
    fig, ax = figure(5.8, 4.2)
    total = [data["params"][str(E)]["total"] for E in experts]
    active = [data["params"][str(E)]["active"] for E in experts]
    ax.plot(experts, total, "o-", color="tab:red", label="total parameters")
    ax.plot(experts, active, "s--", color="tab:green", label="active per token")
    ratio = m["total_over_active/mixtral"]
    ax.set_title(f"Parameters against experts (Mixtral 8x7B: {m['mixtral_total'] / 1e9:.1f}B total, "
                  f"{m['mixtral_active'] / 1e9:.1f}B active, x{ratio})", fontsize=9)  # fmt: skip
    style(ax, "experts E", "parameters", None, logx=2)
    return fig


def _balance(data: dict[str, Any]) -> Any:
    top = str(data["experts"][-1])
    loads = data["loads"][top]  # [L][E]
    fig, ax = figure(0.6 * len(loads[0]) + 2.5, 0.5 * len(loads) + 1.8)
    E = len(loads[0])
    shares = [[E * f for f in row] for row in loads]  # 1 = the expert's fair share
    image = annotated_heatmap(ax, shares, 0.0, 2.0, "coolwarm")
    fig.colorbar(image, ax=ax, label="load / fair share")
    ax.set_xlabel("expert")
    ax.set_ylabel("layer")
    ax.set_title(f"Router load, E={top} (seed {data['seeds'][0]}, validation)", fontsize=9)
    return fig


__all__ = ["plot"]
