"""The measuring of ``decode-cost``: per generated token, the time, the counted FLOPs and the decoding memory of
softmax attention with a KV cache, linear attention and Mamba against the context length (see the package
docstring)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from attnlab._checks import resolve_device
from attnlab.experiments.base import measured
from attnlab.experiments.beyond.mixers import matched_configs
from attnlab.experiments.fits import exact_line, linear_fit, loglog_slope
from attnlab.experiments.training import one_thread
from attnlab.models.gpt import GPT

# not beside another experiment: it times decoding one token (CPU time of its thread), which sharing
# the cores would disturb
SHARES_CORES = False

Key = tuple[str, int]  # (mixer, context length)
QUANTILE = 0.25  # the time of a (mixer, length): the lower quartile of its rounds (other processes only add time)


def _cpu_sdpa_flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of torch's CPU flash-attention kernel, which the counter has no formula for: Q K^T and P V, as for
    the CUDA kernels (``4 S hs`` per query and head)."""
    return sdpa_flop_count(q_shape, k_shape, v_shape)


COUNTED = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


def extra_positions(cfg: Any) -> int:
    """Positions decoded after the prefill of each length: one counted step, then a warm-up and a timed step per
    round."""
    return 1 + 2 * cfg.rounds


def build(cfg: Any, device: str) -> dict[str, GPT]:
    """One model per mixer at matched parameters, in eval mode, with a position table for the longest context."""
    fields = {"vocab_size": cfg.vocab_size, "block_size": max(cfg.lengths) + extra_positions(cfg),
              "n_layer": cfg.n_layer, "n_head": cfg.n_head, "d_state": cfg.d_state}  # fmt: skip
    models = {}
    for mixer, gpt_cfg in matched_configs(cfg.mixers, cfg.n_embd, **fields).items():
        torch.manual_seed(cfg.seed)
        models[mixer] = GPT(gpt_cfg).to(device).eval()
    return models


def timed(fn: Callable[[], Any], device: str) -> tuple[float, float]:
    """``(seconds, wall seconds)`` of one call. On the CPU the first is the CPU time of this thread (the work
    done: on a shared machine the wall time also counts the time other processes hold the core); on a GPU both are
    the wall time between synchronisations."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
        return wall, wall
    start, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.thread_time() - cpu, time.perf_counter() - start


def _prefill(model: GPT, n: int, cfg: Any, device: str, gen: torch.Generator) -> tuple[list, float, int]:
    """Caches holding a random prompt of n tokens per sequence (sized for the steps to come), the prefill's wall
    seconds, and the counted FLOPs of the first decoding step (context n)."""
    prompt = torch.randint(cfg.vocab_size, (cfg.batch_size, n), generator=gen).to(device)  # (B, n)
    caches = [block.new_cache(n + extra_positions(cfg)) for block in model.blocks]
    _, seconds = timed(lambda: model(prompt, caches=caches), device)
    with FlopCounterMode(display=False, custom_mapping=COUNTED) as counter:
        model(prompt[:, -1:], caches=caches)  # (B, 1): one new token
    return caches, seconds, counter.get_total_flops()


@torch.no_grad()
def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    B, gen = cfg.batch_size, torch.Generator().manual_seed(cfg.seed)
    models = build(cfg, device)
    keys: list[Key] = [(m, n) for m in cfg.mixers for n in cfg.lengths]
    caches, prefill, flops = {}, {}, {}
    with one_thread(device):  # decoding one token: one thread, the same on every run
        for key in keys:
            caches[key], prefill[key], flops[key] = _prefill(models[key[0]], key[1], cfg, device, gen)
        token = torch.randint(cfg.vocab_size, (B, 1), generator=gen).to(device)  # (B, 1)
        seconds: dict[Key, list[float]] = {k: [] for k in keys}
        wall: dict[Key, list[float]] = {k: [] for k in keys}
        for _ in range(cfg.rounds):  # every (mixer, length) once per round, in a fresh random order
            for i in torch.randperm(len(keys), generator=gen).tolist():
                key = keys[i]

                def step(model=models[key[0]], c=caches[key]):
                    return model(token, caches=c)

                step()  # warm: weights and cache as in steady decoding
                s, w = timed(step, device)
                seconds[key].append(s / B)
                wall[key].append(w / B)
    memory = {k: sum(c.nbytes() for c in caches[k]) // B for k in keys}  # per sequence, at context n + extra
    return measured(*_summarise(cfg, models, seconds, wall, prefill, flops, memory), device)


def quantile(xs: list[float], q: float) -> float:
    """The q-quantile of the samples (linear interpolation between order statistics)."""
    return float(torch.quantile(torch.tensor(xs, dtype=torch.float64), q))


def timed_context(cfg: Any, n: int) -> int:
    """The context at the middle of the timed steps after a prefill of n: each round adds two positions."""
    return n + 1 + cfg.rounds


def _summarise(cfg: Any, models, seconds, wall, prefill, flops, memory) -> tuple[dict, dict, dict]:
    ns, extra, B = list(cfg.lengths), extra_positions(cfg), cfg.batch_size
    fit = [i for i, n in enumerate(ns) if n >= cfg.fit_from]
    xs = [timed_context(cfg, n) for n in ns]  # where the times were taken
    m: dict[str, Any] = {}
    series: dict[str, dict[str, Any]] = {}
    for mixer in cfg.mixers:
        s = {
            "width": models[mixer].config.n_embd,
            "params": sum(p.numel() for p in models[mixer].parameters()),
            "seconds_per_token": [quantile(seconds[mixer, n], QUANTILE) for n in ns],
            "median_per_token": [quantile(seconds[mixer, n], 0.5) for n in ns],
            "wall_per_token": [quantile(wall[mixer, n], QUANTILE) for n in ns],
            "samples": [seconds[mixer, n] for n in ns],
            "prefill_seconds": [prefill[mixer, n] for n in ns],
            "flops_per_token": [flops[mixer, n] // B for n in ns],
            "memory_bytes": [memory[mixer, n] for n in ns],
        }
        t = s["seconds_per_token"]
        s["time_slope"] = loglog_slope([xs[i] for i in fit], [t[i] for i in fit])
        s["time_slope_all"] = loglog_slope(xs, t)
        s["median_slope"] = loglog_slope([xs[i] for i in fit], [s["median_per_token"][i] for i in fit])
        s["wall_slope"] = loglog_slope([xs[i] for i in fit], [s["wall_per_token"][i] for i in fit])
        s["prefill_slope"] = loglog_slope([ns[i] for i in fit], [s["prefill_seconds"][i] for i in fit])
        f_slope, f_fixed, f_res = exact_line(ns, s["flops_per_token"])  # FLOPs = fixed + per_position * n
        b_slope, b_fixed, b_res = exact_line([n + extra for n in ns], s["memory_bytes"])
        s.update(flops_per_position=float(f_slope), flops_fixed=float(f_fixed), flops_exact=not any(f_res),
                 bytes_per_position=float(b_slope), bytes_fixed=float(b_fixed), bytes_exact=not any(b_res))  # fmt: skip
        budget = cfg.memory_budget_mib * 2**20
        s["longest_context"] = int((budget - b_fixed) / b_slope) if b_slope > 0 else None  # None: no limit
        series[mixer] = s
        m[f"time_slope/{mixer}"] = round(s["time_slope"], 3)
        m[f"time_slope_all_lengths/{mixer}"] = round(s["time_slope_all"], 3)
        m[f"median_time_slope/{mixer}"] = round(s["median_slope"], 3)
        m[f"us_per_token/{mixer}/n={ns[0]}"] = round(t[0] * 1e6, 2)
        m[f"us_per_token/{mixer}/n={ns[-1]}"] = round(t[-1] * 1e6, 2)
        m[f"flops_per_token_per_position/{mixer}"] = s["flops_per_position"]
        m[f"flops_per_token_fixed/{mixer}"] = s["flops_fixed"]
        m[f"bytes_per_position/{mixer}"] = s["bytes_per_position"]
        m[f"bytes_fixed/{mixer}"] = s["bytes_fixed"]
        m[f"longest_context_in_{cfg.memory_budget_mib}MiB/{mixer}"] = s["longest_context"]
        m[f"params/{mixer}"] = s["params"]
    verdict: dict[str, bool] = {}
    if "attention" in series:
        a = series["attention"]
        slope, fixed = linear_fit(xs, a["seconds_per_token"])  # t = fixed + slope * n
        m["crossover_time"] = round(fixed / slope) if slope > 0 and fixed > 0 else None
        m["crossover_flops"] = round(a["flops_fixed"] / a["flops_per_position"]) if a["flops_per_position"] else None
        verdict["attention_time_grows"] = a["time_slope"] > cfg.growing_min
        verdict["attention_flops_and_memory_grow"] = a["flops_per_position"] > 0 and a["bytes_per_position"] > 0
    for mixer in (x for x in cfg.mixers if x != "attention"):
        s = series[mixer]
        verdict[f"{mixer}_time_flat"] = abs(s["time_slope"]) <= cfg.flat_max
        verdict[f"{mixer}_flops_and_memory_constant"] = s["flops_per_position"] == 0 and s["bytes_per_position"] == 0
    data = {"lengths": ns, "timed_contexts": xs, "fit_lengths": [ns[i] for i in fit], "extra_positions": extra,
            "series": series}  # fmt: skip
    return verdict, m, data


__all__ = ["COUNTED", "QUANTILE", "build", "extra_positions", "quantile", "run", "timed", "timed_context"]
