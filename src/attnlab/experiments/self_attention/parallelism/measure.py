"""The measuring of ``parallelism``: sequential steps counted in one training step, and its wall clock, for an
LSTM block and an attention block of equal parameters (see the package docstring)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils import benchmark

from attnlab._checks import resolve_device
from attnlab.experiments.fits import linear_fit, loglog_slope
from attnlab.experiments.sequential import count_step
from attnlab.experiments.training import trainer
from attnlab.measure import machine
from attnlab.models.blocks import AttentionBlock, LSTMBlock, attention_block_params, solve_lstm_hidden

CLAIMED_RATIO = (5.0, 10.0)  # "drops 5-10x"
MODELS = ("lstm", "attention")


def _train_step(block: nn.Module, cfg: Any, x: Tensor, y: Tensor, device: str, run_dir: str) -> Callable[[], None]:
    """One training step of ``block`` on ``(x, y)``: the project's Trainer step (forward, MSE, backward, Adam; bf16
    autocast on a GPU)."""
    t = trainer(block, cfg.train, lambda split, gen: (x, y), seed=cfg.seed, device=device, run_dir=run_dir)
    return lambda: t.step(x, y)


def _median(fn: Callable[[], Any], min_run_time: float, threads: int) -> float:
    """Median seconds of one call of an already warmed-up ``fn``, at an explicit ``threads`` count (this
    experiment compares 1 thread with all of them; ``attnlab.measure.median_seconds`` uses the process's count),
    and a single call when one already lasts ``min_run_time``."""
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    once = timer.timeit(1).median
    if once >= min_run_time:  # one call is already as long as a measurement: do not pay for more
        return once
    return timer.blocked_autorange(min_run_time=min_run_time).median


def _time_steps(steps: dict[str, Callable[[], None]], cfg: Any, options: list[int]) -> dict[str, dict[int, list]]:
    """Seconds per step of every block at every thread count, interleaved over ``cfg.rounds`` rounds so that
    drift on a shared machine hits all alike: ``{model: {threads: [one median per round]}}``."""
    times: dict[str, dict[int, list]] = {m: {t: [] for t in options} for m in steps}
    for _ in range(cfg.rounds):
        for t in options:
            for m, fn in steps.items():
                times[m][t].append(_median(fn, cfg.min_run_time, t))
    return times


def _middle(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    threads = cfg.threads or torch.get_num_threads()
    C, B = cfg.d_model, cfg.batch_size
    target = attention_block_params(C, cfg.mlp_ratio)
    hidden = solve_lstm_hidden(C, target)

    def build(model: str) -> nn.Module:
        torch.manual_seed(cfg.seed)
        return LSTMBlock(C, hidden) if model == "lstm" else AttentionBlock(C, cfg.heads, cfg.mlp_ratio)

    params = {m: sum(p.numel() for p in build(m).parameters()) for m in MODELS}
    # On the CPU each block is timed at one thread and at all of them, and the faster counts: the best each
    # can do here (a small op on two threads can lose more to synchronisation than it gains, most of all when
    # something else holds a core).
    options = [1, threads] if device == "cpu" and threads > 1 else [threads]
    keys = ("seconds", "best_threads", "spread", "ops", "depth", "matmul_depth", "flops")
    series: dict[str, dict[str, Any]] = {m: {k: [] for k in keys} for m in MODELS}
    for m in MODELS:
        series[m]["seconds_at"] = {str(t): [] for t in options}
    run_dir = tempfile.TemporaryDirectory(prefix="attnlab-parallelism-")  # the Trainers never write here
    for T in cfg.lengths:
        g = torch.Generator().manual_seed(cfg.seed + T)
        x = torch.randn(B, T, C, generator=g).to(device)  # (B, T, C): the same batch for both blocks
        y = torch.randn(B, T, C, generator=g).to(device)  # (B, T, C) regression targets
        steps = {m: _train_step(build(m), cfg, x, y, device, run_dir.name) for m in MODELS}
        for m in MODELS:
            count = count_step(steps[m])  # the first step (Adam's state is created here)
            for key in ("ops", "depth", "matmul_depth", "flops"):
                series[m][key].append(getattr(count, key))
            steps[m]()  # warm-up outside the counting modes
        times = _time_steps(steps, cfg, options)
        for m in MODELS:
            medians = {t: _middle(v) for t, v in times[m].items()}
            best = min(medians, key=medians.__getitem__)
            series[m]["seconds"].append(medians[best])
            series[m]["best_threads"].append(best)
            series[m]["spread"].append(max(max(v) / min(v) for v in times[m].values()))  # across rounds
            for t, sec in medians.items():
                series[m]["seconds_at"][str(t)].append(sec)
    run_dir.cleanup()

    metrics, verdict = _metrics(cfg, series, params, hidden, options)
    held = all(verdict.values())
    data = {
        "lengths": list(cfg.lengths),
        "series": series,
        "params": params,
        "lstm_hidden": hidden,
        "ratio": [a / b for a, b in zip(series["lstm"]["seconds"], series["attention"]["seconds"], strict=True)],
        "claimed_ratio": list(CLAIMED_RATIO),
        "thread_options": options,
        "threads": threads,
        "device": device,
        "machine": machine(),
        "verdict": verdict,
    }
    return {"held": held, "metrics": metrics, "device": device, "data": data}


def _metrics(
    cfg: Any, series: dict, params: dict, hidden: int, options: list[int]
) -> tuple[dict[str, Any], dict[str, bool]]:
    lengths = list(cfg.lengths)
    m: dict[str, Any] = {"params/lstm": params["lstm"], "params/attention": params["attention"]}
    m["lstm_hidden"] = hidden
    half = max(2, len(lengths) // 2)  # fit over the upper half of T
    for model in MODELS:
        s = series[model]
        slope, intercept = linear_fit(lengths, s["matmul_depth"])
        m[f"seq_matmuls_per_position/{model}"] = round(slope, 3)  # d(sequential matrix products)/dT
        m[f"seq_matmuls_intercept/{model}"] = round(intercept, 3)
        m[f"seq_ops_per_position/{model}"] = round(linear_fit(lengths, s["depth"])[0], 3)
        m[f"time_exponent/{model}"] = round(loglog_slope(lengths[-half:], s["seconds"][-half:]), 3)
        m[f"flops_exponent/{model}"] = round(loglog_slope(lengths[-half:], s["flops"][-half:]), 3)
        for T, sec, mm in zip(lengths, s["seconds"], s["matmul_depth"], strict=True):
            m[f"ms/{model}/T={T}"] = round(sec * 1e3, 3)
            m[f"seq_matmuls/{model}/T={T}"] = mm
        m[f"gflop_per_s/{model}/T={lengths[-1]}"] = round(s["flops"][-1] / s["seconds"][-1] / 1e9, 2)
        if len(options) > 1:  # time at 1 thread / time at all of them
            at = s["seconds_at"]
            m[f"thread_speedup/{model}/T={lengths[-1]}"] = round(at["1"][-1] / at[str(options[-1])][-1], 3)
            m[f"best_threads/{model}/T={lengths[-1]}"] = s["best_threads"][-1]
    ratios = [a / b for a, b in zip(series["lstm"]["seconds"], series["attention"]["seconds"], strict=True)]
    for T, r in zip(lengths, ratios, strict=True):
        m[f"ratio/T={T}"] = round(r, 3)
    m["ratio_at_longest"] = round(ratios[-1], 3)
    m["ratio_max"] = round(max(ratios), 3)
    m["flop_ratio_at_longest"] = round(series["lstm"]["flops"][-1] / series["attention"]["flops"][-1], 3)
    # How much repeats of one measurement differed (max / min over rounds): a busy machine shows here.
    m["timing_spread_max"] = round(max(max(series[model]["spread"]) for model in MODELS), 3)
    attn_mm = series["attention"]["matmul_depth"]
    verdict = {
        # At least one dependent matrix product per position: T steps that cannot overlap.
        "lstm_sequential_steps_grow_with_T": m["seq_matmuls_per_position/lstm"] >= 1.0
        and all(b > a for a, b in pairwise(series["lstm"]["matmul_depth"])),
        "attention_sequential_steps_constant": max(attn_mm) == min(attn_mm),
        "wall_clock_ratio_reaches_5x": ratios[-1] >= CLAIMED_RATIO[0],
    }
    return m, verdict


__all__ = ["CLAIMED_RATIO", "MODELS", "run"]
