"""The memory task of section 3.1's experiments, and training on it until it is solved.

``vanishing-gradients`` and ``long-range`` both ask a model to name the symbol it saw ``d`` steps ago
(:func:`attnlab.data.recall_batch`: a symbol out of K, d distractors, a query; chance 1/K), the "remember the
first symbol" task of Hochreiter & Schmidhuber (1997, experiment 2) and the latching problem of Bengio et al.
(1994). A model is trained at one distance until it *solves* it (held-out accuracy at least ``solve``, checked
every ``train.eval_interval`` steps) or its budget (``train.max_iters``) runs out, and the result says which:
a model that fails far away has shown, by solving the short distances the same way, that it learned the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from attnlab.data import recall_batch, recall_vocab
from attnlab.experiments import checks
from attnlab.experiments.training import train
from attnlab.train.loop import TrainConfig


@dataclass(frozen=True)
class RecallTask:
    """The task's sizes: ``n_symbols`` classes, ``n_distractors`` distractor tokens, ``batch_size`` fresh
    examples per training step, ``eval_examples`` held-out examples per check, ``solve`` the accuracy that
    counts as solved."""

    n_symbols: int = 8
    n_distractors: int = 16
    batch_size: int = 32
    eval_examples: int = 256
    solve: float = 0.95

    def __post_init__(self) -> None:
        checks.ints(self, ("n_distractors", "batch_size", "eval_examples"))
        checks.ints(self, ("n_symbols",), minimum=2)
        checks.fractions(self, ("solve",))

    @property
    def vocab_size(self) -> int:
        return recall_vocab(self.n_symbols, self.n_distractors).size

    @property
    def chance(self) -> float:
        return 1.0 / self.n_symbols


RECALL = RecallTask()  # the defaults: 8 symbols, 16 distractors, batches of 32, solved at 95%


def get_batch(task: RecallTask, distance: int):
    """The Trainer's ``get_batch(split, generator)``: fresh examples at ``distance`` (the split is not used)."""

    def batch(split: str, gen: torch.Generator):
        b = recall_batch(
            task.batch_size, distance, n_symbols=task.n_symbols, n_distractors=task.n_distractors, generator=gen
        )
        return b.tokens, b.lengths, b.targets

    return batch


def held_out(task: RecallTask, distance: int, seed: int, device: str):
    """The held-out examples at ``distance`` for ``seed``: the same for every model (their own generator)."""
    gen = torch.Generator().manual_seed(1_000_003 * (seed + 1) + distance)
    return recall_batch(
        task.eval_examples,
        distance,
        n_symbols=task.n_symbols,
        n_distractors=task.n_distractors,
        generator=gen,
        device=device,
    )


@torch.no_grad()
def accuracy(model: nn.Module, batch: Any) -> float:
    """The share of ``batch`` whose symbol the model names (eval mode; restored after)."""
    was_training = model.training
    model.eval()
    pred = model(batch.tokens, batch.lengths).logits.argmax(-1)  # (N,)
    model.train(was_training)
    return (pred == batch.targets).float().mean().item()


def train_until_solved(
    model: nn.Module, task: RecallTask, cfg: TrainConfig, distance: int, *, seed: int, device: str
) -> dict[str, Any]:
    """Train ``model`` at ``distance`` until its held-out accuracy reaches ``task.solve`` or ``cfg.max_iters``
    steps are spent. Returns ``solved``, ``iters`` (steps trained), ``accuracy`` (held-out, at the end), the
    ``curve`` of ``[iteration, accuracy]`` at every check, the training ``loss`` at those points and ``seconds``."""
    test = held_out(task, distance, seed, device)
    curve: list[list[float]] = []

    def check(iteration: int) -> bool:
        curve.append([iteration, accuracy(model, test)])
        return curve[-1][1] >= task.solve

    fit = train(model, cfg, get_batch(task, distance), seed=seed, device=device, evaluate=False, check=check)
    return {
        "solved": fit["stopped"],
        "iters": fit["iters"],
        "accuracy": curve[-1][1],
        "curve": curve,
        "loss": [p["loss"] for p in fit["history"]],
        "seconds": fit["seconds"],
    }


__all__ = ["RECALL", "RecallTask", "accuracy", "get_batch", "held_out", "train_until_solved"]
