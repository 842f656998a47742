"""``attnlab bench attention-memory``: chunked attention's linear memory where naive attention cannot fit.

B=1, 8 heads, hs=64, float32, no mask. Peak extra tensor memory (:func:`attnlab.measure.peak_memory_bytes`)
of the forward at n=16384 for naive and chunked, and the forward and forward+backward of chunked at n=65536,
whose naive form would need two (n, n) matrices per head: 2 * 8 * 65536^2 * 4 bytes = 256 GiB.
Naive at n=16384 needs about 16 GiB: run this on a machine with at least 24 GiB and nothing else big running.

Sliding window (Longformer; Mistral 7B): chunked causal attention with a window w = 1024 at n = 32768 and 65536,
forward+backward: the tiles left of each window are skipped, so memory and time both grow linearly in n (fitted
slopes ``log(y2 / y1) / log(n2 / n1)``, against 2 for time without a window).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from attnlab.functional import AttentionMask, scaled_dot_product_attention
from attnlab.measure import machine, peak_memory_bytes

GIB = 2.0**30


def _inputs(n: int, requires_grad: bool):
    torch.manual_seed(0)
    return [torch.randn(1, 8, n, 64, requires_grad=requires_grad) for _ in range(3)]


def run(*, quick: bool = False) -> dict[str, Any]:
    n_cmp, n_long = (2048, 4096) if quick else (16384, 65536)
    rows = []
    q, k, v = _inputs(n_cmp, False)
    for impl in ("chunked", "naive"):

        def fwd(impl=impl):
            with torch.no_grad():
                return scaled_dot_product_attention(q, k, v, impl=impl)

        t0 = time.perf_counter()
        peak = peak_memory_bytes(fwd)
        rows.append({"impl": impl, "n": n_cmp, "mode": "forward", "peak_gib": peak / GIB, "seconds": None})
        rows[-1]["seconds"] = round(time.perf_counter() - t0, 2)
    del q, k, v
    q, k, v = _inputs(n_long, True)
    g = torch.randn_like(q)

    def fwd_long():
        with torch.no_grad():
            return scaled_dot_product_attention(q, k, v, impl="chunked")

    def train_long():
        out = scaled_dot_product_attention(q, k, v, impl="chunked")
        torch.autograd.grad(out, (q, k, v), g)

    for mode, fn in (("forward", fwd_long), ("forward+backward", train_long)):
        t0 = time.perf_counter()
        peak = peak_memory_bytes(fn)
        rows.append(
            {
                "impl": "chunked",
                "n": n_long,
                "mode": mode,
                "peak_gib": peak / GIB,
                "seconds": round(time.perf_counter() - t0, 2),
            }
        )
    naive_needs = 2 * 8 * n_long**2 * 4 / GIB
    chunked, naive = rows[0]["peak_gib"], rows[1]["peak_gib"]
    sizes, w = ((1024, 2048), 128) if quick else ((32768, 65536), 1024)
    return {
        "quick": quick,
        "machine": machine(),
        "rows": rows,
        "chunked_over_naive_at_n": {"n": n_cmp, "ratio": round(chunked / naive, 5) if naive else None},
        "naive_would_need_gib_at_long_n": naive_needs,
        "window": window_scaling(sizes, w),
    }


def window_scaling(sizes: tuple[int, int], window: int, heads: int = 8, head_size: int = 64) -> dict[str, Any]:
    """Chunked sliding-window causal attention, forward+backward, at two lengths: peak extra tensor memory and
    wall time (the better of two calls) at each, and their slopes in log-log (1 = linear in n, 2 = quadratic)."""
    mask = AttentionMask(causal="upper_left", window=window)
    rows = []
    for n in sizes:
        torch.manual_seed(0)
        q, k, v = (torch.randn(1, heads, n, head_size, requires_grad=True) for _ in range(3))
        g = torch.randn_like(q)

        def train(q=q, k=k, v=v, g=g):
            out = scaled_dot_product_attention(q, k, v, mask, impl="chunked")
            torch.autograd.grad(out, (q, k, v), g)

        peak = peak_memory_bytes(train)  # also the warm-up
        seconds = []
        for _ in range(2):  # the better of two calls: a busy machine only ever adds time
            t0 = time.perf_counter()
            train()
            seconds.append(time.perf_counter() - t0)
        rows.append({"n": n, "peak_gib": peak / GIB, "seconds": round(min(seconds), 3)})
        del q, k, v, g
    (a, b), ratio = rows, math.log(sizes[1] / sizes[0])
    return {
        "window": window,
        "heads": heads,
        "head_size": head_size,
        "rows": rows,
        "memory_slope": math.log(b["peak_gib"] / a["peak_gib"]) / ratio,
        "time_slope": math.log(max(b["seconds"], 1e-9) / max(a["seconds"], 1e-9)) / ratio,
    }


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        "B=1, 8 heads, hs=64, fp32; peak extra tensor memory of one call",
        "",
        "| impl | n | mode | peak (GiB) | wall (s) |",
        "|---|---:|---|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['impl']} | {r['n']} | {r['mode']} | {r['peak_gib']:.3f} | {r['seconds']:.1f} |")
    c = result["chunked_over_naive_at_n"]
    lines += [
        "",
        f"chunked / naive forward peak at n={c['n']}: {c['ratio']}; naive at the long n would need "
        f"{result['naive_would_need_gib_at_long_n']:.0f} GiB for its two (n, n) matrices per head.",
    ]
    win = result.get("window")
    if win:
        lines += [
            "",
            f"Sliding window w={win['window']} (chunked, causal, forward+backward, {win['heads']} heads, "
            f"hs={win['head_size']}):",
            "",
            "| n | peak (GiB) | wall (s) |",
            "|---:|---:|---:|",
            *(f"| {r['n']} | {r['peak_gib']:.3f} | {r['seconds']:.1f} |" for r in win["rows"]),
            "",
            f"slopes in n: memory {win['memory_slope']:.2f}, time {win['time_slope']:.2f} (1 = linear, 2 = quadratic)",
        ]
    return "\n".join(lines)
