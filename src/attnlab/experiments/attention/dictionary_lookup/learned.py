"""Part 2 of ``dictionary-lookup``: a lookup learned through the soft weights (:class:`attnlab.models.lookup.
SoftLookup`) at several temperatures, and the hard lookup, which has no gradient at all."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from attnlab.experiments.attention.dictionary_lookup.dictionary import make_dictionary
from attnlab.experiments.training import train
from attnlab.functional import dot_attention
from attnlab.models.lookup import SoftLookup
from attnlab.nn import LuongAttention


def cue_batch(keys: Tensor, M: Tensor, n: int, sigma: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(x (n, dx), target (n,))`` with ``x = M k_target + sigma * N(0, I)``."""
    target = torch.randint(keys.shape[0], (n,), generator=gen)
    x = keys[target] @ M.T + sigma * torch.randn(n, M.shape[0], generator=gen)  # (n, d) @ (d, dx) -> (n, dx)
    return x, target


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


def train_seed(cfg: Any, seed: int, device: str) -> dict[str, Any]:
    """Part 2 for one seed: the same dictionary, cues, initialisation and batches at every training temperature."""
    gen = torch.Generator().manual_seed(2_000 + 1_000 * cfg.seed + seed)
    keys, values = make_dictionary(cfg.n_keys, cfg.key_dim, cfg.value_dim, gen, dtype=torch.float32)
    M = torch.randn(cfg.cue_dim, cfg.key_dim, generator=gen) / math.sqrt(cfg.key_dim)  # (dx, d)
    x_eval, t_eval = cue_batch(keys, M, cfg.n_eval, cfg.cue_noise, gen)
    x_probe, t_probe = cue_batch(keys, M, cfg.batch_size, cfg.cue_noise, gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3_000 + 1_000 * cfg.seed + seed)
        init = SoftLookup(keys, values, cfg.cue_dim).state_dict()

    def get_batch(split: str, g: torch.Generator) -> tuple[Tensor, Tensor]:
        return cue_batch(keys, M, cfg.batch_size, cfg.cue_noise, g)

    out: dict[str, Any] = {"runs": {}}
    for tau in cfg.train_taus:
        lookup = SoftLookup(keys, values, cfg.cue_dim, tau)
        lookup.load_state_dict(init)
        attn = lookup.attn
        if tau == cfg.train_taus[0]:
            soft_loss = lookup(x_probe, t_probe).loss
            out["soft_grad_norm_at_init"] = torch.autograd.grad(soft_loss, attn.W_a)[0].norm().item()
            out["hard"] = hard_lookup_gradient(attn, x_probe, t_probe, keys, values)
            out["hard"]["accuracy"] = accuracy(lookup, x_eval, t_eval)  # argmax: the same at any tau
        per_example = per_example_gradient_norms(attn, x_probe, t_probe, keys, values, tau)
        steps, curve = [0], [accuracy(lookup, x_eval, t_eval)]

        def check(step: int, lookup: SoftLookup = lookup, steps: list = steps, curve: list = curve) -> bool:
            steps.append(step)
            curve.append(accuracy(lookup, x_eval.to(device), t_eval.to(device)))
            return False

        first = first_gradient_norm(lookup, get_batch, 4_000 + seed)
        train(lookup, cfg.train, get_batch, seed=4_000 + seed, device=device, evaluate=False, check=check)
        lookup.cpu()
        with torch.no_grad():
            max_weight = lookup(x_eval).weights.amax(-1).mean().item()
        out["runs"][tau_label(tau)] = {
            "accuracy_before": curve[0],
            "accuracy_after": curve[-1],
            "steps": steps,
            "accuracy": curve,
            "grad_norm_at_init": first,
            "live_fraction_at_init": (per_example >= cfg.dead_threshold).double().mean().item(),
            "max_weight_after": max_weight,
            "W_a_norm_after": attn.W_a.norm().item(),
        }
    return out


def first_gradient_norm(lookup: SoftLookup, get_batch: Any, seed: int) -> float:
    """The norm of the gradient of the first training batch's loss with respect to ``W_a`` (the batch the training
    with ``seed`` draws first)."""
    x, target = get_batch("train", torch.Generator().manual_seed(seed))
    return torch.autograd.grad(lookup(x, target).loss, lookup.attn.W_a)[0].norm().item()


def accuracy(lookup: SoftLookup, x: Tensor, target: Tensor) -> float:
    """The share of cues whose largest weight is on their own item (no gradient)."""
    with torch.no_grad():
        return (lookup(x).weights.argmax(-1) == target).double().mean().item()


def tau_label(tau: float) -> str:
    """``1/1024`` for the reciprocal of an integer, else ``%g``: the keys of the metrics and the figures' titles."""
    inverse = 1 / tau
    return f"1/{round(inverse)}" if tau < 1 and abs(inverse - round(inverse)) < 1e-9 * inverse else f"{tau:g}"


__all__ = [
    "accuracy",
    "cue_batch",
    "first_gradient_norm",
    "hard_lookup_gradient",
    "per_example_gradient_norms",
    "tau_label",
    "train_seed",
]
