r"""Experiment ``dictionary-lookup`` (seed 001 §3.2): attention is a differentiable dictionary lookup.

A dictionary stores N items, keys ``k_i (d,)`` and values ``v_i (dv,)``. A hard lookup returns the value whose key
best matches the query, ``v_{argmax_i q . k_i}``: exact when the match is right, but a step function of the query,
with no gradient. Attention returns a blend, ``r = sum_i p_i v_i`` with ``p = softmax(q . K^T / tau)``, which is
differentiable in the query, the keys and the values. As the temperature tau falls the weights tend to the
one-hot of the argmax and the blend to the hard lookup; the price is the gradient, which vanishes with the
softmax's saturation. As tau grows the weights flatten toward 1/N and the blend toward the mean of all values.

Part 1, a fixed dictionary (float64): N random unit-norm keys and values; each query is a stored key plus Gaussian
noise, ``q = k_i + sigma n`` with ``n ~ N(0, I_d)``. For each tau, through the project's
:func:`attnlab.functional.scaled_dot_product_attention` (``impl="naive"``, ``scale = 1/tau``, weights returned):

- retrieval accuracy two ways: the argmax of the weights equals i (this is the hard lookup's accuracy at every
  tau: a softmax never reorders its scores, so it is measured only to show it is flat), and the blend decoded to
  its nearest stored value equals ``v_i`` (this one does depend on tau);
- the squared error ``|r - v_i|^2`` of the retrieved value against the exact one, and the distance
  ``|r - v_{argmax}|`` to the hard lookup's result;
- the Frobenius norm of the Jacobian ``d r / d q`` per query (autograd, one backward pass per value component):
  its median, and the fraction of "dead" queries whose norm is below ``dead_threshold``.

With unit-norm keys and a uniform prior over the items, the posterior of the item given the query is
``p(i | q) ~ exp(-|q - k_i|^2 / (2 sigma^2)) ~ exp(q . k_i / sigma^2)``: the softmax at ``tau = sigma^2`` *is* the
Bayes posterior, and its blend the posterior mean, the estimate of ``v_i`` with the least expected squared error.
So with noisy queries the error is smallest at an intermediate temperature, near ``sigma^2``, not at tau -> 0.

Part 2, a learned lookup: the queries arrive as cues ``x = M k_i + sigma_x n`` in another space (``M`` a fixed
random ``(dx, d)`` map); :class:`attnlab.nn.LuongAttention` with the general score ``x^T W_a k_j`` (a learned
query projection, the only parameter) retrieves ``r = sum_j p_j v_j``, trained by Adam on ``|r - v_i|^2``. At
``train_taus`` the cue is divided by tau before the lookup (the same initialisation, a sharper or flatter start).
Reported: accuracy (argmax of the weights) before and after, its curve, the gradient at initialisation and the
fraction of training examples whose own gradient is alive; and the hard lookup ``v_{argmax_j x^T W_a k_j}``, whose
loss has no gradient at all with respect to ``W_a``: argmax is piecewise constant, so autograd has no path to
follow, and no optimiser could train it.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, ClassVar

import torch
from torch import Tensor
from tqdm.auto import tqdm

from attnlab._checks import resolve_device
from attnlab.experiments.base import ExperimentConfig, ExperimentSpec
from attnlab.functional import AttentionOutput, dot_attention, scaled_dot_product_attention
from attnlab.nn import LuongAttention

_POSITIVE_INTS = ("n_keys", "key_dim", "value_dim", "n_queries", "seeds", "cue_dim", "train_steps", "batch_size")


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """The dictionary, the temperature grid, the learned lookup, and the thresholds that decide ``held``.

    ``held`` needs all of (per seed where there are seeds):

    - ``sharpens_to_hard``: the distance of the blend to the hard lookup's value falls as tau falls (monotone over
      the grid) and is at most ``hard_tolerance`` at the smallest tau;
    - ``low_tau_gradient_vanishes``: at the smallest tau the median Jacobian norm is at most ``vanish_ratio`` times
      its largest median over the grid, and most queries (> 50%) are dead;
    - ``high_tau_blurs``: at the largest tau the squared error is at least ``blur_fraction`` of that of the uniform
      blend (the mean of all values, what a lookup that knows nothing returns), and the decoded accuracy at most
      half the argmax accuracy;
    - ``high_tau_smooth``: at the largest tau no query is dead;
    - ``soft_lookup_learns``: trained at ``train_taus[0]``, accuracy at least ``learn_target`` and at least 0.5
      above its value before training, in every seed;
    - ``hard_lookup_has_no_gradient``: the hard lookup's loss is not connected to ``W_a`` (no gradient) while the
      soft lookup's gradient at the same point is non-zero, in every seed;
    - ``sharp_start_learns_less``: trained at the smallest of ``train_taus`` (same budget), accuracy at least
      ``train_margin`` below that at ``train_taus[0]``, in every seed.
    """

    n_keys: int = 64  # N stored items
    key_dim: int = 32  # d
    value_dim: int = 16  # dv
    noise: float = 0.25  # sigma, per component of the query noise; the Bayes temperature is sigma^2
    n_queries: int = 8000  # per seed
    taus: tuple[float, ...] = tuple(2.0**k for k in range(-10, 4))  # 1/1024 ... 8
    seeds: int = 5
    dead_threshold: float = 1e-6  # a Jacobian norm below this counts as no gradient
    cue_dim: int = 32  # dx
    cue_noise: float = 0.1  # sigma_x
    train_taus: tuple[float, ...] = (1.0, 0.01, 0.001)  # the first, the largest, is the reference run
    train_steps: int = 800
    batch_size: int = 128
    lr: float = 1e-2
    eval_every: int = 20
    n_eval: int = 2000
    hard_tolerance: float = 1e-2
    vanish_ratio: float = 1e-6
    blur_fraction: float = 0.9
    learn_target: float = 0.9
    train_margin: float = 0.3

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {},
        "quick": {"n_queries": 2000, "seeds": 2, "train_steps": 400},
        "tiny": {
            "n_queries": 1000,
            "seeds": 1,
            "taus": (2.0**-10, 2.0**-8, 2.0**-6, 2.0**-4, 2.0**-2, 1.0, 4.0),
            "train_taus": (1.0, 0.001),
            "train_steps": 300,
            "n_eval": 1000,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "n_keys" else 1):
                raise ValueError(f"{name}: expected an integer >= {2 if name == 'n_keys' else 1}, got {value!r}")
        for name in ("eval_every", "n_eval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        for name, minimum in (("taus", 3), ("train_taus", 2)):
            taus = getattr(self, name)
            if (
                not isinstance(taus, tuple)
                or len(taus) < minimum
                or any(isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < math.inf for t in taus)
            ):
                raise ValueError(f"{name}: expected at least {minimum} positive finite numbers, got {taus!r}")
        if list(self.taus) != sorted(set(self.taus)):
            raise ValueError(f"taus: expected strictly increasing temperatures, got {self.taus!r}")
        if len(set(self.train_taus)) != len(self.train_taus) or self.train_taus[0] != max(self.train_taus):
            raise ValueError(
                f"train_taus: expected distinct temperatures, the largest first (the reference run), "
                f"got {self.train_taus!r}"
            )
        for name in ("noise", "cue_noise", "lr", "dead_threshold", "hard_tolerance", "vanish_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        if self.lr == 0 or self.dead_threshold == 0:
            raise ValueError(f"{'lr' if self.lr == 0 else 'dead_threshold'}: expected a number > 0, got 0")
        for name in ("blur_fraction", "learn_target", "train_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError(f"{name}: expected a number in (0, 1], got {value!r}")


# --- the dictionary and the two lookups ------------------------------------------------------------------------


def make_dictionary(n: int, d: int, dv: int, generator: torch.Generator, dtype=torch.float64) -> tuple[Tensor, Tensor]:
    """``(keys (n, d), values (n, dv))``, rows random and of unit norm."""
    keys = torch.randn(n, d, generator=generator, dtype=dtype)
    values = torch.randn(n, dv, generator=generator, dtype=dtype)
    return keys / keys.norm(dim=-1, keepdim=True), values / values.norm(dim=-1, keepdim=True)


def noisy_queries(keys: Tensor, n: int, sigma: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(q (n, d), target (n,))``: ``q = k_target + sigma * N(0, I)`` with targets drawn uniformly."""
    target = torch.randint(keys.shape[0], (n,), generator=generator)
    noise = torch.randn(n, keys.shape[1], generator=generator, dtype=keys.dtype)
    return keys[target] + sigma * noise, target


def soft_lookup(q: Tensor, keys: Tensor, values: Tensor, tau: float):
    """``AttentionOutput(r (n, dv), p (n, N))`` with ``p = softmax(q K^T / tau)``, ``r = p V``: the shared SDPA
    with the n queries as its T rows and the dictionary as its S keys."""
    return scaled_dot_product_attention(q, keys, values, scale=1.0 / tau, impl="naive", return_weights=True)


def hard_lookup(q: Tensor, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """``(v_{argmax_i q . k_i} (n, dv), argmax (n,))``: the dictionary lookup by best match."""
    best = (q @ keys.T).argmax(-1)  # (n, d) @ (d, N) -> (n, N) -> (n,)
    return values[best], best


def jacobian_norm(q: Tensor, keys: Tensor, values: Tensor, tau: float) -> Tensor:
    """``||d r / d q||_F`` for each query ``(n,)``, by autograd through :func:`soft_lookup` (queries are independent,
    so the gradient of ``sum_n r[n, c]`` is row n's gradient of its own component c)."""
    q = q.detach().requires_grad_()
    r = soft_lookup(q, keys, values, tau).output  # (n, dv)
    total = torch.zeros(q.shape[0], dtype=q.dtype)
    for c in range(r.shape[1]):
        (g,) = torch.autograd.grad(r[:, c].sum(), q, retain_graph=c + 1 < r.shape[1])  # (n, d): d r_c / d q
        total += g.square().sum(-1)
    return total.sqrt()


def sweep_seed(cfg: Config, seed: int) -> dict[str, Any]:
    """Part 1 for one dictionary: per-tau means over ``n_queries`` noisy queries, and one example's weights."""
    gen = torch.Generator().manual_seed(1_000 * cfg.seed + seed)
    keys, values = make_dictionary(cfg.n_keys, cfg.key_dim, cfg.value_dim, gen)
    q, target = noisy_queries(keys, cfg.n_queries, cfg.noise, gen)
    hard, best = hard_lookup(q, keys, values)
    rows = []
    for tau in cfg.taus:
        r, p = soft_lookup(q, keys, values, tau)
        decoded = torch.cdist(r, values).argmin(-1)  # the nearest stored value to the blend
        jac = jacobian_norm(q, keys, values, tau)
        rows.append(
            {
                "accuracy_argmax": (p.argmax(-1) == target).double().mean().item(),
                "accuracy_decoded": (decoded == target).double().mean().item(),
                "sq_error": (r - values[target]).square().sum(-1).mean().item(),
                "dist_to_hard": (r - hard).norm(dim=-1).mean().item(),
                "max_weight": p.amax(-1).mean().item(),
                "jacobian_median": jac.median().item(),
                "dead_fraction": (jac < cfg.dead_threshold).double().mean().item(),
                "example_weights": p[0].tolist(),
            }
        )
    return {
        "rows": rows,
        "hard_accuracy": (best == target).double().mean().item(),
        "hard_sq_error": (hard - values[target]).square().sum(-1).mean().item(),
        "uniform_sq_error": (values.mean(0) - values[target]).square().sum(-1).mean().item(),
        "example_target": int(target[0]),
    }


# --- part 2: a learned lookup ----------------------------------------------------------------------------------


def cue_batch(keys: Tensor, M: Tensor, n: int, sigma: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(x (n, dx), target (n,))`` with ``x = M k_target + sigma * N(0, I)``."""
    target = torch.randint(keys.shape[0], (n,), generator=gen)
    x = keys[target] @ M.T + sigma * torch.randn(n, M.shape[0], generator=gen)  # (n, d) @ (d, dx) -> (n, dx)
    return x, target


def _lookup(attn: LuongAttention, x: Tensor, keys: Tensor, values: Tensor, tau: float):
    """``AttentionOutput(r (n, dv), p (n, N))``. One dictionary for all n cues: they go in as the T = n decoder steps
    of one batch element (B = 1), so each score matrix is one ``(n, dx) x (dx, d) x (d, N)`` product."""
    out = attn((x / tau).unsqueeze(0), keys.unsqueeze(0), values.unsqueeze(0))  # (1, n, dx) vs (1, N, d), (1, N, dv)
    return AttentionOutput(out.output.squeeze(0), out.weights.squeeze(0))


def per_example_gradient_norms(
    attn: LuongAttention, x: Tensor, target: Tensor, keys: Tensor, values: Tensor, tau: float
) -> Tensor:
    """``||d L_n / d W_a||_F`` for each example ``(n,)`` of ``L_n = |r_n - v_target|^2``.

    The general score is the dot score of the projected cue ``a_n = (x_n / tau)^T W_a`` (the functional tests
    prove the two equal), and ``d L_n / d W_a = (x_n / tau) (d L_n / d a_n)^T``, an outer product whose norm is
    ``|x_n / tau| |d L_n / d a_n|``; ``d L_n / d a_n`` is row n of the gradient of ``sum_n L_n``."""
    a = ((x / tau) @ attn.W_a).detach().requires_grad_()  # (n, dx) @ (dx, d) -> (n, d)
    r = dot_attention(a.unsqueeze(0), keys.unsqueeze(0), values.unsqueeze(0)).output.squeeze(0)  # (n, dv)
    (g,) = torch.autograd.grad((r - values[target]).square().sum(), a)  # (n, d)
    return (x / tau).norm(dim=-1) * g.norm(dim=-1)


def hard_lookup_gradient(attn: LuongAttention, x: Tensor, target: Tensor, keys: Tensor, values: Tensor) -> dict:
    """Whether the hard lookup's loss reaches ``W_a``, and the gradient autograd gives it (None -> 0)."""
    scores = x @ attn.W_a @ keys.T  # (n, dx) @ (dx, d) @ (d, N) -> (n, N): x^T W_a k_j
    retrieved = values[scores.argmax(-1)]  # argmax: an integer index, the end of every gradient path
    loss = (retrieved - values[target]).square().sum(-1).mean()
    connected = loss.requires_grad
    grad = torch.autograd.grad(loss, attn.W_a, allow_unused=True)[0] if connected else None
    return {"connected": connected, "grad_norm": 0.0 if grad is None else grad.norm().item()}


def train_seed(cfg: Config, seed: int) -> dict[str, Any]:
    """Part 2 for one seed: the same dictionary, cues and initialisation at every training temperature."""
    gen = torch.Generator().manual_seed(2_000 + 1_000 * cfg.seed + seed)
    keys, values = make_dictionary(cfg.n_keys, cfg.key_dim, cfg.value_dim, gen, dtype=torch.float32)
    M = torch.randn(cfg.cue_dim, cfg.key_dim, generator=gen) / math.sqrt(cfg.key_dim)  # (dx, d)
    x_eval, t_eval = cue_batch(keys, M, cfg.n_eval, cfg.cue_noise, gen)
    x_probe, t_probe = cue_batch(keys, M, cfg.batch_size, cfg.cue_noise, gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3_000 + 1_000 * cfg.seed + seed)
        init = LuongAttention(cfg.cue_dim, cfg.key_dim, "general").state_dict()

    def accuracy(attn: LuongAttention, tau: float) -> float:
        with torch.no_grad():
            weights = _lookup(attn, x_eval, keys, values, tau).weights  # (n, N)
        return (weights.argmax(-1) == t_eval).double().mean().item()

    out: dict[str, Any] = {"runs": {}}
    for tau in cfg.train_taus:
        attn = LuongAttention(cfg.cue_dim, cfg.key_dim, "general")
        attn.load_state_dict(init)
        if tau == cfg.train_taus[0]:
            soft = _lookup(attn, x_probe, keys, values, tau).output
            soft_loss = (soft - values[t_probe]).square().sum(-1).mean()
            out["soft_grad_norm_at_init"] = torch.autograd.grad(soft_loss, attn.W_a)[0].norm().item()
            out["hard"] = hard_lookup_gradient(attn, x_probe, t_probe, keys, values)
            out["hard"]["accuracy"] = accuracy(attn, 1.0)  # argmax: the same at any tau
        per_example = per_example_gradient_norms(attn, x_probe, t_probe, keys, values, tau)
        batch_gen = torch.Generator().manual_seed(4_000 + seed)  # the same batches at every tau
        opt = torch.optim.Adam(attn.parameters(), lr=cfg.lr)
        steps, curve, grad_at_init = [0], [accuracy(attn, tau)], None
        for step in range(1, cfg.train_steps + 1):
            x, target = cue_batch(keys, M, cfg.batch_size, cfg.cue_noise, batch_gen)
            loss = (_lookup(attn, x, keys, values, tau).output - values[target]).square().sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_at_init is None:
                grad_at_init = attn.W_a.grad.norm().item()
            opt.step()
            if step % cfg.eval_every == 0 or step == cfg.train_steps:
                steps.append(step)
                curve.append(accuracy(attn, tau))
        with torch.no_grad():
            max_weight = _lookup(attn, x_eval, keys, values, tau).weights.amax(-1).mean().item()
        out["runs"][tau_label(tau)] = {
            "accuracy_before": curve[0],
            "accuracy_after": curve[-1],
            "steps": steps,
            "accuracy": curve,
            "grad_norm_at_init": grad_at_init,
            "live_fraction_at_init": (per_example >= cfg.dead_threshold).double().mean().item(),
            "max_weight_after": max_weight,
            "W_a_norm_after": attn.W_a.norm().item(),
        }
    return out


# --- run -------------------------------------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    """Both parts on one thread (restored after): every tensor here is small (at most n_queries x N), and
    intra-op threads only add synchronisation (quick profile, 2 busy cores: 42 s with 2 threads, 7 s with 1)."""
    resolve_device(cfg.device)  # validates; small arithmetic, on the CPU
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(cfg)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: Config) -> dict[str, Any]:
    bar = tqdm(total=2 * cfg.seeds, disable=not sys.stderr.isatty(), leave=False)
    sweeps, trains = [], []
    for s in range(cfg.seeds):
        sweeps.append(sweep_seed(cfg, s))
        bar.update()
        trains.append(train_seed(cfg, s))
        bar.update()
    bar.close()

    keys = [k for k in sweeps[0]["rows"][0] if k != "example_weights"]
    sweep = {k: [_mean(sw["rows"][i][k] for sw in sweeps) for i in range(len(cfg.taus))] for k in keys}
    sweep["hard_accuracy"] = _mean(sw["hard_accuracy"] for sw in sweeps)
    sweep["hard_sq_error"] = _mean(sw["hard_sq_error"] for sw in sweeps)
    sweep["uniform_sq_error"] = _mean(sw["uniform_sq_error"] for sw in sweeps)
    per_seed_sweep = [
        {**{k: [row[k] for row in sw["rows"]] for k in keys}, "uniform_sq_error": sw["uniform_sq_error"]}
        for sw in sweeps
    ]

    verdict = _verdict(cfg, per_seed_sweep, trains)
    held = all(verdict.values())
    metrics = _metrics(cfg, sweep, trains)
    return {
        "held": held,
        "metrics": metrics,
        "setup": _setup(cfg),
        "summary": _summary(cfg, metrics, verdict, held),
        "data": {
            "taus": list(cfg.taus),
            "noise": cfg.noise,
            "n_keys": cfg.n_keys,
            "dead_threshold": cfg.dead_threshold,
            "sweep": sweep,
            "per_seed_sweep": per_seed_sweep,
            "example": {
                "target": sweeps[0]["example_target"],
                "weights": [row["example_weights"] for row in sweeps[0]["rows"]],
            },
            "train_taus": [tau_label(t) for t in cfg.train_taus],
            "training": trains,
            "verdict": verdict,
        },
    }


def tau_label(tau: float) -> str:
    """``1/1024`` for the reciprocal of an integer, else ``%g``: the keys of the metrics and the figures' titles."""
    inverse = 1 / tau
    return f"1/{round(inverse)}" if tau < 1 and abs(inverse - round(inverse)) < 1e-9 * inverse else f"{tau:g}"


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def best_tau(taus: list[float], sq_error: list[float]) -> float:
    """The temperature of the grid with the smallest squared error."""
    return taus[min(range(len(taus)), key=sq_error.__getitem__)]


def _verdict(cfg: Config, per_seed: list[dict], trains: list[dict]) -> dict[str, bool]:
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


def _metrics(cfg: Config, sweep: dict, trains: list[dict]) -> dict[str, Any]:
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


def _setup(cfg: Config) -> str:
    taus = [tau_label(t) for t in cfg.taus]
    train_taus = [tau_label(t) for t in cfg.train_taus]
    return (
        f"Part 1: {cfg.seeds} dictionary(ies) of N={cfg.n_keys} random unit-norm keys (d={cfg.key_dim}) and values "
        f"(dv={cfg.value_dim}), float64; {cfg.n_queries} queries per dictionary, each a stored key plus N(0, "
        f"{cfg.noise:g}^2 I) noise. Soft lookup: attnlab's scaled_dot_product_attention with scale=1/tau "
        f"(weights = softmax(q.k / tau)), tau in {taus}; hard lookup: the value of the argmax key. Per tau: argmax "
        f"and nearest-value (decoded) accuracy, squared error |r - v_true|^2, distance to the hard lookup's value, "
        f"Frobenius norm of d r / d q by autograd (median; dead below {cfg.dead_threshold:g}). Part 2: cues "
        f"x = M k + N(0, {cfg.cue_noise:g}^2 I) in dx={cfg.cue_dim} dimensions (M fixed, random); "
        f"attnlab.nn.LuongAttention(score='general') learns W_a by Adam (lr {cfg.lr:g}, {cfg.train_steps} steps of "
        f"{cfg.batch_size}) on |r - v_true|^2, the cue divided by tau in {train_taus} (same initialisation and "
        f"batches); accuracy = argmax of the weights on {cfg.n_eval} held-out cues. The hard lookup "
        f"v_[argmax x^T W_a k] is differentiated by autograd at the same initialisation."
    )


def _summary(cfg: Config, m: dict, verdict: dict[str, bool], held: bool) -> str:
    lo, hi = tau_label(cfg.taus[0]), tau_label(cfg.taus[-1])
    first, last = tau_label(cfg.train_taus[0]), tau_label(min(cfg.train_taus))

    def at(key: str, tau: str) -> float:
        return m[f"{key}/tau={tau}"]

    def train(key: str, tau: str) -> float:
        return m[f"train/{key}/tau={tau}"]

    parts = [
        f"Falling temperature turns the blend into the hard lookup: at tau={lo} the blend is "
        f"{at('dist_to_hard', lo):.3g} from the hard lookup's value (mean largest weight "
        f"{at('max_weight', lo):.4f}); at tau={hi} it is {at('dist_to_hard', hi):.3g} away (largest weight "
        f"{at('max_weight', hi):.4f}, uniform is {1 / cfg.n_keys:.4f}).",
        f"The argmax accuracy is {m['hard/accuracy']:.3f} at every tau (a softmax keeps the order of its scores; with "
        f"noise sigma={cfg.noise:g}, {100 * (1 - m['hard/accuracy']):.1f}% of the queries are nearer a wrong key); "
        f"decoded to the nearest stored value, the blend is right {100 * at('accuracy_decoded', lo):.1f}% of the time "
        f"at tau={lo} and {100 * at('accuracy_decoded', hi):.1f}% at tau={hi}.",
        f"The price of sharpness is the gradient: the median norm of d r / d q is {at('jacobian_median', lo):.3g} at "
        f"tau={lo} ({100 * at('dead_fraction', lo):.0f}% of the queries below {cfg.dead_threshold:g}), peaks at "
        f"{m['jacobian_median/peak']:.3g} at tau={tau_label(m['jacobian_median/peak_tau'])}, then falls only as a "
        f"power of tau, not exponentially (log-log slope {m['jacobian_median/high_tau_slope']:.2f} between the two "
        f"largest tau; {at('jacobian_median', hi):.3g} at tau={hi}, {100 * at('dead_fraction', hi):.0f}% dead).",
        f"The squared error of the retrieved value is {at('sq_error', lo):.4f} at tau={lo} (the hard lookup's: "
        f"{m['hard/sq_error']:.4f}), smallest ({m['min_sq_error']:.4f}) at tau={tau_label(m['best_tau'])}, and "
        f"{at('sq_error', hi):.3f} at tau={hi} (the mean of all values: {m['uniform/sq_error']:.3f}): with noisy "
        f"queries the best lookup is soft. Bayes puts the optimum at tau = sigma^2 = {tau_label(m['bayes_tau'])}, "
        f"where the softmax is the posterior over the items.",
        f"Learned lookup (Luong general score): accuracy {train('accuracy_before', first):.3f} before and "
        f"{train('accuracy_after', first):.3f} after training at tau={first} (lowest seed "
        f"{train('min_accuracy_after', first):.3f}); from the same start at tau={last}, where "
        f"{100 * (1 - train('live_fraction_at_init', last)):.0f}% of the examples' gradients are below "
        f"{cfg.dead_threshold:g} at initialisation, {train('accuracy_after', last):.3f} after the same budget (Adam "
        f"rescales the few live gradients, which is why it learns at all). The hard lookup's loss is connected to "
        f"W_a in {m['train/hard_connected_seeds']} of {cfg.seeds} seed(s): gradient norm "
        f"{m['train/hard_grad_norm']:g}, against {m['train/soft_grad_norm_at_init']:.3g} for the soft lookup at the "
        f"same point.",
    ]
    if held:
        parts.append("Every part of the claim held.")
    else:
        parts.append("Not every part held: " + ", ".join(k for k, v in verdict.items() if not v) + ".")
    return " ".join(parts)


# --- figures ---------------------------------------------------------------------------------------------------


def plot(result: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    data = result["data"]
    taus, sw = data["taus"], data["sweep"]
    bayes = data["noise"] ** 2

    fig, axes = plt.subplots(1, 3, figsize=(14.5, 4.0))
    ax = axes[0]
    ax.plot(taus, sw["sq_error"], "o-", color="tab:blue", label="soft lookup |r - v_true|^2")
    ax.axhline(sw["hard_sq_error"], ls="--", color="k", label="hard lookup |v_argmax - v_true|^2")
    ax.axhline(sw["uniform_sq_error"], ls="-.", color="tab:blue", alpha=0.5, label="mean of all values")
    ax.plot(taus, sw["dist_to_hard"], "s-", color="tab:gray", alpha=0.7, label="|r - v_argmax| (to the hard lookup)")
    ax.axvline(bayes, ls=":", color="tab:green", label=f"tau = sigma^2 = {bayes:g} (Bayes)")
    ax.set_yscale("log")
    ax.set_title("Retrieval error")
    ax.set_ylabel("mean over queries")
    ax = axes[1]
    ax.plot(taus, sw["accuracy_argmax"], "o-", color="k", label="argmax of the weights (= hard lookup)")
    ax.plot(taus, sw["accuracy_decoded"], "s-", color="tab:orange", label="blend decoded to nearest value")
    ax.plot(taus, sw["max_weight"], "^--", color="tab:purple", alpha=0.7, label="mean largest weight")
    ax.axhline(1 / data["n_keys"], ls=":", color="tab:purple", alpha=0.6, label="1/N (uniform)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Accuracy and sharpness")
    ax = axes[2]
    floor = 1e-30  # below this (underflow to 0 included) the curve is drawn at the floor
    ax.plot(taus, [max(j, floor) for j in sw["jacobian_median"]], "o-", color="tab:red", label="median ||dr/dq||_F")
    ax.axhline(data["dead_threshold"], ls=":", color="tab:red", alpha=0.6, label="dead threshold")
    ax.set_yscale("log")
    ax.set_ylim(floor / 10, None)
    ax.set_title("Gradient of the lookup w.r.t. the query")
    twin = ax.twinx()
    twin.plot(taus, sw["dead_fraction"], "s--", color="tab:brown", alpha=0.7, label="fraction of dead queries")
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("fraction dead", color="tab:brown")
    lines, more = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="center right")
    for a in axes:
        a.set_xscale("log", base=2)
        a.set_xlabel("temperature tau   (weights = softmax(q.k / tau))")
        a.grid(True, which="both", alpha=0.3)
    for a in axes[:2]:
        a.legend(fontsize=7)
    fig.suptitle(f"Soft vs hard dictionary lookup: N = {data['n_keys']} keys, query noise sigma = {data['noise']:g}")
    fig.tight_layout()

    ex = data["example"]
    near_bayes = min(range(len(taus)), key=lambda i: abs(math.log(taus[i] / bayes)))
    peak = max(range(len(taus)), key=sw["jacobian_median"].__getitem__)
    last = len(taus) - 1
    shown = sorted({0, near_bayes, peak, (peak + last) // 2, last})  # sharpest, Bayes, steepest, blurring, flattest
    fig2, axes2 = plt.subplots(1, len(shown), figsize=(3.4 * len(shown), 3.0), sharey=True)
    for a, i in zip(axes2, shown, strict=True):
        w = ex["weights"][i]
        colors = ["tab:green" if j == ex["target"] else "tab:blue" for j in range(len(w))]
        a.bar(range(len(w)), w, color=colors, width=1.0)
        a.set_title(f"tau = {tau_label(taus[i])}")
        a.set_xlabel("key")
    axes2[0].set_ylabel("weight (green: the true key)")
    axes2[0].set_ylim(0, 1.02)
    fig2.suptitle("One query's weights over the stored keys")
    fig2.tight_layout()

    fig3, ax3 = plt.subplots(figsize=(6.6, 4.2))
    palette = ("tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:olive")
    for k, tau in enumerate(data["train_taus"]):
        color = palette[k % len(palette)]
        for s, t in enumerate(data["training"]):
            run_ = t["runs"][tau]
            ax3.plot(
                run_["steps"],
                run_["accuracy"],
                "-",
                color=color,
                alpha=0.8,
                label=f"soft, tau={tau}" if s == 0 else None,
            )
    hard = [t["hard"]["accuracy"] for t in data["training"]]
    ax3.axhline(sum(hard) / len(hard), ls="--", color="k", label="hard lookup: no gradient, stays at init")
    ax3.set_xlabel("training step")
    ax3.set_ylabel("retrieval accuracy (held-out cues)")
    ax3.set_ylim(0, 1.02)
    ax3.set_title("Learning W_a through the lookup (Luong general score)")
    ax3.grid(True, alpha=0.3)
    ax3.legend(fontsize=8)
    return {"tradeoff": fig, "weights": fig2, "training": fig3}


SPEC = ExperimentSpec(
    name="dictionary-lookup",
    title="Attention as a differentiable dictionary lookup",
    claim=(
        "Attention is a differentiable dictionary lookup: a query against stored keys retrieves a blend of the "
        "values; as the softmax temperature falls it becomes the hard argmax lookup, exact but with a vanishing "
        "gradient, while a high temperature gives a blurry lookup with a smooth gradient, through which a lookup "
        "can be learned (the hard one has no gradient at all)."
    ),
    source="Seed 001 (chapter 3), section 3.2 (differentiable dictionary lookup; backpropagation through attention)",
    config_cls=Config,
    run=run,
    plot=plot,
)

__all__ = [
    "SPEC",
    "Config",
    "best_tau",
    "hard_lookup",
    "hard_lookup_gradient",
    "jacobian_norm",
    "make_dictionary",
    "noisy_queries",
    "per_example_gradient_norms",
    "plot",
    "run",
    "soft_lookup",
    "tau_label",
]
