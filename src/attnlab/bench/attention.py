"""``attnlab bench attention``: our SDPA implementations and MultiHeadAttention against torch's, side by side.

- SDPA, B=1, 8 heads, hs=64, float32, no mask: naive, manual and chunked against
  ``torch.nn.functional.scaled_dot_product_attention`` (the fused flash kernel), forward and forward+backward.
- MultiHeadAttention, B=8, T=512, E=512, 8 heads, forward+backward (self-attention): ours (``impl="auto"``,
  the fused kernel) against ``torch.nn.MultiheadAttention(batch_first=True)`` called as by default
  (``need_weights=True``, which forces its slow path) and with ``need_weights=False``.
"""

from __future__ import annotations

from typing import Any

import torch

import attnlab.nn as ann
from attnlab._checks import resolve_device
from attnlab.functional import scaled_dot_product_attention
from attnlab.measure import machine, side_by_side, timing_row


def _sdpa_fn(impl: str, q, k, v, train: bool):
    if train:
        g = torch.randn_like(q)

        def fn():
            out = scaled_dot_product_attention(q, k, v, impl=impl)
            torch.autograd.grad(out, (q, k, v), g)

    else:

        def fn():
            with torch.no_grad():
                return scaled_dot_product_attention(q, k, v, impl=impl)

    return fn


def run(*, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    device = resolve_device(device)
    min_time = 0.05 if quick else 0.5
    rows = []
    for n in (512,) if quick else (1024, 4096):
        torch.manual_seed(0)
        q, k, v = (torch.randn(1, 8, n, 64, device=device, requires_grad=True) for _ in range(3))
        for mode in ("forward", "forward+backward"):
            train = mode != "forward"
            for impl in ("naive", "manual", "chunked"):
                if impl == "manual" and not train:
                    continue  # manual's forward is naive's
                t_ours, t_torch = side_by_side(
                    _sdpa_fn(impl, q, k, v, train), _sdpa_fn("torch", q, k, v, train), min_time
                )
                rows.append(timing_row(t_ours, t_torch, what="sdpa", case=f"{impl} n={n}", mode=mode))

    B, T, E, nh = (2, 128, 128, 4) if quick else (8, 512, 512, 8)
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, nh, batch_first=True, device=device)
    ours = ann.MultiHeadAttention.from_torch(theirs)
    x = torch.randn(B, T, E, device=device, requires_grad=True)

    def step(fn):
        def run_step():
            out = fn()
            out.sum().backward()

        return run_step

    t_ours = None
    for label, fn in (
        ("need_weights=True (default)", lambda: theirs(x, x, x)[0]),
        ("need_weights=False", lambda: theirs(x, x, x, need_weights=False)[0]),
    ):
        t_ours, t_torch = side_by_side(step(lambda: ours(x).output), step(fn), min_time)
        case = f"B={B} T={T} E={E} nh={nh}, torch {label}"
        rows.append(timing_row(t_ours, t_torch, what="mha", case=case, mode="forward+backward"))
    return {"device": device, "quick": quick, "machine": machine(), "rows": rows}


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        "medians; ratio = attnlab / torch (lower is better); SDPA: B=1, 8 heads, hs=64, fp32",
        "",
        "| what | case | mode | attnlab (ms) | torch (ms) | ratio |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['what']} | {r['case']} | {r['mode']} | {r['ours_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f} |"
        )
    return "\n".join(lines)
