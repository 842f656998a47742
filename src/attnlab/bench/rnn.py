"""``attnlab bench rnn``: our LSTM, GRU and RNN against ``torch.nn`` at B=32, I=128, H=256.

Forward (under ``no_grad``) and forward+backward (sum of the output, backward into input and parameters),
T in {32, 128, 512}. ``torch.nn.LSTM`` runs oneDNN's fused RNN kernel on CPU; ``nn.GRU`` and ``nn.RNN``
run loops in C++; ours is a Python loop over time with the input projection hoisted out of it. On CUDA all three
of torch's are cuDNN's fused layers (float32, TF32 as torch's defaults leave it).
"""

from __future__ import annotations

from typing import Any

import torch

import attnlab.nn as ann
from attnlab._checks import resolve_device
from attnlab.measure import machine, side_by_side, timing_row

B, I, H = 32, 128, 256
CELLS = ("LSTM", "GRU", "RNN")


def _pair(kind: str, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(I, H).to(device)
    ours = getattr(ann, kind)(I, H).to(device)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _forward(m: torch.nn.Module, x: torch.Tensor):
    def fn():
        with torch.no_grad():
            return m(x)

    return fn


def _train_step(m: torch.nn.Module, x: torch.Tensor):
    def fn():
        m.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = m(x)
        out.sum().backward()

    return fn


def run(*, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    device = resolve_device(device)
    lengths = (32,) if quick else (32, 128, 512)
    min_time = 0.05 if quick else 0.6
    rounds = 2 if quick else 3  # interleaved rounds per pair (median): these timings drift between rounds
    rows = []
    for kind in CELLS:
        ours, theirs = _pair(kind, device)
        for T in lengths:
            x = torch.randn(T, B, I, device=device, requires_grad=True)
            for mode, make in (("forward", _forward), ("forward+backward", _train_step)):
                t_ours, t_torch = side_by_side(make(ours, x), make(theirs, x), min_time, rounds=rounds)
                rows.append(timing_row(t_ours, t_torch, cell=kind, T=T, mode=mode))
    return {"shape": {"B": B, "I": I, "H": H}, "device": device, "quick": quick, "machine": machine(), "rows": rows}


def to_markdown(result: dict[str, Any]) -> str:
    s = result["shape"]
    lines = [
        f"B={s['B']}, I={s['I']}, H={s['H']}; medians; ratio = ours / torch.nn (lower is better)",
        "",
        "| cell | T | mode | attnlab (ms) | torch.nn (ms) | ratio |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['cell']} | {r['T']} | {r['mode']} | {r['ours_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f} |"
        )
    return "\n".join(lines)
