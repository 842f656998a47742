"""The measuring of ``scaling``: the variance of q.k against d_k, the softmax with and without 1/sqrt(d_k), and a
temperature sweep (see the package docstring)."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor

from attnlab._checks import resolve_device
from attnlab.experiments.base import measured
from attnlab.experiments.fits import loglog_slope
from attnlab.functional import scaled_dot_product_attention

# the report may run it beside another experiment: it measures softmax statistics, not time
SHARES_CORES = True

SATURATED = 0.99  # a row counts as saturated when its largest weight exceeds this
_CHUNK = 64  # queries per block (the keys of a block at d_k = 1024 in float64: 64 * S * 1024 * 8 bytes)


def entropy(weights: Tensor) -> Tensor:
    """``H(p) = -sum_j p_j log p_j`` over the last dim (0 log 0 = 0); at most ``log S`` (uniform)."""
    return -torch.special.xlogy(weights, weights).sum(-1)


def _exclusive_sum(x: Tensor) -> Tensor:
    """``sum_{j != i} x_j`` for each i over the last dim, without subtracting (exact when one entry dominates)."""
    zero = torch.zeros_like(x[..., :1])
    before = torch.cat([zero, x[..., :-1]], -1).cumsum(-1)  # sum_{j < i} x_j
    after = torch.cat([zero, x.flip(-1)[..., :-1]], -1).cumsum(-1).flip(-1)  # sum_{j > i} x_j
    return before + after


def softmax_jacobian_norm(weights: Tensor) -> Tensor:
    r"""Frobenius norm of the softmax Jacobian ``J = d p / d s = diag(p) - p p^T`` for each row ``p`` of weights.

    ``||J||_F^2 = sum_i p_i^2 (1 - p_i)^2 + sum_{i != j} p_i^2 p_j^2 = sum_i p_i^2 (r_i^2 + R_i)`` with
    ``r_i = sum_{j != i} p_j`` (= 1 - p_i) and ``R_i = sum_{j != i} p_j^2``, both summed without subtracting, so a
    saturated row (p close to one-hot) keeps its tiny norm instead of cancelling to 0. Shape ``(..., S) -> (...)``.
    """
    r = _exclusive_sum(weights)
    big_r = _exclusive_sum(weights * weights)
    return (weights.square() * (r.square() + big_r)).sum(-1).sqrt()


def _rows(d_k: int, n: int, S: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """One block of n queries ``(n, 1, d_k)``, their keys ``(n, S, d_k)`` and dummy values ``(n, S, 1)``."""
    q = torch.randn(n, 1, d_k, generator=generator, dtype=torch.float64)
    k = torch.randn(n, S, d_k, generator=generator, dtype=torch.float64)
    return q, k, torch.zeros(n, S, 1, dtype=torch.float64)


def _weights(q: Tensor, k: Tensor, v: Tensor, scale: float | None) -> Tensor:
    """The softmax weights ``(n, S)`` of the project's SDPA (eq. 1 with the given scale; None: 1/sqrt(d_k))."""
    out = scaled_dot_product_attention(q, k, v, scale=scale, impl="naive", return_weights=True)
    return out.weights[:, 0]  # (n, 1, S) -> (n, S)


def _summarise(weights: list[Tensor]) -> dict[str, float]:
    p = torch.cat(weights)  # (N, S)
    jac = softmax_jacobian_norm(p)
    top = p.amax(-1)
    return {
        "entropy": entropy(p).mean().item(),
        "max_weight": top.mean().item(),
        "saturated_fraction": (top > SATURATED).double().mean().item(),
        "jacobian_median": jac.median().item(),
        "jacobian_mean": jac.mean().item(),
    }


def run(cfg: Any) -> dict[str, Any]:
    resolve_device(cfg.device)  # validates; float64 statistics of random scores, on the CPU whatever the device
    S = cfg.n_keys
    blocks = [min(_CHUNK, cfg.n_queries - i) for i in range(0, cfg.n_queries, _CHUNK)]
    variance, per_dk = [], {"unscaled": [], "scaled": []}
    for i, d_k in enumerate(cfg.d_ks):
        sums = [0.0, 0.0, 0]  # sum of q.k, sum of (q.k)^2, count
        rows: dict[str, list[Tensor]] = {"unscaled": [], "scaled": []}
        for s in range(cfg.seeds):
            gen = torch.Generator().manual_seed(1_000 * (cfg.seed + s) + i)
            for n in blocks:
                q, k, v = _rows(d_k, n, S, gen)
                dots = q @ k.transpose(-2, -1)  # (n, 1, d_k) @ (n, d_k, S) -> (n, 1, S): the unscaled q.k
                sums[0] += dots.sum().item()
                sums[1] += dots.square().sum().item()
                sums[2] += dots.numel()
                rows["unscaled"].append(_weights(q, k, v, scale=1.0))
                rows["scaled"].append(_weights(q, k, v, scale=None))
        mean = sums[0] / sums[2]
        variance.append((sums[1] - sums[2] * mean**2) / (sums[2] - 1))
        for kind in rows:
            per_dk[kind].append(_summarise(rows[kind]))

    sweep_rows: dict[float, list[Tensor]] = {tau: [] for tau in cfg.taus}
    for s in range(cfg.seeds):
        gen = torch.Generator().manual_seed(1_000 * (cfg.seed + s) + 999)
        for n in blocks:
            q, k, v = _rows(cfg.tau_d_k, n, S, gen)
            for tau in cfg.taus:  # scale = 1 / (tau sqrt(d_k)): the same scores at every temperature
                sweep_rows[tau].append(_weights(q, k, v, scale=1.0 / (tau * math.sqrt(cfg.tau_d_k))))
    sweep = [_summarise(sweep_rows[tau]) for tau in cfg.taus]

    series = {
        kind: {key: [row[key] for row in per_dk[kind]] for key in per_dk[kind][0]} for kind in ("unscaled", "scaled")
    }
    metrics = _metrics(cfg, variance, series, sweep)
    verdict = _verdict(cfg, metrics, variance, series, sweep)
    swept = {key: [row[key] for row in sweep] for key in sweep[0]}
    data = {"d_ks": list(cfg.d_ks), "n_keys": S, "log_n_keys": math.log(S), "variance": variance, "series": series,
            "taus": list(cfg.taus), "tau_d_k": cfg.tau_d_k, "sweep": swept}  # fmt: skip
    return measured(verdict, metrics, data, "cpu")


def _metrics(cfg: Any, variance: list[float], series: dict, sweep: list[dict]) -> dict[str, Any]:
    m: dict[str, Any] = {
        "variance_slope": round(loglog_slope(list(cfg.d_ks), variance), 4),
        "log_S": math.log(cfg.n_keys),
    }
    for d_k, var in zip(cfg.d_ks, variance, strict=True):
        m[f"var_over_dk/{d_k}"] = round(var / d_k, 4)
    for kind, s in series.items():
        for j, d_k in enumerate(cfg.d_ks):
            for key in ("entropy", "max_weight", "saturated_fraction"):
                m[f"{kind}/{key}/{d_k}"] = round(s[key][j], 4)
            for key in ("jacobian_median", "jacobian_mean"):
                m[f"{kind}/{key}/{d_k}"] = float(f"{s[key][j]:.4g}")
    for kind, s in series.items():
        m[f"{kind}/entropy_ratio_first_to_last"] = round(s["entropy"][0] / s["entropy"][-1], 3)
        m[f"{kind}/jacobian_median_ratio_first_to_last"] = float(
            f"{s['jacobian_median'][0] / s['jacobian_median'][-1]:.4g}"
        )
    for tau, row in zip(cfg.taus, sweep, strict=True):
        m[f"sweep/entropy/tau={tau:g}"] = round(row["entropy"], 4)
        m[f"sweep/max_weight/tau={tau:g}"] = round(row["max_weight"], 4)
    return m


def _verdict(cfg: Any, m: dict, variance: list[float], series: dict, sweep: list[dict]) -> dict[str, bool]:
    sc, un = series["scaled"], series["unscaled"]

    def flat(xs: list[float]) -> bool:
        return all(abs(x / xs[0] - 1) <= cfg.flat_tolerance for x in xs)

    ent = [row["entropy"] for row in sweep]
    top = [row["max_weight"] for row in sweep]
    return {
        "variance_grows_as_d_k": abs(m["variance_slope"] - 1) <= cfg.slope_tolerance
        and all(abs(v / d - 1) <= cfg.variance_tolerance for v, d in zip(variance, cfg.d_ks, strict=True)),
        "scaled_entropy_flat": flat(sc["entropy"]),
        "scaled_gradient_flat": flat(sc["jacobian_median"]),
        "unscaled_entropy_collapses": un["entropy"][0] >= cfg.collapse_factor * un["entropy"][-1],
        "unscaled_gradient_vanishes": un["jacobian_median"][0] >= cfg.collapse_factor * un["jacobian_median"][-1],
        "temperature_orders_sharpness": all(a <= b for a, b in pairwise(ent)) and all(a >= b for a, b in pairwise(top)),
    }


__all__ = ["SATURATED", "entropy", "run", "softmax_jacobian_norm"]
