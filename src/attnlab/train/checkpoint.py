"""Checkpoints: one safetensors file holding the model, the optimizer state and the RNG states, with the JSON
state (config, step, optimizer hyper-parameters) in its header. Written atomically (a temp file in the same
folder, fsync, then ``os.replace``), so a checkpoint is either the old one or the new one, never half-written.
Loading reads tensors and JSON only: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from attnlab.fileio import atomic_write

FORMAT = "attnlab-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or not one of ours."""


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
    rng: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write ``model`` (its state_dict), the optimizer's state, ``rng`` tensors and the JSON ``state`` to ``path``."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().contiguous().cpu()
    meta: dict[str, Any] = {"format": FORMAT, "state": state}
    if optimizer is not None:
        osd = optimizer.state_dict()
        for idx, st in osd["state"].items():
            for name, t in st.items():
                if not torch.is_tensor(t):
                    t = torch.tensor(t)
                tensors[f"optim.{idx}.{name}"] = t.detach().contiguous().cpu()
        meta["param_groups"] = osd["param_groups"]
    for k, v in (rng or {}).items():
        tensors[f"rng.{k}"] = v.contiguous().cpu()
    with atomic_write(path) as tmp:
        save_file(tensors, tmp, metadata={"attnlab": json.dumps(meta)})


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON metadata and the tensors of a checkpoint; CheckpointError if it is not a readable one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint: no file at {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint: {path} is not a readable safetensors file ({e})") from None
    try:
        meta = json.loads(header["attnlab"])
        if meta.get("format") != FORMAT:
            raise KeyError("format")
    except (KeyError, json.JSONDecodeError, AttributeError):
        raise CheckpointError(f"checkpoint: {path} is a safetensors file but not an attnlab checkpoint") from None
    return meta, tensors


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights (and the optimizer state) in place; return the JSON state and the RNG tensors."""
    meta, tensors = read_checkpoint(path)
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint: {path} does not fit this model ({' '.join(str(e).split())})") from None
    if optimizer is not None:
        if "param_groups" not in meta:
            raise CheckpointError(f"checkpoint: {path} holds no optimizer state")
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, name = k.split(".", 2)
                state.setdefault(int(idx), {})[name] = v
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    rng = {k[len("rng.") :]: v for k, v in tensors.items() if k.startswith("rng.")}
    return meta["state"], rng
