"""``attnlab bench attention-memory``: chunked attention's linear memory where naive attention cannot fit.

B=1, 8 heads, hs=64, float32, no mask. Peak extra tensor memory (:func:`attnlab.measure.peak_memory_bytes`)
of the forward at n=16384 for naive and chunked, and the forward and forward+backward of chunked at n=65536,
whose naive form would need two (n, n) matrices per head: 2 * 8 * 65536^2 * 4 bytes = 256 GiB.
Naive at n=16384 needs about 16 GiB: run this on a machine with at least 24 GiB and nothing else big running.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from attnlab.functional import scaled_dot_product_attention
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
    return {
        "quick": quick,
        "machine": machine(),
        "rows": rows,
        "chunked_over_naive_at_n": {"n": n_cmp, "ratio": round(chunked / naive, 5) if naive else None},
        "naive_would_need_gib_at_long_n": naive_needs,
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
    return "\n".join(lines)
