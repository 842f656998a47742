"""The words of ``long-range``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.words import closing, fill

TITLE = "Long-range recall: accuracy against distance, each model trained at each distance"
CLAIM = (
    "Information from token 1 must traverse every recurrent step to reach a late output: a plain RNN's "
    "long-range signal degrades with distance, and LSTM/GRU gating mitigates it; attention puts token 1 one "
    "step away."
)
SOURCE = "Seed 002 §4.2 (C7); seed 001 objectives 1-2; Hochreiter & Schmidhuber 1997; Bengio et al. 1994"
MAIN_FIGURE = "accuracy"


SETUP = """
Recall at distance d: a symbol out of K={cfg.task.n_symbols}, d distractors (from {cfg.task.n_distractors}), then a
query; the model names the symbol (chance {cfg.task.chance:.3f}). Models at ~{cfg.param_budget:,} parameters:
{sizes}; embedding (E={cfg.embed_size}) -> attnlab.nn recurrent layer -> readout of the last state, PyTorch's
initialisation but the LSTM's forget-gate bias, 1; attention: embedding + learned positions -> one pre-norm
transformer block -> readout at the query. A fresh model of each kind at each d in {cfg.distances}: Adam lr
{cfg.train.lr:g} (constant), clipping {cfg.train.grad_clip:g}, batches of {cfg.task.batch_size} fresh examples (the
same for every model), until the accuracy on {cfg.task.eval_examples} held-out examples (checked every
{cfg.train.eval_interval} steps) reaches {cfg.task.solve:g} or {cfg.train.max_iters} steps are spent; {cfg.seeds}
seed(s) (a distance is solved when a majority of them solve it; accuracies and steps are their means). Reach = the
largest d up to which every listed distance is solved. Measured on {r[device_name]}.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    hidden, params = r["data"]["hidden_size"], r["data"]["params"]
    size = {m: f"{'C' if m == 'attention' else 'H'}={hidden[m]}" for m in cfg.models}
    sizes = ", ".join(f"{m.upper()} {size[m]} ({params[m]:,} parameters)" for m in cfg.models)
    return fill(SETUP, cfg, r, sizes=sizes)


def summary(cfg: Any, r: dict[str, Any]) -> str:
    data, v = r["data"], r["data"]["verdict"]
    d0, d1 = cfg.distances[0], cfg.distances[-1]
    parts = []
    for name, res in data["results"].items():
        acc = res["accuracy"]["mean"]
        reached = f"reach d={res['reach']}" if res["reach"] else "solves no listed distance"
        steps = ", ".join(f"{s:g}" for s in res["steps"])
        parts.append(f"{name.upper()} {acc[0]:.2f} at d={d0} -> {acc[-1]:.2f} at d={d1} ({reached}; steps {steps})")
    text = "Held-out accuracy after training at each distance: " + "; ".join(parts) + ". "
    if r["held"] is None:
        return text + "The claim is not measurable with these models: it needs the RNN and a gated cell."
    if r["held"]:
        return text + (
            f"The claim held: every model learns the task at d={d0}; the RNN does not solve d={d1} in the same "
            "budget, the gated cells reach further, and attention solves every distance."
        )
    return text + closing(False, v)


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    m, d0, d1 = r["metrics"], cfg.distances[0], cfg.distances[-1]
    rows = [
        (
            f"{name.upper()}: accuracy at d={d0} / d={d1}, reach",
            f"{m[f'acc/{name}/d={d0}']:.2f} / {m[f'acc/{name}/d={d1}']:.2f}, {m[f'reach/{name}']}",
        )
        for name in cfg.models
    ]
    return [*rows, ("chance", f"{m['chance']:.3f}")]


WORDS = Words(setup, summary, headline)
