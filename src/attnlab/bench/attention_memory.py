"""``attnlab bench attention-memory``: chunked attention's linear memory where naive attention cannot fit.

B=1, 8 heads, hs=64, float32. Peak extra tensor memory (:func:`attnlab.measure.peak_memory_bytes`):

- the forward at n=16384 of naive and chunked attention, no mask;
- the chunked forward with no mask, causal (``is_causal=True``) and a key-padding mask (the last eighth of the keys
  padded, :class:`~attnlab.functional.AttentionMask`) at n=4096 and 16384, and the slope of peak memory in n
  between them (1 = linear; a ``(T, S)`` mask alone would make it 2);
- the chunked forward and forward+backward at n=65536, without a mask and causal, whose naive form would need two
  (n, n) matrices per head: 2 * 8 * 65536^2 * 4 bytes = 256 GiB.

Naive at n=16384 needs about 16 GiB: run this on a machine with at least 24 GiB and nothing else big running.

Sliding window (Longformer; Mistral 7B): chunked causal attention with a window w = 1024 at n = 32768 and 65536,
forward+backward: the tiles left of each window are skipped, so memory and time both grow linearly in n (slopes
``log(y2 / y1) / log(n2 / n1)``; time without a window grows as n^2).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from attnlab._checks import resolve_device
from attnlab.functional import AttentionMask, scaled_dot_product_attention
from attnlab.measure import machine, peak_memory_bytes

GIB = 2.0**30
MASKS = ("none", "causal", "key-padding")


def _inputs(n: int, requires_grad: bool, device: str):
    torch.manual_seed(0)
    return [torch.randn(1, 8, n, 64, device=device, requires_grad=requires_grad) for _ in range(3)]


def _mask(kind: str, n: int, device: str) -> dict[str, Any]:
    """The SDPA keywords of one mask kind."""
    if kind == "causal":
        return {"is_causal": True}
    if kind == "key-padding":
        real = torch.ones(1, 1, n, dtype=torch.bool, device=device)
        real[..., n - n // 8 :] = False  # the last eighth of the keys is padding
        return {"attn_mask": AttentionMask(key_padding=real)}
    return {}


def _measure(rows, impl, n, mode, mask, fn, device) -> None:
    t0 = time.perf_counter()
    peak = peak_memory_bytes(fn, device)
    seconds = round(time.perf_counter() - t0, 2)
    rows.append({"impl": impl, "n": n, "mode": mode, "mask": mask, "peak_gib": peak / GIB, "seconds": seconds})


def _call(q, k, v, impl, kw, train: bool):
    g = torch.randn_like(q) if train else None

    def fn():
        if train:
            out = scaled_dot_product_attention(q, k, v, impl=impl, **kw)
            torch.autograd.grad(out, (q, k, v), g)
        else:
            with torch.no_grad():
                scaled_dot_product_attention(q, k, v, impl=impl, **kw)

    return fn


def run(*, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    device = resolve_device(device)
    n_cmp, n_long = (2048, 4096) if quick else (16384, 65536)
    sizes = (1024, 4096) if quick else (4096, 16384)
    rows: list[dict[str, Any]] = []
    q, k, v = _inputs(n_cmp, False, device)
    for impl in ("chunked", "naive"):
        _measure(rows, impl, n_cmp, "forward", "none", _call(q, k, v, impl, {}, False), device)
    slopes = {}
    for mask in MASKS:
        peaks = []
        for n in sizes:
            q, k, v = _inputs(n, False, device)
            _measure(
                rows, "chunked", n, "forward", mask, _call(q, k, v, "chunked", _mask(mask, n, device), False), device
            )
            peaks.append(rows[-1]["peak_gib"])
        slopes[mask] = round(math.log(peaks[1] / peaks[0]) / math.log(sizes[1] / sizes[0]), 3)
    del q, k, v
    q, k, v = _inputs(n_long, True, device)
    for mask in ("none", "causal"):
        for mode, train in (("forward", False), ("forward+backward", True)):
            if mask == "causal" and not train:
                continue  # the causal forward is the cheaper half of the causal forward+backward
            kw = _mask(mask, n_long, device)
            _measure(rows, "chunked", n_long, mode, mask, _call(q, k, v, "chunked", kw, train), device)
    naive_needs = 2 * 8 * n_long**2 * 4 / GIB
    chunked, naive = rows[0]["peak_gib"], rows[1]["peak_gib"]
    return {
        "quick": quick,
        "device": device,
        "machine": machine(),
        "rows": rows,
        "chunked_over_naive_at_n": {"n": n_cmp, "ratio": round(chunked / naive, 5) if naive else None},
        "memory_slope_in_n": {"sizes": list(sizes), **slopes},
        "naive_would_need_gib_at_long_n": naive_needs,
        "window": window_scaling((1024, 2048) if quick else (32768, 65536), 128 if quick else 1024, device=device),
    }


def window_scaling(
    sizes: tuple[int, int], window: int, heads: int = 8, head_size: int = 64, device: str = "cpu"
) -> dict[str, Any]:
    """Chunked sliding-window causal attention, forward+backward, at two lengths: peak extra tensor memory and
    wall time (the better of two calls) at each, and their slopes in log-log (1 = linear in n, 2 = quadratic)."""
    mask = AttentionMask(causal="upper_left", window=window)
    rows = []
    for n in sizes:
        torch.manual_seed(0)
        q, k, v = (torch.randn(1, heads, n, head_size, device=device, requires_grad=True) for _ in range(3))
        g = torch.randn_like(q)

        def train(q=q, k=k, v=v, g=g):
            out = scaled_dot_product_attention(q, k, v, mask, impl="chunked")
            torch.autograd.grad(out, (q, k, v), g)

        peak = peak_memory_bytes(train, device)  # also the warm-up
        seconds = []
        for _ in range(2):  # the better of two calls: a busy machine only ever adds time
            t0 = time.perf_counter()
            train()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
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
        f"B=1, 8 heads, hs=64, fp32, on {result['device']}; peak extra tensor memory of one call",
        "",
        "| impl | n | mode | mask | peak (GiB) | wall (s) |",
        "|---|---:|---|---|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['impl']} | {r['n']} | {r['mode']} | {r['mask']} | {r['peak_gib']:.4f} | {r['seconds']:.1f} |"
        )
    c, sl = result["chunked_over_naive_at_n"], result["memory_slope_in_n"]
    slopes = ", ".join(f"{m} {sl[m]}" for m in MASKS)
    lines += [
        "",
        f"chunked / naive forward peak at n={c['n']}: {c['ratio']}; naive at the long n would need "
        f"{result['naive_would_need_gib_at_long_n']:.0f} GiB for its two (n, n) matrices per head.",
        f"chunked forward memory slope in n between {sl['sizes'][0]} and {sl['sizes'][1]}: {slopes}.",
    ]
    if result.get("window"):
        lines += ["", window_markdown(result["window"])]
    return "\n".join(lines)


def window_markdown(win: dict[str, Any]) -> str:
    """The sliding-window rows of :func:`window_scaling` as a table with their slopes."""
    lines = [
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
