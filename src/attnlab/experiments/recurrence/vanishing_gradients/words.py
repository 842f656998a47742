"""The words of ``vanishing-gradients``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.words import closing, fill, table

TITLE = "Vanishing and exploding gradients, and the gates that carry them"
CLAIM = (
    "RNN gradients vanish (or explode) over long spans: the gradient is a product of one Jacobian per step. "
    "The gating mechanisms of LSTM and GRU cells mitigate the vanishing gradient problem."
)
SOURCE = (
    "Seed 001 (chapter 3), learning objectives 1-2, section 3.1; Bengio et al. 1994, Pascanu et al. 2013, "
    "Hochreiter & Schmidhuber 1997, Gers et al. 2000, Jozefowicz et al. 2015"
)
MAIN_FIGURE = "decay"
NAMES = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM (PyTorch init)", "lstm_forget1": "LSTM (forget bias 1)"}


SETUP = """
Four cells of hidden size {cfg.hidden_size} (attnlab.nn: tanh RNN, GRU, LSTM with PyTorch's initialisation, LSTM
with forget-gate bias 1) reading embeddings (E={cfg.embed_size}) of the memory task: a symbol out of
{cfg.task.n_symbols}, {cfg.lag} distractors (from {cfg.task.n_distractors}), a query; the readout of the last state
names the symbol. Gradient: L = u . h_T (u a random unit vector) on {cfg.probe_examples} held-out sequences, the total
derivatives ||dL/dh_t|| and, for the LSTMs, ||dL/dc_t|| along the cell state, the cell stepped one step at a time;
geometric mean over examples and {cfg.seeds} seed(s); per-step factor = 10^slope of log10 norm on the distance.
Training: the same batches of {cfg.task.batch_size}, Adam lr {cfg.train.lr:g} (constant), clipping
{cfg.train.grad_clip:g}, until the held-out accuracy on {cfg.task.eval_examples} examples (checked every
{cfg.train.eval_interval} steps) reaches {cfg.task.solve:g} or {cfg.train.max_iters} steps are spent (a cell learned
the lag when a majority of the seeds solve it). Exploding: tanh
RNN with W_hh = rho * (random orthogonal), zero biases, inputs scaled by {cfg.probe_scale:g}, rho in {cfg.radii}.
Clipping: SGD (lr {sgd_lr:g}) step norms at rho={rho:g} over {cfg.clip_batches} batches, without and with
clip_grad_norm_(max_norm={cfg.clip_max_norm:g}). Measured on {r[device_name]}.
"""
HEADLINE = """
RNN gradient per step (initialisation) | x{m[factor/rnn/h/init]:.3f}
LSTM cell-state gradient per step, PyTorch init / forget bias 1 | x{m[factor/lstm/c/init]:.3f} /
    x{m[factor/lstm_forget1/c/init]:.3f}
recall at lag {cfg.lag} within {cfg.train.max_iters} steps: seeds that solved it (of {cfg.seeds}), RNN / GRU / LSTM /
    LSTM f=1 | {solved}
per-step factor at rho = 0.5 / 2 | x{m[factor/rnn_rho=0.5]:.3f} / x{m[factor/rnn_rho=2]:.3f}
largest SGD step without / with clipping | {m[clip/max_update_unclipped]:.3g} / {m[clip/max_update_clipped]:.3g}
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    return fill(SETUP, cfg, r, sgd_lr=r["data"]["update_bound"] / cfg.clip_max_norm, rho=max(cfg.radii))


def _learned(r: dict[str, Any], name: str, budget: int) -> str:
    """Whether a cell learned the lag, seed by seed: solved (after how many steps) or not (its final accuracy)."""
    runs = r["data"]["cells"][name]["runs"]
    won = [str(run["iters"]) for run in runs if run["solved"]]
    lost = [f"{run['accuracy']:.2f}" for run in runs if not run["solved"]]
    if not won:
        return f"{NAMES[name]} did not within {budget} steps (accuracy {' / '.join(lost)})"
    if not lost:
        return f"{NAMES[name]} solved it in {' / '.join(won)} steps"
    majority = "a majority" if r["metrics"][f"solved/{name}"] else "not a majority"
    return (
        f"{NAMES[name]} solved it in {len(won)} of {len(runs)} seeds, {majority} (after {' / '.join(won)} steps; "
        f"the others ended at accuracy {' / '.join(lost)})"
    )


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, v = r["metrics"], r["data"]["verdict"]
    d = cfg.lag + 1
    rnn, f1, lstm = m["factor/rnn/h/init"], m["factor/lstm_forget1/c/init"], m["factor/lstm/c/init"]
    parts = [
        f"At initialisation the RNN's gradient shrinks by x{rnn:.3f} per step (10^-{m['log10_drop/rnn/h/init']:.1f} "
        f"over {d} steps); the GRU's by x{m['factor/gru/h/init']:.3f} (mean update gate "
        f"{m['gate/gru/init']:.2f}). Along the LSTM's cell state it shrinks by x{lstm:.3f} with PyTorch's "
        f"initialisation (mean forget gate {m['gate/lstm/init']:.2f}) and by x{f1:.3f} with forget-gate bias 1 "
        f"(mean forget gate {m['gate/lstm_forget1/init']:.2f}): the carousel passes what the forget gate lets "
        "through.",
        f"Recalling the symbol {cfg.lag} steps back: "
        + "; ".join(_learned(r, name, cfg.train.max_iters) for name in NAMES)
        + ".",
        "After training (reported, not judged): "
        + ", ".join(
            f"{NAMES[n]} x{m[f'factor/{n}/{p}/trained']:.3f} per step along {p}"
            for n, p in (("rnn", "h"), ("gru", "h"), ("lstm", "c"), ("lstm_forget1", "c"))
        )
        + ".",
        "Spectral radius sweep (per-step factor, expected rho): "
        + ", ".join(f"rho={rho:g}: x{m[f'factor/rnn_rho={rho:g}']:.3f}" for rho in cfg.radii)
        + f". Clipping: unclipped SGD steps reached {m['clip/max_update_unclipped']:.3g}, clipped ones at most "
        f"{m['clip/max_update_clipped']:.3g} (bound {m['clip/update_bound']:.3g}).",
        closing(r["held"], v),
    ]
    if v["rnn_does_not"] is False:
        parts.append(
            f"The RNN learned a lag of {cfg.lag} in this budget: at this length its gradient, though it "
            "vanishes, still carried enough to learn."
        )
    return " ".join(parts)


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    cells = r["data"]["cells"]
    solved = " / ".join(str(sum(run["solved"] for run in cells[name]["runs"])) for name in NAMES)
    return table(HEADLINE, cfg, r, solved=solved)


WORDS = Words(setup, summary, headline)
