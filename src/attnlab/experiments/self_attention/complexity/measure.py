"""The measuring of ``complexity``: time, peak memory and FLOPs of self-attention against n, per implementation
(see the package docstring)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from attnlab._checks import resolve_device
from attnlab.experiments.fits import loglog_slope
from attnlab.functional import scaled_dot_product_attention
from attnlab.measure import median_seconds, peak_memory_bytes

MODES = ("forward", "train")


def _inputs(n: int, cfg: Any, device: str, requires_grad: bool):
    g = torch.Generator().manual_seed(cfg.seed)
    shape = (1, cfg.heads, n, cfg.head_size)  # (B, nh, T, hs)
    return [torch.randn(shape, generator=g).to(device).requires_grad_(requires_grad) for _ in range(3)]


def _forward(impl: str, q, k, v):
    def fn():
        with torch.no_grad():
            return scaled_dot_product_attention(q, k, v, impl=impl)

    return fn


def _train(impl: str, q, k, v, grad_out):
    def fn():
        out = scaled_dot_product_attention(q, k, v, impl=impl)
        torch.autograd.grad(out, (q, k, v), grad_out)

    return fn


def _predicted_mib(history: list[tuple[int, float]], n: int) -> float:
    """Extrapolate a peak from the two largest runs so far (power law), to skip runs that cannot fit."""
    if len(history) < 2:
        return 0.0
    (n0, m0), (n1, m1) = history[-2], history[-1]
    if m0 <= 0 or m1 <= 0:
        return m1
    p = math.log(m1 / m0) / math.log(n1 / n0)
    return m1 * (n / n1) ** max(p, 0.0)


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    mib = 2.0**20
    rows = {impl: {mode: {"n": [], "seconds": [], "peak_mib": []} for mode in MODES} for impl in cfg.impls}
    flops: dict[str, list[float | None]] = {impl: [] for impl in cfg.impls}
    skipped: dict[str, list[str]] = {impl: [] for impl in cfg.impls}
    for impl in cfg.impls:
        for n in cfg.lengths:
            for mode in MODES:
                series = rows[impl][mode]
                predicted = _predicted_mib(list(zip(series["n"], series["peak_mib"], strict=True)), n)
                if predicted > cfg.max_run_mib:
                    skipped[impl].append(f"{mode} n={n} (predicted {predicted:,.0f} MiB)")
                    continue
                q, k, v = _inputs(n, cfg, device, requires_grad=mode == "train")
                fn = _forward(impl, q, k, v) if mode == "forward" else _train(impl, q, k, v, torch.randn_like(q))
                series["n"].append(n)
                series["peak_mib"].append(peak_memory_bytes(fn, device) / mib)
                series["seconds"].append(median_seconds(fn, cfg.min_run_time))
            if n in rows[impl]["forward"]["n"]:
                q, k, v = _inputs(n, cfg, device, requires_grad=False)
                with FlopCounterMode(display=False) as counter:
                    _forward(impl, q, k, v)()
                total = counter.get_total_flops()
                flops[impl].append(total if total > 0 else None)  # torch's CPU flash kernel has no FLOP formula

    metrics: dict[str, Any] = {}
    half = max(2, len(cfg.lengths) // 2)  # fit over the upper half, where the n^2 term dominates
    for impl in cfg.impls:
        for mode in MODES:
            s = rows[impl][mode]
            for key, ys in (("time", s["seconds"]), ("memory", s["peak_mib"])):
                slope = loglog_slope(s["n"][-half:], ys[-half:])
                metrics[f"{key}_slope/{impl}/{mode}"] = None if slope is None else round(slope, 3)
            if s["n"]:
                metrics[f"peak_mib/{impl}/{mode}/n={s['n'][-1]}"] = round(s["peak_mib"][-1], 1)
                metrics[f"ms/{impl}/{mode}/n={s['n'][-1]}"] = round(s["seconds"][-1] * 1e3, 2)
        n_f = rows[impl]["forward"]["n"]
        if flops[impl] and flops[impl][-1]:
            # 4 n^2 hs flops per head: n^2 hs multiply-adds for Q K^T and as many for P V (2 flops each).
            metrics[f"flops_per_n2hs/{impl}"] = round(flops[impl][-1] / (n_f[-1] ** 2 * cfg.head_size * cfg.heads), 3)
        for budget in cfg.budgets_mib:
            metrics[f"max_n_within_{budget}MiB/{impl}/train"] = _max_n_within(rows[impl]["train"], budget)
    verdict = _verdict(cfg, metrics)
    held = all(verdict.values())
    data = {"rows": rows, "flops": flops, "skipped": skipped, "verdict": verdict, "lengths": list(cfg.lengths)}
    return {"held": held, "metrics": metrics, "device": device, "data": data}


def fit_memory_model(ns: list[int], mib: list[float]) -> tuple[float, float, float]:
    """Least-squares ``peak = c0 + c1 n + c2 n^2`` with non-negative coefficients (the terms attention can have:
    buffers, O(n) rows, the O(n^2) matrix)."""
    import numpy as np

    best, best_err = (0.0, 0.0, 0.0), math.inf
    x = np.asarray(ns, dtype=float)
    y = np.asarray(mib, dtype=float)
    for terms in ((0, 1, 2), (0, 1), (0, 2), (1, 2), (1,), (2,), (0,)):  # every subset: keep the best feasible
        a = np.stack([x**p for p in terms], 1)
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        if (coef < 0).any():
            continue
        err = float(((a @ coef - y) ** 2).sum())
        if err < best_err - 1e-12:
            full = [0.0, 0.0, 0.0]
            for p, c in zip(terms, coef, strict=True):
                full[p] = float(c)
            best, best_err = (full[0], full[1], full[2]), err
    return best


def _max_n_within(series: dict[str, list], budget_mib: float) -> dict[str, Any]:
    """The largest measured n within the budget; the n where the fitted memory model reaches it, and the time a
    step would take there (time ~ n^2 from the largest measured n)."""
    measured = [n for n, m in zip(series["n"], series["peak_mib"], strict=True) if m <= budget_mib]
    out: dict[str, Any] = {"measured": max(measured) if measured else None, "predicted": None, "seconds_there": None}
    if len(series["n"]) < 2:
        return out
    c0, c1, c2 = fit_memory_model(series["n"], series["peak_mib"])
    room = budget_mib - c0
    if room <= 0 or (c1 <= 0 and c2 <= 0):
        return out
    n_max = (-c1 + math.sqrt(c1 * c1 + 4 * c2 * room)) / (2 * c2) if c2 > 0 else room / c1
    out["predicted"] = int(n_max)
    out["seconds_there"] = round(series["seconds"][-1] * (n_max / series["n"][-1]) ** 2, 1)
    return out


def _verdict(cfg: Any, m: dict[str, Any]) -> dict[str, bool]:
    v: dict[str, bool] = {}
    for impl in cfg.impls:
        slope = m.get(f"time_slope/{impl}/forward")
        v[f"time_quadratic/{impl}"] = slope is not None and slope >= 1.6  # O(n^2): every implementation
    if "naive" in cfg.impls:
        slope = m.get("memory_slope/naive/forward")
        v["naive_memory_quadratic"] = slope is not None and slope >= 1.6
    if "chunked" in cfg.impls:
        slope = m.get("memory_slope/chunked/train")
        v["chunked_memory_subquadratic"] = slope is not None and slope <= 1.2
    return v


__all__ = ["MODES", "fit_memory_model", "run"]
