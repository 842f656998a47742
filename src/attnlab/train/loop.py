"""One model-agnostic training loop: AdamW, warm-up + cosine learning rate, gradient clipping, periodic
evaluation, a progress bar with loss and tokens/s, atomic checkpoints, exact resume, and DDP under torchrun.

The trainer knows nothing about the model: ``get_batch(split, generator)`` supplies a batch, a tuple of any
number of tensors (``(x, y)`` for the GPT, ``Batch(src, src_lengths, tgt_in, tgt_out)`` for seq2seq), and
``model(*batch)`` must return an object with a ``.loss`` (as :class:`attnlab.models.GPTOutput` does). Tokens per
second count the elements of the batch's first tensor (the inputs).

Resume is exact: the checkpoint holds the weights, the optimizer state, the iteration, the data generator's
state (per rank) and torch's RNG state (dropout); evaluation draws from its own generator, re-seeded at every
evaluation, so it never disturbs the training stream. A run killed at any point and resumed from its last
checkpoint therefore repeats the same iterations and ends with the same loss as an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from attnlab._checks import check_device_name, resolve_device
from attnlab.fileio import write_json
from attnlab.train.checkpoint import load_checkpoint, save_checkpoint

CKPT_NAME = "ckpt.safetensors"
BEST_NAME = "best.safetensors"  # the weights of the lowest validation loss so far (as nanoGPT keeps)
GetBatch = Callable[[str, torch.Generator], tuple[Tensor, ...]]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (nanoGPT's names and shakespeare_char defaults where they exist)."""

    max_iters: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 0  # 0: decay over max_iters
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 200
    ckpt_interval: int = 250
    seed: int = 1337
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("max_iters", "eval_interval", "eval_iters", "ckpt_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        for name in ("warmup_iters", "lr_decay_iters"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {getattr(self, name)!r}")
        if not self.lr > 0 or not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"lr/min_lr: expected 0 <= min_lr <= lr and lr > 0, got {self.lr!r}/{self.min_lr!r}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError(f"grad_clip/weight_decay: expected >= 0, got {self.grad_clip!r}/{self.weight_decay!r}")
        check_device_name(self.device)

    def learning_rate(self, it: int) -> float:
        """Linear warm-up to ``lr``, then cosine decay to ``min_lr`` at ``lr_decay_iters`` (nanoGPT's schedule)."""
        decay_iters = self.lr_decay_iters or self.max_iters
        if it < self.warmup_iters:
            return self.lr * (it + 1) / (self.warmup_iters + 1)
        if it > decay_iters:
            return self.min_lr
        ratio = (it - self.warmup_iters) / max(1, decay_iters - self.warmup_iters)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (self.lr - self.min_lr)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (embeddings and weights), none on biases and norm gains."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


class Trainer:
    """Trains ``model`` on batches from ``get_batch``, writing into ``run_dir``:
    ``ckpt.safetensors`` (every ``ckpt_interval`` iterations and at the end: what resume continues from),
    ``best.safetensors`` (the weights at the evaluation with the lowest validation loss so far, with the same JSON
    state, so ``sample`` and ``viz`` read either), ``results.json``.

    ``state`` is extra JSON saved with every checkpoint (e.g. the model config and vocabulary, so a checkpoint
    can rebuild its model). Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
    DistributedDataParallel (gloo on CPU, nccl on CUDA); each rank draws its own batches; rank 0 evaluates,
    logs and checkpoints.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        get_batch: GetBatch,
        run_dir: str | os.PathLike[str],
        *,
        state: dict[str, Any] | None = None,
        progress: bool | None = None,
    ) -> None:
        self.cfg, self.get_batch, self.run_dir = cfg, get_batch, Path(run_dir)
        self.extra_state = state or {}
        self.world, self.rank = _init_distributed(cfg)
        self.device = resolve_device(cfg.device)
        if self.world > 1 and self.device.startswith("cuda"):
            self.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        self.model = model.to(self.device)
        self.optimizer = make_optimizer(self.model, cfg)
        if self.world > 1:  # gradients all-reduced (averaged) across ranks during backward
            from torch.nn.parallel import DistributedDataParallel

            ids = [int(self.device.split(":")[1])] if self.device.startswith("cuda:") else None
            self.model = DistributedDataParallel(self.model, device_ids=ids)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.iter = 0
        self.history: list[dict[str, float]] = []
        self.elapsed = 0.0
        self.tokens = 0
        self.last_loss: float | None = None
        self.best_val: float | None = None  # the lowest validation loss evaluated so far (best.safetensors)
        self.result: dict[str, Any] | None = None  # what the last fit() returned
        self.gen = torch.Generator().manual_seed(cfg.seed + self.rank)  # the training data stream, per rank
        torch.manual_seed(cfg.seed)  # dropout

    # --- checkpoints -------------------------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / CKPT_NAME

    def save(self) -> None:
        gens = self._gather_generator_states()
        if self.rank != 0:
            return
        state = {
            "iter": self.iter,
            "train": asdict(self.cfg),
            "history": self.history,
            "elapsed": self.elapsed,
            "tokens": self.tokens,
            "last_loss": self.last_loss,
            "best_val": self.best_val,
            "world": self.world,
            **self.extra_state,
        }
        rng = {"torch": torch.get_rng_state(), **{f"gen{r}": g for r, g in enumerate(gens)}}
        save_checkpoint(self.ckpt_path, self._raw_model(), self.optimizer, state, rng)

    def save_best(self, losses: dict[str, float]) -> None:
        """Write the current weights to ``best.safetensors`` (atomically; no optimizer state: not for resuming)."""
        best = {"iter": self.iter, **losses}
        state = {"iter": self.iter, "train": asdict(self.cfg), "best": best, **self.extra_state}
        save_checkpoint(self.run_dir / BEST_NAME, self._raw_model(), None, state)

    def resume(self) -> bool:
        """Load the run's checkpoint if there is one; True when it did."""
        if not self.ckpt_path.exists():
            return False
        state, rng = load_checkpoint(self.ckpt_path, self._raw_model(), self.optimizer)
        if state.get("world", 1) != self.world:
            raise ValueError(f"world size: the run was made with {state.get('world', 1)} processes, now {self.world}")
        self.iter, self.history = state["iter"], state["history"]
        self.elapsed, self.tokens, self.last_loss = state["elapsed"], state["tokens"], state.get("last_loss")
        self.best_val = state.get("best_val")
        torch.set_rng_state(rng["torch"])
        self.gen.set_state(rng[f"gen{self.rank}"])
        return True

    def _gather_generator_states(self) -> list[Tensor]:
        mine = self.gen.get_state()
        if self.world == 1:
            return [mine]
        import torch.distributed as dist

        out = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(out, mine) if dist.get_backend() == "gloo" else dist.all_gather_object(out, mine)
        return out

    def _raw_model(self) -> nn.Module:
        return self.model.module if hasattr(self.model, "module") else self.model

    # --- training ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss over ``eval_iters`` batches of each split, from a generator re-seeded every time."""
        model = self._raw_model()
        was_training = model.training
        model.eval()
        out = {}
        for split in ("train", "val"):
            gen = torch.Generator().manual_seed(self.cfg.seed + 7919)
            losses = [
                model(*self._to_device(self.get_batch(split, gen))).loss.item() for _ in range(self.cfg.eval_iters)
            ]
            out[split] = sum(losses) / len(losses)
        model.train(was_training)
        return out

    def _to_device(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return tuple(t.to(self.device, non_blocking=True) for t in batch)

    def step(self, *batch: Tensor) -> float:
        """One optimisation step on ``batch`` (the model's positional inputs, e.g. ``x, y``) at the current
        iteration's learning rate; returns the loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.learning_rate(self.iter)
        use_bf16 = self.device.startswith("cuda") and torch.cuda.is_bf16_supported()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
            loss = self.model(*batch).loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return loss.item()

    def fit(self, *, stop_after: int | None = None) -> dict[str, Any]:
        """Train up to ``max_iters`` (or ``stop_after`` more iterations); checkpoint and write results.json."""
        self.model.train()
        end = self.cfg.max_iters if stop_after is None else min(self.cfg.max_iters, self.iter + stop_after)
        bar = tqdm(total=self.cfg.max_iters, initial=self.iter, disable=not self.progress or self.rank != 0)
        while self.iter < end:
            t0 = time.perf_counter()
            batch = self._to_device(self.get_batch("train", self.gen))
            self.last_loss = self.step(*batch)
            n_tokens = batch[0].numel() * self.world  # the inputs' elements, over all ranks
            dt = time.perf_counter() - t0
            self.elapsed += dt
            self.tokens += n_tokens
            self.iter += 1
            evaluate_now = self.iter % self.cfg.eval_interval == 0 or self.iter == self.cfg.max_iters
            if evaluate_now and self.rank == 0:
                losses = self.evaluate()
                self.history.append({"iter": self.iter, **losses, "seconds": round(self.elapsed, 3)})
                bar.set_postfix_str(f"val {losses['val']:.4f}")
                if self.best_val is None or losses["val"] < self.best_val:
                    self.best_val = losses["val"]
                    self.save_best(losses)
            if self.iter % self.cfg.ckpt_interval == 0 or self.iter == end:
                self.save()
            bar.update()
            bar.set_description(f"loss {self.last_loss:.4f} | {n_tokens / max(dt, 1e-9):,.0f} tok/s")
        bar.close()
        result = {
            "iter": self.iter,
            "done": self.iter >= self.cfg.max_iters,
            "last_train_loss": self.last_loss,
            "history": self.history,
            "seconds": round(self.elapsed, 3),
            "tokens_per_second": round(self.tokens / self.elapsed, 1) if self.elapsed else None,
            "best_val": self.best_val,
            "world": self.world,
        }
        self.result = result
        if self.rank == 0:
            write_json(self.run_dir / "results.json", result)
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()  # rank 0 has written its checkpoint and results
            dist.destroy_process_group()
        return result


def _init_distributed(cfg: TrainConfig) -> tuple[int, int]:
    """(world size, rank); initialises the process group under torchrun (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if resolve_device(cfg.device).startswith("cuda") else "gloo"
        dist.init_process_group(backend)
    return dist.get_world_size(), dist.get_rank()
