"""Experiment ``complexity`` (claim C5; seed 001 objective 6, seed 003): self-attention's O(n^2) cost.

Every query scores every key: ``Q K^T`` is an ``(n, n)`` matrix per head, so time grows as ``n^2 d`` whatever
the implementation. Memory depends on the implementation: the naive one materializes the matrix (O(n^2));
the chunked (FlashAttention-style) one and torch's fused kernel keep one tile (O(n)). The memory a device has
therefore bounds the context window of naive attention, and the time bounds every implementation's.

Measured for ``impl`` in naive / chunked / torch, B=1, 8 heads, hs=64, float32, over sequence lengths n:
median time (``torch.utils.benchmark``) and peak extra memory (:func:`attnlab.measure.peak_memory_bytes`) of
the forward and of a training step (forward + backward), FLOPs of the forward (``torch.utils.flop_counter``),
log-log slopes fitted over the upper half of n, and the largest n that fits each memory budget.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from attnlab._checks import resolve_device
from attnlab.experiments.base import ExperimentConfig, ExperimentSpec
from attnlab.experiments.fitting import loglog_slope
from attnlab.functional import scaled_dot_product_attention
from attnlab.measure import median_seconds, peak_memory_bytes

IMPLS = ("naive", "chunked", "torch")
MODES = ("forward", "train")


@dataclass(frozen=True)
class Config(ExperimentConfig):
    lengths: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192)
    heads: int = 8
    head_size: int = 64
    impls: tuple[str, ...] = IMPLS
    budgets_mib: tuple[int, ...] = (1024, 8192)
    min_run_time: float = 0.5  # seconds of repeats per timing (median)
    # Above this many MiB of predicted peak an impl is not run at a length (protects the machine); the
    # budgets are answered from the runs below it.
    max_run_mib: int = 6144

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {},
        "quick": {"lengths": (256, 512, 1024, 2048), "min_run_time": 0.1},
        # Lengths past the chunked tile size (512), so its linear memory shows; one small head keeps it fast.
        "tiny": {"lengths": (1024, 2048, 4096), "heads": 1, "head_size": 16, "min_run_time": 0.01},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.lengths) < 2 or sorted(set(self.lengths)) != list(self.lengths) or self.lengths[0] < 1:
            raise ValueError(f"lengths: expected at least two increasing positive lengths, got {self.lengths!r}")
        for name in ("heads", "head_size", "max_run_mib"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)!r}")
        if not self.impls or any(i not in IMPLS for i in self.impls):
            raise ValueError(f"impls: expected names from {IMPLS}, got {self.impls!r}")
        if not self.budgets_mib or any(b <= 0 for b in self.budgets_mib):
            raise ValueError(f"budgets_mib: expected positive budgets, got {self.budgets_mib!r}")
        if not self.min_run_time > 0:
            raise ValueError(f"min_run_time: expected a positive number of seconds, got {self.min_run_time!r}")


def _inputs(n: int, cfg: Config, device: str, requires_grad: bool):
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


def run(cfg: Config) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    mib = 2.0**20
    rows = {impl: {mode: {"n": [], "seconds": [], "peak_mib": []} for mode in MODES} for impl in cfg.impls}
    flops: dict[str, list[float | None]] = {impl: [] for impl in cfg.impls}
    skipped: dict[str, list[str]] = {impl: [] for impl in cfg.impls}
    bar = tqdm(total=len(cfg.impls) * len(cfg.lengths), disable=not sys.stderr.isatty(), leave=False)
    for impl in cfg.impls:
        for n in cfg.lengths:
            bar.update()
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
    bar.close()

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
    return {
        "held": held,
        "metrics": metrics,
        "setup": _setup(cfg, device),
        "summary": _summary(cfg, metrics, verdict, held, skipped),
        "data": {"rows": rows, "flops": flops, "skipped": skipped, "verdict": verdict, "lengths": list(cfg.lengths)},
    }


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


def _verdict(cfg: Config, m: dict[str, Any]) -> dict[str, bool]:
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


def _setup(cfg: Config, device: str) -> str:
    return (
        f"attnlab.functional.scaled_dot_product_attention with impl in {list(cfg.impls)} on {device}: B=1, "
        f"{cfg.heads} heads, head size {cfg.head_size}, float32, no mask, n in {list(cfg.lengths)}. Time: median "
        f"of torch.utils.benchmark repeats ({cfg.min_run_time:g} s each). Memory: peak tensor memory above the "
        "starting point during the call (the allocator's reports, attnlab.measure.peak_memory_bytes). "
        "Forward under no_grad; training step = forward + backward into Q, K and V. FLOPs: FlopCounterMode on the "
        "forward. Slopes: least-squares log-log fit over the upper half of n. Budgets: the largest measured n "
        f"whose training step fits, and where the fitted power law crosses {list(cfg.budgets_mib)} MiB."
    )


def _summary(cfg, m, verdict, held, skipped) -> str:
    parts = []
    for impl in cfg.impls:
        parts.append(
            f"{impl}: time ~ n^{m.get(f'time_slope/{impl}/forward')} (forward), "
            f"~ n^{m.get(f'time_slope/{impl}/train')} (train); memory ~ n^{m.get(f'memory_slope/{impl}/forward')} "
            f"(forward), ~ n^{m.get(f'memory_slope/{impl}/train')} (train)"
        )
    text = "Fitted exponents: " + "; ".join(parts) + ". "
    budgets = []
    for b in cfg.budgets_mib:
        per = ", ".join(_budget_text(impl, m[f"max_n_within_{b}MiB/{impl}/train"]) for impl in cfg.impls)
        budgets.append(f"{b} MiB: {per}")
    text += "Longest context whose training step fits (n): " + "; ".join(budgets) + ". "
    if any(skipped.values()):
        text += (
            "Not run (predicted over the machine's limit): "
            + "; ".join(f"{i}: {', '.join(s)}" for i, s in skipped.items() if s)
            + ". "
        )
    if held:
        text += (
            "The claim held: every implementation's time grows as n^2, and naive attention's memory grows as "
            "n^2, which is what bounds its context window; tiling (chunked, torch's fused kernel) makes memory "
            "linear but leaves the n^2 time."
        )
    else:
        text += "Not every part held: " + ", ".join(k for k, ok in verdict.items() if not ok) + "."
    return text


def _budget_text(impl: str, r: dict[str, Any]) -> str:
    text = f"{impl} {r['measured']} measured"
    if r["predicted"] is not None:
        text += f", ~{r['predicted']:,} by the fitted memory model (a training step there: ~{r['seconds_there']:,} s)"
    return text


def plot(result: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    rows = result["data"]["rows"]
    colors = {"naive": "tab:red", "chunked": "tab:blue", "torch": "tab:green"}
    figs = {}
    for key, label in (("seconds", "time (s)"), ("peak_mib", "peak extra memory (MiB)")):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for impl, modes in rows.items():
            for mode, style in (("forward", "o-"), ("train", "s--")):
                s = modes[mode]
                if s["n"]:
                    ax.plot(s["n"], s[key], style, color=colors.get(impl), label=f"{impl} {mode}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n")
        ax.set_ylabel(label)
        what = "Time" if key == "seconds" else "Peak memory"
        ax.set_title(f"{what} of self-attention against n (log-log)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
        figs["time" if key == "seconds" else "memory"] = fig
    return figs


SPEC = ExperimentSpec(
    name="complexity",
    title="The O(n^2) cost of self-attention and the context window",
    claim=(
        "Self-attention costs O(n^2) time and memory in the sequence length n, which is why it limits the "
        "context length (the context window)."
    ),
    source="Seed 001 (chapter 3), learning objective 6 and section 3.3; seed 003 (why all-to-all attention "
    "gives rise to a context window)",
    config_cls=Config,
    run=run,
    plot=plot,
)
