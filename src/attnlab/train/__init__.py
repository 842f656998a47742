"""Training: one model-agnostic loop, atomic checkpoints, exact resume, DDP under torchrun."""

from __future__ import annotations

import os
from pathlib import Path

from attnlab.train.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from attnlab.train.loop import BEST_NAME, CKPT_NAME, TrainConfig, Trainer, make_optimizer

RUN_KINDS = ("gpt", "seq2seq")


def run_kind(ckpt: str | os.PathLike[str]) -> tuple[str, Path]:
    """``(kind, path)``: ``"gpt"`` or ``"seq2seq"``, read from the JSON state of a checkpoint (the
    ``.safetensors`` file or the run folder holding it), and the checkpoint file's path."""
    path = Path(ckpt)
    path = path / CKPT_NAME if path.is_dir() else path
    kind = read_checkpoint(path)[0]["state"].get("kind")
    if kind not in RUN_KINDS:
        raise CheckpointError(f"checkpoint: {path} holds a run of unknown kind {kind!r} (expected gpt or seq2seq)")
    return kind, path


__all__ = [
    "BEST_NAME",
    "CKPT_NAME",
    "RUN_KINDS",
    "CheckpointError",
    "TrainConfig",
    "Trainer",
    "load_checkpoint",
    "make_optimizer",
    "read_checkpoint",
    "run_kind",
    "save_checkpoint",
]
