"""The measuring of ``long-range``: every model trained at every distance until solved or out of budget, at equal
parameter count (see the package docstring)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attnlab._checks import resolve_device
from attnlab.experiments.recall import train_until_solved
from attnlab.experiments.training import one_thread
from attnlab.models.recall import ATTENTION_HEADS, RecallAttention, RecallRNN, recall_params

# the report may run it beside another experiment: trains on one thread; it measures accuracy and steps, not time
SHARES_CORES = True

GATED = ("lstm", "gru")
ATTENTION = "attention"
FORGET_BIAS = {"lstm": 1.0}  # the LSTM's forget gate starts open (Gers et al. 2000; Jozefowicz et al. 2015)


def build(model: str, hidden: int, cfg: Any, max_distance: int) -> nn.Module:
    """The recall model of kind ``model`` with ``hidden`` units (the attention model's width)."""
    t = cfg.task
    if model == ATTENTION:
        return RecallAttention(t.vocab_size, hidden, max_distance + 2, t.n_symbols)
    return RecallRNN(model, t.vocab_size, cfg.embed_size, hidden, t.n_symbols, FORGET_BIAS.get(model))


def count(model: str, hidden: int, cfg: Any) -> int:
    """The parameters of that model: by formula for the cells, on an instance for attention."""
    if model == ATTENTION:
        return sum(p.numel() for p in build(model, hidden, cfg, max(cfg.distances)).parameters())
    return recall_params(model, cfg.task.vocab_size, cfg.embed_size, hidden, cfg.task.n_symbols)


def solve_hidden_size(model: str, cfg: Any) -> int:
    """The hidden size (the attention model's width, a multiple of its heads) whose parameter count is nearest
    ``cfg.param_budget``: the equal-parameter rule. Counts grow with the size, so the first size past the budget
    and the one before it are the candidates."""
    step = ATTENTION_HEADS if model == ATTENTION else 1
    size = step
    while count(model, size + step, cfg) <= cfg.param_budget and size < 4096:
        size += step
    return min((size, size + step), key=lambda h: (abs(count(model, h, cfg) - cfg.param_budget), h))


def reach(distances: list[int], solved: list[bool]) -> int:
    """The largest distance up to which every listed distance is solved; 0 when even the shortest is not."""
    out = 0
    for d, ok in zip(distances, solved, strict=True):
        if not ok:
            break
        out = d
    return out


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    distances = list(cfg.distances)
    hidden = {m: solve_hidden_size(m, cfg) for m in cfg.models}
    params = {m: count(m, hidden[m], cfg) for m in cfg.models}
    runs: dict[str, list[list[dict]]] = {m: [] for m in cfg.models}  # model -> seed -> distance -> run
    with one_thread(device):
        for s in range(cfg.seeds):
            seed = cfg.seed + s
            for name in cfg.models:
                row = []
                for d in distances:
                    torch.manual_seed(seed)  # the same initialisation stream at every distance
                    model = build(name, hidden[name], cfg, max(distances)).to(device)
                    row.append(train_until_solved(model, cfg.task, cfg.train, d, seed=seed, device=device))
                runs[name].append(row)
    results = {name: _summarise(distances, rows, cfg.seeds) for name, rows in runs.items()}
    verdict = _verdict(cfg, results)
    held = None if verdict is None else all(verdict.values())
    metrics: dict[str, Any] = {"chance": cfg.task.chance}
    for name, r in results.items():
        for d, a, ok, steps in zip(distances, r["accuracy"]["mean"], r["solved"], r["steps"], strict=True):
            metrics[f"acc/{name}/d={d}"] = round(a, 4)
            metrics[f"solved/{name}/d={d}"] = ok
            metrics[f"steps/{name}/d={d}"] = steps
        metrics[f"reach/{name}"] = r["reach"]
        metrics[f"params/{name}"] = params[name]
        metrics[f"hidden/{name}"] = hidden[name]
    metrics["params_spread"] = round((max(params.values()) - min(params.values())) / min(params.values()), 4)
    data = {
        "distances": distances,
        "models": list(cfg.models),
        "results": results,
        "hidden_size": hidden,
        "params": params,
        "chance": cfg.task.chance,
        "solve": cfg.task.solve,
        "verdict": verdict or {},
    }
    return {"held": held, "metrics": metrics, "device": device, "data": data}


def _summarise(distances: list[int], rows: list[list[dict]], seeds: int) -> dict[str, Any]:
    """Per distance over the seeds: accuracy (mean, min, max), solved (in a majority of seeds), mean steps; the
    reach, and the first seed's accuracy curves."""
    cols = list(zip(*rows, strict=True))  # per distance: the runs of every seed
    acc = [[r["accuracy"] for r in col] for col in cols]
    solved = [sum(r["solved"] for r in col) > seeds / 2 for col in cols]
    return {
        "accuracy": {
            "mean": [sum(a) / len(a) for a in acc],
            "min": [min(a) for a in acc],
            "max": [max(a) for a in acc],
        },
        "solved": solved,
        "steps": [round(sum(r["iters"] for r in col) / len(col), 1) for col in cols],
        "reach": reach(distances, solved),
        "curves": [r["curve"] for r in rows[0]],
    }


def _verdict(cfg: Any, results: dict[str, Any]) -> dict[str, bool] | None:
    """The claim from the per-distance outcomes; None without the RNN and a gated cell to compare."""
    gated = [g for g in GATED if g in results]
    if "rnn" not in results or not gated:
        return None
    rnn = results["rnn"]
    verdict = {
        "every_model_solves_the_shortest": all(r["solved"][0] for r in results.values()),
        "rnn_fails_far": not rnn["solved"][-1],
        "gated_reach_further": all(results[g]["reach"] > rnn["reach"] for g in gated),
    }
    if ATTENTION in results:
        verdict["attention_solves_every_distance"] = all(results[ATTENTION]["solved"])
    return verdict


__all__ = ["build", "count", "reach", "run", "solve_hidden_size"]
