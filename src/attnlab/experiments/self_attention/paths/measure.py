"""The measuring of ``paths``: Vaswani et al.'s Table 1 on the project's layers, FLOPs against n, d and k, the
longest chain of dependent products, and path lengths through gradients (see the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor

import attnlab.nn as ann
from attnlab._checks import resolve_device
from attnlab.experiments.base import measured
from attnlab.experiments.fits import linear_fit, loglog_slope
from attnlab.experiments.self_attention.paths.config import LAYERS, PAPER_EXPONENTS, PATH_LAYERS
from attnlab.experiments.self_attention.paths.probes import (
    band_mask,
    expected_path,
    first_nonzero,
    layer_path_probe,
    recurrent_path_probe,
)
from attnlab.experiments.sequential import count_step
from attnlab.models.blocks import CausalConv

# the report may run it beside another experiment: it counts FLOPs, sequential steps and gradient paths, not time
SHARES_CORES = True


def _layer(kind: str, d: int, cfg: Any, k: int | None = None) -> Callable[[Tensor], Tensor]:
    """One layer of each kind as a function (B, n, d) -> (B, n, d), float32, seeded."""
    torch.manual_seed(cfg.seed)
    if kind == "attention":
        mha = ann.MultiHeadAttention(d, cfg.heads, impl="naive")
        return lambda x: mha(x).output
    if kind == "restricted":
        mha = ann.MultiHeadAttention(d, cfg.heads, impl="naive")
        return lambda x: mha(x, attn_mask=band_mask(x.shape[1], cfg.window, x.device)).output
    if kind == "recurrent":
        rnn = ann.RNN(d, d, batch_first=True)
        return lambda x: rnn(x)[0]
    conv = CausalConv(d, cfg.kernel_size if k is None else k)
    return conv


def _count(kind: str, n: int, d: int, cfg: Any, k: int | None = None) -> dict[str, int]:
    layer = _layer(kind, d, cfg, k)
    x = torch.randn(1, n, d, generator=torch.Generator().manual_seed(cfg.seed))  # (B=1, n, d)

    def forward() -> None:
        with torch.no_grad():
            layer(x)

    c = count_step(forward)
    core = c.flops_by_op.get("aten.bmm", 0)  # attention: Q K^T and P V (the projections are addmm/mm)
    return {"flops": c.flops, "core": core, "matmul_depth": c.matmul_depth, "depth": c.depth, "ops": c.ops}


def run(cfg: Any) -> dict[str, Any]:
    resolve_device(cfg.device)  # validates; counting and gradient probes are small and run on the CPU
    lengths, widths = list(cfg.flop_lengths), list(cfg.flop_widths)

    by_n: dict[str, dict[str, list[int]]] = {}
    by_d: dict[str, dict[str, list[int]]] = {}
    for kind in (*LAYERS, "restricted"):
        rows = [_count(kind, n, cfg.flop_width, cfg) for n in lengths]
        by_n[kind] = {key: [r[key] for r in rows] for key in rows[0]}
        if kind in LAYERS:
            rows = [_count(kind, cfg.flop_length, d, cfg) for d in widths]
            by_d[kind] = {key: [r[key] for r in rows] for key in rows[0]}
        by_k = [_count("convolution", cfg.flop_length, cfg.flop_width, cfg, k)["flops"] for k in cfg.kernel_sizes]

    paths: dict[str, dict[str, list]] = {
        kind: {"n": [], "measured": [], "expected": [], "probes": []} for kind in PATH_LAYERS
    }
    for kind in PATH_LAYERS:
        for n in cfg.path_lengths:
            if kind == "restricted" and n > cfg.restricted_max_length:
                continue
            if kind == "recurrent":
                found, probes = first_nonzero(recurrent_path_probe(n, cfg), cap=n - 1)
            else:
                found, probes = first_nonzero(layer_path_probe(kind, n, cfg), cap=n - 1)
            p = paths[kind]
            p["n"].append(n)
            p["measured"].append(found)
            p["expected"].append(expected_path(kind, n, cfg.kernel_size, cfg.window))
            p["probes"].append({str(m): v for m, v in sorted(probes.items())})

    metrics, verdict, seq = _metrics(cfg, by_n, by_d, by_k, paths)
    sweeps = {"flop_lengths": lengths, "flop_widths": widths, "kernel_sizes": list(cfg.kernel_sizes)}
    data = {**sweeps, "flop_width": cfg.flop_width, "flop_length": cfg.flop_length, "by_n": by_n, "by_d": by_d,
            "by_k": by_k, "paths": paths, "sequential": seq}  # fmt: skip
    return measured(verdict, metrics, data, "cpu")


def _crossover(ns: list[int], a: list[int], b: list[int]) -> float | None:
    """The n where series a overtakes series b (log-linear interpolation of log(a/b)); None if it does not."""
    r = [math.log(x / y) for x, y in zip(a, b, strict=True)]
    for i in range(len(ns) - 1):
        if r[i] <= 0 < r[i + 1] or (r[i] < 0 <= r[i + 1]):
            t = -r[i] / (r[i + 1] - r[i])
            return math.exp(math.log(ns[i]) + t * (math.log(ns[i + 1]) - math.log(ns[i])))
    return None


def _metrics(cfg: Any, by_n: dict, by_d: dict, by_k: list, paths: dict) -> tuple[dict[str, Any], dict[str, bool], dict]:
    lengths, widths = list(cfg.flop_lengths), list(cfg.flop_widths)
    m: dict[str, Any] = {}
    ex: dict[str, dict[str, float]] = {}
    for kind in LAYERS:
        key = "core" if kind == "attention" else "flops"  # Table 1's self-attention cost is its mixing
        ex[kind] = {"n": loglog_slope(lengths, by_n[kind][key]), "d": loglog_slope(widths, by_d[kind][key])}
    ex["convolution"]["k"] = loglog_slope(list(cfg.kernel_sizes), by_k)
    for kind, e in ex.items():
        for var, value in e.items():
            m[f"flops_exponent/{kind}/{var}"] = round(value, 3)
    m["flops_exponent/attention_with_projections/n"] = round(loglog_slope(lengths, by_n["attention"]["flops"]), 3)
    m["flops_exponent/attention_with_projections/d"] = round(loglog_slope(widths, by_d["attention"]["flops"]), 3)
    n0, d0 = lengths[-1], cfg.flop_width
    m[f"flops_per_n2d/attention_core/n={n0}"] = round(by_n["attention"]["core"][-1] / (n0 * n0 * d0), 3)
    proj = by_n["attention"]["flops"][-1] - by_n["attention"]["core"][-1]
    m[f"flops_per_nd2/attention_projections/n={n0}"] = round(proj / (n0 * d0 * d0), 3)
    m[f"flops_per_nd2/recurrent/n={n0}"] = round(by_n["recurrent"]["flops"][-1] / (n0 * d0 * d0), 3)
    k = cfg.kernel_size
    m[f"flops_per_knd2/convolution/n={n0}"] = round(by_n["convolution"]["flops"][-1] / (k * n0 * d0 * d0), 3)
    cross = _crossover(lengths, by_n["attention"]["core"], by_n["recurrent"]["flops"])
    m[f"crossover_n/attention_core_vs_recurrent/d={d0}"] = None if cross is None else round(cross, 2)

    seq: dict[str, dict[str, Any]] = {}
    for kind in (*LAYERS, "restricted"):
        depth = by_n[kind]["matmul_depth"]
        slope, intercept = linear_fit([float(n) for n in lengths], [float(v) for v in depth])
        seq[kind] = {"slope": slope, "intercept": intercept, "min": min(depth), "max": max(depth)}
        m[f"seq_matmuls_per_position/{kind}"] = round(slope, 3)
        m[f"seq_matmuls/{kind}/n={lengths[0]}"] = depth[0]
        m[f"seq_matmuls/{kind}/n={lengths[-1]}"] = depth[-1]

    for kind in PATH_LAYERS:
        p = paths[kind]
        for n, got in zip(p["n"], p["measured"], strict=True):
            if n == p["n"][-1] or n in (100, cfg.path_lengths[0]):
                m[f"path/{kind}/n={n}"] = got
        usable = [(n, v) for n, v in zip(p["n"], p["measured"], strict=True) if v]
        if len(usable) >= 2:
            m[f"path_exponent/{kind}"] = round(loglog_slope([n for n, _ in usable], [v for _, v in usable]), 3)

    tol = cfg.tolerance
    verdict: dict[str, bool] = {}
    for kind, e in ex.items():
        verdict[f"complexity/{kind}"] = all(abs(e[v] - PAPER_EXPONENTS[kind][v]) <= tol for v in e)
    verdict["sequential/attention_constant"] = seq["attention"]["min"] == seq["attention"]["max"]
    verdict["sequential/restricted_constant"] = seq["restricted"]["min"] == seq["restricted"]["max"]
    verdict["sequential/convolution_constant"] = seq["convolution"]["min"] == seq["convolution"]["max"]
    rec = by_n["recurrent"]["matmul_depth"]
    verdict["sequential/recurrent_linear"] = abs(seq["recurrent"]["slope"] - 1.0) <= tol and all(
        b > a for a, b in pairwise(rec)
    )
    for kind in PATH_LAYERS:
        p = paths[kind]
        verdict[f"path/{kind}"] = bool(p["n"]) and p["measured"] == p["expected"]

    return m, verdict, seq


__all__ = ["run"]
