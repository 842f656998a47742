"""The measuring of ``dictionary-lookup``: part 1 (:mod:`.dictionary`) on a fixed dictionary at every temperature,
part 2 (:mod:`.learned`) a lookup learned through the soft weights; the metrics and the verdict."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

from attnlab._checks import resolve_device
from attnlab.experiments.attention.dictionary_lookup.dictionary import sweep_seed
from attnlab.experiments.attention.dictionary_lookup.learned import tau_label, train_seed
from attnlab.experiments.training import one_thread

# the report may run it beside another experiment: runs on one thread; it measures lookups and gradients, not time
SHARES_CORES = True


def run(cfg: Any) -> dict[str, Any]:
    """Both parts on one CPU thread: every tensor here is small (at most n_queries x N), and intra-op threads only
    add synchronisation (quick profile, 2 busy cores: 42 s with 2 threads, 7 s with 1). Part 1 is float64
    arithmetic on the CPU whatever the device; part 2 trains on the device."""
    device = resolve_device(cfg.device)
    with one_thread():
        sweeps = [sweep_seed(cfg, s) for s in range(cfg.seeds)]
        trains = [train_seed(cfg, s, device) for s in range(cfg.seeds)]
    keys = [k for k in sweeps[0]["rows"][0] if k != "example_weights"]
    sweep = {k: [_mean(sw["rows"][i][k] for sw in sweeps) for i in range(len(cfg.taus))] for k in keys}
    for k in ("hard_accuracy", "hard_sq_error", "uniform_sq_error"):
        sweep[k] = _mean(sw[k] for sw in sweeps)
    per_seed_sweep = [
        {**{k: [row[k] for row in sw["rows"]] for k in keys}, "uniform_sq_error": sw["uniform_sq_error"]}
        for sw in sweeps
    ]
    verdict = _verdict(cfg, per_seed_sweep, trains)
    data = {
        "taus": list(cfg.taus),
        "noise": cfg.noise,
        "n_keys": cfg.n_keys,
        "dead_threshold": cfg.dead_threshold,
        "sweep": sweep,
        "per_seed_sweep": per_seed_sweep,
        "example": {
            "target": sweeps[0]["example_target"],
            "weights": [r["example_weights"] for r in sweeps[0]["rows"]],
        },
        "train_taus": [tau_label(t) for t in cfg.train_taus],
        "training": trains,
        "verdict": verdict,
    }
    return {"held": all(verdict.values()), "metrics": _metrics(cfg, sweep, trains), "device": device, "data": data}


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def best_tau(taus: list[float], sq_error: list[float]) -> float:
    """The temperature of the grid with the smallest squared error."""
    return taus[min(range(len(taus)), key=sq_error.__getitem__)]


def _verdict(cfg: Any, per_seed: list[dict], trains: list[dict]) -> dict[str, bool]:
    def every_seed(test) -> bool:
        return all(test(s) for s in per_seed)

    first, last = cfg.train_taus[0], min(cfg.train_taus)
    runs = [t["runs"] for t in trains]
    return {
        "sharpens_to_hard": every_seed(
            lambda s: all(a <= b for a, b in pairwise(s["dist_to_hard"])) and s["dist_to_hard"][0] <= cfg.hard_tolerance
        ),
        "low_tau_gradient_vanishes": every_seed(
            lambda s: (
                s["jacobian_median"][0] <= cfg.vanish_ratio * max(s["jacobian_median"]) and s["dead_fraction"][0] > 0.5
            )
        ),
        "high_tau_blurs": every_seed(
            lambda s: (
                s["sq_error"][-1] >= cfg.blur_fraction * s["uniform_sq_error"]
                and s["accuracy_decoded"][-1] <= 0.5 * s["accuracy_argmax"][-1]
            )
        ),
        "high_tau_smooth": every_seed(lambda s: s["dead_fraction"][-1] == 0),
        "soft_lookup_learns": all(
            r[f"{tau_label(first)}"]["accuracy_after"]
            >= max(cfg.learn_target, r[f"{tau_label(first)}"]["accuracy_before"] + 0.5)
            for r in runs
        ),
        "hard_lookup_has_no_gradient": all(
            not t["hard"]["connected"] and t["hard"]["grad_norm"] == 0 and t["soft_grad_norm_at_init"] > 0
            for t in trains
        ),
        "sharp_start_learns_less": all(
            r[f"{tau_label(last)}"]["accuracy_after"] <= r[f"{tau_label(first)}"]["accuracy_after"] - cfg.train_margin
            for r in runs
        ),
    }


def _metrics(cfg: Any, sweep: dict, trains: list[dict]) -> dict[str, Any]:
    taus = list(cfg.taus)
    m: dict[str, Any] = {
        "hard/accuracy": round(sweep["hard_accuracy"], 4),
        "hard/sq_error": round(sweep["hard_sq_error"], 4),
        "bayes_tau": cfg.noise**2,
        "best_tau": best_tau(taus, sweep["sq_error"]),
        "min_sq_error": round(min(sweep["sq_error"]), 4),
        "uniform/sq_error": round(sweep["uniform_sq_error"], 4),
    }
    for i, tau in enumerate(taus):
        for key in ("accuracy_argmax", "accuracy_decoded", "sq_error", "max_weight", "dead_fraction"):
            m[f"{key}/tau={tau_label(tau)}"] = round(sweep[key][i], 4)
        for key in ("dist_to_hard", "jacobian_median"):
            m[f"{key}/tau={tau_label(tau)}"] = float(f"{sweep[key][i]:.4g}")
    m["jacobian_median/peak"] = float(f"{max(sweep['jacobian_median']):.4g}")
    m["jacobian_median/peak_tau"] = taus[max(range(len(taus)), key=sweep["jacobian_median"].__getitem__)]
    (t1, t2), (j1, j2) = taus[-2:], sweep["jacobian_median"][-2:]  # the two flattest: -1 if it falls as 1/tau
    m["jacobian_median/high_tau_slope"] = round(math.log(j2 / j1) / math.log(t2 / t1), 3)
    for tau in cfg.train_taus:
        runs = [t["runs"][tau_label(tau)] for t in trains]
        for key in ("accuracy_before", "accuracy_after", "live_fraction_at_init", "max_weight_after"):
            m[f"train/{key}/tau={tau_label(tau)}"] = round(_mean(r[key] for r in runs), 4)
        m[f"train/min_accuracy_after/tau={tau_label(tau)}"] = round(min(r["accuracy_after"] for r in runs), 4)
        m[f"train/grad_norm_at_init/tau={tau_label(tau)}"] = float(f"{_mean(r['grad_norm_at_init'] for r in runs):.4g}")
    m["train/hard_accuracy"] = round(_mean(t["hard"]["accuracy"] for t in trains), 4)
    m["train/hard_connected_seeds"] = sum(t["hard"]["connected"] for t in trains)
    m["train/hard_grad_norm"] = max(t["hard"]["grad_norm"] for t in trains)
    m["train/soft_grad_norm_at_init"] = float(f"{_mean(t['soft_grad_norm_at_init'] for t in trains):.4g}")
    return m


__all__ = ["best_tau", "run"]
