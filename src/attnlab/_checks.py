"""Argument checks at public boundaries: each error names the argument, what was expected and what came."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def shape_str(x: Tensor) -> str:
    return "(" + ", ".join(str(s) for s in x.shape) + ")"


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """numpy's broadcasting of shapes, in plain Python (``torch.broadcast_shapes`` goes through symbolic-shape
    guards that cost ~0.1 ms a call: too much for a check on every decoded token). Raises ValueError."""
    out: list[int] = []
    for shape in shapes:
        shape = list(shape)
        if len(shape) > len(out):
            out = [1] * (len(shape) - len(out)) + out
        for i, n in enumerate(shape, start=len(out) - len(shape)):
            if out[i] == 1:
                out[i] = n
            elif n != 1 and n != out[i]:
                raise ValueError(f"shapes do not broadcast: {[tuple(s) for s in shapes]}")
    return tuple(out)


def check_tensor(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def check_float(name: str, x: Tensor) -> None:
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")


def check_ndim(name: str, x: Tensor, allowed: Sequence[int], meaning: str = "") -> None:
    if x.dim() not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        hint = f" {meaning}" if meaning else ""
        raise ValueError(f"{name}: expected a {want} tensor{hint}, got shape {shape_str(x)}")


def check_shape(name: str, x: Tensor, expected: Sequence[int], meaning: str = "") -> None:
    if tuple(x.shape) != tuple(expected):
        hint = f" {meaning}" if meaning else ""
        raise ValueError(f"{name}: expected shape ({', '.join(str(s) for s in expected)}){hint}, got {shape_str(x)}")


def autocast_enabled(x: Tensor) -> bool:
    """Whether ``torch.autocast`` is on for ``x``'s device: then matmuls run in its low precision and a module's
    floating-point operands may differ in dtype (a float32 state meeting a bfloat16 product), as in torch's modules."""
    return torch.is_autocast_enabled(x.device.type)


def check_same_dtype_device(name: str, x: Tensor, ref: Tensor, ref_name: str = "input") -> None:
    """Same device always; same dtype unless autocast is on and both are floating point (it casts the products)."""
    mixed_ok = x.is_floating_point() and ref.is_floating_point() and autocast_enabled(ref)
    if x.dtype != ref.dtype and not mixed_ok:
        raise TypeError(f"{name}: expected dtype {ref.dtype} (that of {ref_name}), got {x.dtype}")
    if x.device != ref.device:
        raise ValueError(f"{name}: expected device {ref.device} (that of {ref_name}), got {x.device}")


#: How a module with a hand-derived backward is differentiated: ``"manual"`` (the backward written out) or
#: ``"autograd"`` (autograd through the forward). The SDPA spells the same choice ``impl="manual"``.
BACKWARDS = ("autograd", "manual")


def check_backward(backward: object) -> str:
    if backward not in BACKWARDS:
        raise ValueError(f"backward: expected one of {BACKWARDS}, got {backward!r}")
    return backward


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def check_lengths(lengths: object, batch: int, time: int) -> list[int]:
    """Validate ``lengths`` (valid steps per sequence) and return them as Python ints."""
    if isinstance(lengths, Tensor):
        if lengths.dim() != 1:
            raise ValueError(f"lengths: expected a 1-D tensor of {batch} lengths, got shape {shape_str(lengths)}")
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths: expected an integer tensor, got dtype {lengths.dtype}")
        values = [int(v) for v in lengths.tolist()]
    elif isinstance(lengths, Sequence) and not isinstance(lengths, str):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in lengths):
            raise TypeError(f"lengths: expected integers, got {list(lengths)!r}")
        values = list(lengths)
    else:
        raise TypeError(f"lengths: expected a 1-D integer tensor or a sequence of ints, got {type(lengths).__name__}")
    if len(values) != batch:
        raise ValueError(f"lengths: expected {batch} lengths (one per sequence in the batch), got {len(values)}")
    bad = [v for v in values if not 1 <= v <= time]
    if bad:
        raise ValueError(f"lengths: expected every length in [1, {time}] (the sequence length), got {bad[:5]}")
    return values


def check_device_name(device: object) -> str:
    """The spelling of a device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (nothing is looked up)."""
    ok = isinstance(device, str) and (
        device in ("cpu", "cuda", "auto") or (device.startswith("cuda:") and device[5:].isdigit())
    )
    if not ok:
        raise ValueError(f"device: expected 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    return device


def available_devices() -> str:
    """What this machine offers, in words: ``cpu`` and ``cuda:0`` ... ``cuda:N-1`` when CUDA is present."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ", ".join(["cpu", *(f"cuda:{i}" for i in range(n))])


def resolve_device(device: str) -> str:
    """``auto`` picks CUDA when present, else the CPU; ``cuda`` / ``cuda:N`` must exist on this machine.

    Raises ValueError naming the device and what is available (``--device cuda`` on a machine without CUDA,
    ``cuda:7`` with one GPU), so the CLI answers in one line before any work starts.
    """
    check_device_name(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        index = int(device[5:]) if device.startswith("cuda:") else 0
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= n:
            raise ValueError(f"device: {device!r} is not available on this machine (available: {available_devices()})")
    return device
