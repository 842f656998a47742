"""Training: one model-agnostic loop, atomic checkpoints, exact resume, DDP under torchrun."""

from attnlab.train.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from attnlab.train.loop import CKPT_NAME, TrainConfig, Trainer, make_optimizer

__all__ = [
    "CKPT_NAME",
    "CheckpointError",
    "TrainConfig",
    "Trainer",
    "load_checkpoint",
    "make_optimizer",
    "read_checkpoint",
    "save_checkpoint",
]
