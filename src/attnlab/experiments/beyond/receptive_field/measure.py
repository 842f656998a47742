"""The measuring of ``receptive-field``: how far back the last position's output depends on the input, through L
layers of sliding-window attention, read from gradients (see the package docstring)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from attnlab._checks import resolve_device
from attnlab.experiments.base import measured
from attnlab.experiments.beyond.receptive_field.config import MISTRAL
from attnlab.experiments.training import one_thread
from attnlab.models.gpt import GPT, GPTConfig

# the report may run it beside another experiment: one thread; it reads gradients, not time
SHARES_CORES = True


def model_config(cfg: Any, depth: int, window: int | None) -> GPTConfig:
    """Mistral's block in miniature (grouped-query attention, rotary positions, RMSNorm, SwiGLU, no biases), with
    the window (None: full causal attention)."""
    return GPTConfig(vocab_size=cfg.vocab_size, block_size=cfg.length, n_layer=depth, n_head=cfg.n_head,
                     n_embd=cfg.n_embd, n_kv_head=cfg.n_kv_head, window=window, pos="rope", norm="rmsnorm",
                     mlp="swiglu", bias=False)  # fmt: skip


def gradient_by_distance(model: GPT, idx: Tensor, u: Tensor) -> list[float]:
    """``||d (u . logits_n) / d x_{n-d}||`` for d = 0, 1, ..., n - 1: how much the last position's logits depend on
    the input embedding d positions back (exactly 0 where no path joins them)."""
    store: dict[str, Tensor] = {}

    def keep(module: torch.nn.Module, args: Any, out: Tensor) -> None:
        out.retain_grad()  # the token embeddings x: (1, n, C)
        store["x"] = out

    hook = model.wte.register_forward_hook(keep)
    try:
        logits = model(idx).logits[0, -1]  # the last position's: (V,)
        (logits @ u).backward()
    finally:
        hook.remove()
    return store["x"].grad[0].norm(dim=-1).flip(0).tolist()  # (n,): index d = distance back


def reach(grads: list[float]) -> int:
    """The farthest distance with a nonzero gradient."""
    return max(d for d, g in enumerate(grads) if g != 0)


def probe(cfg: Any, depth: int, window: int | None, device: str) -> list[float]:
    """The gradient by distance of a fresh float64 model (seeded), on random tokens (seeded)."""
    torch.manual_seed(cfg.seed)
    model = GPT(model_config(cfg, depth, window)).to(device=device, dtype=torch.float64)
    gen = torch.Generator().manual_seed(cfg.seed)
    idx = torch.randint(0, cfg.vocab_size, (1, cfg.length), generator=gen).to(device)  # (1, n)
    u = torch.randn(cfg.vocab_size, generator=gen, dtype=torch.float64).to(device)  # (V,)
    return gradient_by_distance(model, idx, u)


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    n = cfg.length
    grads: dict[str, list[list[float]]] = {}
    with one_thread(device):
        for w in cfg.windows:
            grads[str(w)] = [probe(cfg, L, w, device) for L in cfg.depths]
        full = probe(cfg, 1, None, device)
    m: dict[str, Any] = {"length": n}
    exact, contiguous = True, True
    for w in cfg.windows:
        for L, g in zip(cfg.depths, grads[str(w)], strict=True):
            r, expected = reach(g), min(w * L, n - 1)
            m[f"reach/w={w}/L={L}"] = r
            exact &= r == expected
            contiguous &= all(x != 0 for x in g[: r + 1])  # every position within reach receives gradient
        # how much arrives from the farthest position reached, against the last position itself, at the deepest L
        first, last = cfg.depths[0], cfg.depths[-1]
        g = grads[str(w)][-1]
        m[f"far_over_near/w={w}/L={last}"] = g[reach(g)] / g[0]
        # the reach added per layer, from the first and the last depth
        if last > first:
            per_layer = (m[f"reach/w={w}/L={last}"] - m[f"reach/w={w}/L={first}"]) / (last - first)
            m[f"reach_per_layer/w={w}"] = per_layer
    m["reach/full/L=1"] = reach(full)
    m["mistral_reach"] = MISTRAL["window"] * MISTRAL["layers"]
    verdict = {
        "reach_is_w_L": exact,
        "every_position_within_reach": contiguous,
        "full_attention_reaches_all": reach(full) == n - 1,
    }
    data = {"windows": list(cfg.windows), "depths": list(cfg.depths), "length": n, "grads": grads, "full": full}
    return measured(verdict, m, data, device)


__all__ = ["gradient_by_distance", "model_config", "probe", "reach", "run"]
