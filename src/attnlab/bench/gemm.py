"""``attnlab bench gemm``: the LSTM's matrix products through :mod:`attnlab.nn.gemm` (oneDNN's inner product)
against the same products through ``torch.mm``/``addmm`` (MKL on an x86 CPU build), float32, side by side.

Shapes are those of ``attnlab bench rnn``'s LSTM (B=32, I=128, H=256, T=128) and one square product.
"""

from __future__ import annotations

from typing import Any

import torch

from attnlab._checks import resolve_device
from attnlab.measure import machine, side_by_side, timing_row
from attnlab.nn import gemm, lstm_bptt

B, I, H, T = 32, 128, 256, 128
BLOCK_ROWS = lstm_bptt.BLOCK * B  # the backward's weight-gradient products run on blocks of steps


def _cases() -> list[tuple[str, str, Any, Any]]:
    """(product, shapes, ours, torch's) for each case; every operand made once, outside the timing."""
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    h, w_hh, xw = r(B, H), r(4 * H, H), r(B, 4 * H)
    step = gemm.Weight(w_hh, B)
    da = r(B, 4 * H)
    step_t = gemm.Weight(w_hh.t(), B)
    x, w_ih, bias = r(T * B, I), r(4 * H, I), r(4 * H)
    d_blk, h_blk = r(BLOCK_ROWS, 4 * H), r(BLOCK_ROWS, H)
    a, b = r(1024, 1024), r(1024, 1024)
    return [
        ("forward step: xw + h W_hh^T", f"({B}, {H}) @ ({H}, {4 * H})", lambda: step.linear(h, add=xw),
         lambda: torch.addmm(xw, h, w_hh.t())),
        ("backward step: da W_hh", f"({B}, {4 * H}) @ ({4 * H}, {H})", lambda: step_t.linear(da),
         lambda: da @ w_hh),
        ("input projection, all steps", f"({T * B}, {I}) @ ({I}, {4 * H})", lambda: gemm.linear(x, w_ih, bias),
         lambda: torch.addmm(bias, x, w_ih.t())),
        ("dW_hh of one block", f"({4 * H}, {BLOCK_ROWS}) @ ({BLOCK_ROWS}, {H})",
         lambda: gemm.linear_grad_weight(d_blk, h_blk), lambda: d_blk.t() @ h_blk),
        ("square", "(1024, 1024) @ (1024, 1024)", lambda: gemm.linear(a, b.t()), lambda: a @ b),
    ]  # fmt: skip


def run(*, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    if resolve_device(device) != "cpu":
        raise ValueError(
            f"--device: gemm measures the CPU's oneDNN products against MKL; it runs on cpu, got {device!r}"
        )
    min_time = 0.05 if quick else 0.5
    rows = []
    for what, shapes, ours, theirs in _cases():
        t_ours, t_torch = side_by_side(ours, theirs, min_time, rounds=2 if quick else 3)
        rows.append(timing_row(t_ours, t_torch, product=what, shapes=shapes))
    onednn = gemm.uses_onednn(torch.empty(0))
    return {"quick": quick, "onednn": onednn, "machine": machine(), "rows": rows}


def to_markdown(result: dict[str, Any]) -> str:
    path = "oneDNN" if result["onednn"] else "torch fallback (oneDNN not used)"
    lines = [
        f"float32; attnlab.nn.gemm ({path}) against torch.mm/addmm; medians; ratio = gemm / torch (lower is better)",
        "",
        "| product | shapes | gemm (us) | torch (us) | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['product']} | {r['shapes']} | {r['ours_ms'] * 1e3:.0f} | {r['torch_ms'] * 1e3:.0f} "
            f"| {r['ratio']:.2f} |"
        )
    return "\n".join(lines)
