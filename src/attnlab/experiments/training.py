"""Training the lab's models: the project's one loop, with what experiments need around it.

Every experiment that trains holds a :class:`~attnlab.train.loop.TrainConfig` as its field ``train`` and trains
through :func:`train`, which steps the project's :class:`~attnlab.train.loop.Trainer` (AdamW with weight decay on
matrices only, linear warm-up then cosine decay, gradient-norm clipping, bf16 autocast on a GPU): the models an
experiment compares differ in the model alone. The experiment's own ``seed`` and ``device`` override the
config's (``train.seed``, ``train.device``), so that one seed fixes the initialisation and the batches of a run.

Small models run on one CPU thread (:func:`one_thread`): they step through time in Python on tensors of a few
thousand elements, where extra threads only add synchronisation (measured on 2 busy cores: a Bahdanau step at
batch 64, length 20, hidden 64 took 66 ms on one thread and 530 ms on two).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from attnlab.train.loop import GetBatch, TrainConfig, Trainer


@contextlib.contextmanager
def one_thread(device: str = "cpu") -> Iterator[None]:
    """Run the body on one intra-op CPU thread (restored after); nothing changes on a GPU."""
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def adam(lr: float, max_iters: int = 2000, *, grad_clip: float = 0.0, eval_interval: int = 250) -> TrainConfig:
    """Adam at a constant learning rate (the Trainer's AdamW with no weight decay, no warm-up, no decay; beta2 0.999
    as ``torch.optim.Adam``), clipping the gradient's norm at ``grad_clip`` (0: not at all). The optimiser of the
    experiments whose models differ in one thing only (a cell, a head count, a temperature)."""
    return TrainConfig(max_iters=max_iters, lr=lr, min_lr=lr, warmup_iters=0, weight_decay=0.0, beta2=0.999,
                       grad_clip=grad_clip, eval_interval=eval_interval, eval_iters=1)  # fmt: skip


def trainer(
    model: nn.Module, cfg: TrainConfig, get_batch: GetBatch, *, seed: int, device: str, run_dir: str
) -> Trainer:
    """The project's Trainer for ``model`` with the experiment's ``seed`` and ``device`` (the model moves there)."""
    return Trainer(model, dataclasses.replace(cfg, seed=seed, device=device), get_batch, run_dir, progress=False)


def train(
    model: nn.Module,
    cfg: TrainConfig,
    get_batch: GetBatch,
    *,
    seed: int,
    device: str,
    evaluate: bool = True,
    check: Callable[[int], bool] | None = None,
) -> dict[str, Any]:
    """Train ``model`` (whose ``forward(*batch)`` returns an object with ``.loss``) for ``cfg.max_iters``
    iterations on ``get_batch(split, generator)`` batches, drawn from a generator seeded with ``seed``.

    Every ``cfg.eval_interval`` iterations and at the end, a point of the history: the iteration, the mean
    training loss since the previous point (``loss``), the Trainer's evaluation over ``cfg.eval_iters`` batches
    of each split (``train``, ``val``) when ``evaluate``, and ``check(iteration)``: when it returns True,
    training stops there (an experiment that trains "until solved"). Returns the history, the iterations run,
    whether ``check`` stopped it, the seconds of training and the last loss; the model ends in eval mode.
    """
    history: list[dict[str, Any]] = []
    losses: list[float] = []
    stopped = False
    with tempfile.TemporaryDirectory(prefix="attnlab-lab-") as run_dir:  # the Trainer never writes here
        t = trainer(model, cfg, get_batch, seed=seed, device=device, run_dir=run_dir)
        t.model.train()
        start = time.perf_counter()
        while t.iter < cfg.max_iters and not stopped:
            batch = tuple(x.to(t.device) for x in get_batch("train", t.gen))
            losses.append(t.step(*batch))
            t.iter += 1
            if t.iter % cfg.eval_interval and t.iter < cfg.max_iters:
                continue
            point: dict[str, Any] = {"iter": t.iter, "loss": sum(losses) / len(losses)}
            losses = []
            if evaluate:
                point.update(t.evaluate())
            if check is not None:
                stopped = bool(check(t.iter))
                t.model.train()
            history.append(point)
        seconds = time.perf_counter() - start
        model.eval()
    return {
        "history": history,
        "iters": t.iter,
        "stopped": stopped,
        "seconds": round(seconds, 3),
        "final_loss": history[-1]["loss"],
    }


__all__ = ["adam", "one_thread", "train", "trainer"]
