"""Benchmarks run by ``attnlab bench``: our modules against the PyTorch built-ins, side by side in one process.

Each benchmark reports medians and the ratio ours / torch (below 1 means we are faster). Speed never goes
into tests; the figures are recorded in ``docs/benchmarks.md`` with the command and the machine.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "rnn": "rnn",
    "gemm": "gemm",
    "attention": "attention",
    "attention-memory": "attention_memory",
    "gpt": "gpt",
    "encoder": "encoder",
    "exercises": "exercises",
    "flash": "flash",
}
# Run only when named: attention-memory needs ~16 GiB for naive attention at n=16384 and minutes for n=65536;
# flash times GPU kernels.
_ON_REQUEST = {"attention-memory", "flash"}
# Measure the CPU only (oneDNN against MKL; the exercise checks a learner runs): skipped by a run on another device,
# refused when named for one.
CPU_ONLY = {"gemm", "exercises"}
# Measure a GPU only (the Triton kernels against torch's fused CUDA kernels): refused when named for the CPU.
GPU_ONLY = {"flash"}


def names() -> list[str]:
    """Every benchmark that can be named."""
    return list(_MODULES)


def default_names() -> list[str]:
    """What ``attnlab bench`` runs when no name is given."""
    return [n for n in _MODULES if n not in _ON_REQUEST]


def _module(name: str):
    if name not in _MODULES:
        raise ValueError(f"benchmark: expected one of {', '.join(_MODULES)}; got {name!r}")
    return importlib.import_module(f"attnlab.bench.{_MODULES[name]}")


def run(name: str, *, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    """Run one benchmark on ``device`` ("cpu", "cuda", "cuda:N" or "auto"); ``quick`` trims sizes and repeats
    (a smoke run, not for recorded figures). A benchmark that measures one kind of device only (``gemm``: the CPU's
    oneDNN) raises ValueError for the other."""
    return _module(name).run(quick=quick, device=device)


def to_markdown(name: str, result: dict[str, Any]) -> str:
    return _module(name).to_markdown(result)
