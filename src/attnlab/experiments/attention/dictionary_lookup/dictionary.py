"""Part 1 of ``dictionary-lookup``: a fixed dictionary, noisy queries, and the soft lookup against the hard one at
every temperature (float64)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from attnlab.functional import scaled_dot_product_attention


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


def sweep_seed(cfg: Any, seed: int) -> dict[str, Any]:
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


__all__ = ["hard_lookup", "jacobian_norm", "make_dictionary", "noisy_queries", "soft_lookup", "sweep_seed"]
