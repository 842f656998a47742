"""The path probes of ``paths``: whether ``y_n`` depends on ``x_1`` through a stack of L layers, or through s
recurrent steps, read from gradients that are exactly zero where there is no path (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

import attnlab.nn as ann
from attnlab.models.blocks import CausalConv


def band_mask(n: int, window: int, device: torch.device | str = "cpu") -> Tensor:
    """(n, n) bool, True where key j may be attended from query i: ``i - window < j <= i``."""
    i = torch.arange(n, device=device).unsqueeze(1)  # (n, 1)
    j = torch.arange(n, device=device).unsqueeze(0)  # (1, n)
    return (j <= i) & (j > i - window)  # (n, n)


def _grad_norm_at_first(fn: Callable[[Tensor], Tensor], n: int, d: int, seed: int) -> float:
    """``||d(u . y_n) / d x_1||`` for y = fn(x), x of shape (1, n, d), float64 (y_n: the last row of y); exactly
    0 iff no path (or an exact cancellation, which random weights make improbable)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, n, d, generator=g, dtype=torch.float64).requires_grad_()
    u = torch.randn(d, generator=g, dtype=torch.float64)
    y = fn(x)  # (1, ·, d): its last row is y_n
    (grad,) = torch.autograd.grad(y[0, -1] @ u, x, allow_unused=True)
    return 0.0 if grad is None else grad[0, 0].norm().item()


def first_nonzero(probe: Callable[[int], float], cap: int) -> tuple[int | None, dict[int, float]]:
    """The smallest m in [0, cap] with ``probe(m) != 0``, assuming probe is zero below it and nonzero from it
    on: probe(0), then doubling, then bisection. Returns it (None if even ``probe(cap)`` is zero) and every
    probed value; the bracket's two ends, m - 1 (zero) and m (nonzero), are always among them."""
    seen: dict[int, float] = {}

    def p(m: int) -> float:
        if m not in seen:
            seen[m] = probe(m)
        return seen[m]

    if p(0) != 0:
        return 0, seen
    lo, step = 0, 1
    hi = min(step, cap)
    while p(hi) == 0:
        if hi >= cap:
            return None, seen
        lo, step = hi, step * 2
        hi = min(step, cap)
    while hi - lo > 1:  # p(lo) == 0 != p(hi)
        mid = (lo + hi) // 2
        if p(mid) == 0:
            lo = mid
        else:
            hi = mid
    return hi, seen


def _orthogonal_(w: Tensor, g: torch.Generator) -> Tensor:
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(w.shape[0], w.shape[0], generator=g, dtype=w.dtype))
        w.copy_(q[:, : w.shape[1]])
    return w


def _path_layer(kind: str, ell: int, cfg: Any) -> nn.Module:
    """Layer ``ell`` (0: the bottom) of a path-probe stack: float64, PyTorch's initialisation, seeded by ell."""
    torch.manual_seed(cfg.seed + ell)
    if kind in ("attention", "restricted"):
        return ann.MultiHeadAttention(cfg.path_width, 1, impl="naive", dtype=torch.float64)
    dilation = cfg.kernel_size**ell if kind == "dilated" else 1  # dilated: layer l reaches (k-1) k^l back
    return CausalConv(cfg.path_width, cfg.kernel_size, dilation, dtype=torch.float64)


class LayerPathProbe:
    """``probe(L) -> ||d(u . y_n) / d x_1||`` (rescaled, see below) for the stack of layers 0..L-1.

    The backward pass is taken one layer at a time (``torch.autograd.grad`` of each layer at its stored input),
    and after each layer the gradient at every position is rescaled to unit norm: it is the gradient of the
    same stack with each layer's outputs multiplied by positive per-position constants. The wiring, and so
    which entries are exactly zero, is unchanged, while no entry can underflow to zero over hundreds of layers
    (it would: the one path that first reaches x_1 through L contiguous convolutions has weight ~3^-L). The
    result is 1 where a path joins x_1 to y_n and exactly 0 where none does (barring an exact cancellation,
    which random weights make improbable). Layers and activations are built once and reused.
    """

    def __init__(self, kind: str, n: int, cfg: Any) -> None:
        self.kind, self.n, self.cfg = kind, n, cfg
        g = torch.Generator().manual_seed(cfg.seed)
        self.hidden = [torch.randn(1, n, cfg.path_width, generator=g, dtype=torch.float64)]  # h_0 = x: (1, n, d)
        self.u = torch.randn(cfg.path_width, generator=g, dtype=torch.float64)
        self.layers: list[nn.Module] = []
        self.mask = band_mask(n, cfg.window) if kind == "restricted" else None

    def _apply(self, layer: nn.Module, x: Tensor) -> Tensor:
        if self.kind == "attention":
            return layer(x, is_causal=True).output  # (1, n, d): position i attends 1..i
        if self.kind == "restricted":
            return layer(x, attn_mask=self.mask).output  # (1, n, d): position i attends i-r+1..i
        return layer(x)  # (1, n, d)

    def __call__(self, layers: int) -> float:
        while len(self.layers) < layers:
            layer = _path_layer(self.kind, len(self.layers), self.cfg)
            with torch.no_grad():
                self.hidden.append(self._apply(layer, self.hidden[-1]))
            self.layers.append(layer)
        v = torch.zeros_like(self.hidden[0])  # the cotangent of u . y_n: (1, n, d)
        v[0, self.n - 1] = self.u
        for ell in reversed(range(layers)):
            h = self.hidden[ell].detach().requires_grad_()
            (v,) = torch.autograd.grad(self._apply(self.layers[ell], h), h, v)  # v <- v J_ell: (1, n, d)
            norms = v.norm(dim=2, keepdim=True)  # (1, n, 1)
            v = torch.where(norms > 0, v / norms, v)  # each position to unit norm; zeros stay zero
        return v[0, 0].norm().item()


def layer_path_probe(kind: str, n: int, cfg: Any) -> LayerPathProbe:
    """``L -> `` whether (how much, up to scale) y_n of an L-layer stack of ``kind`` depends on x_1."""
    return LayerPathProbe(kind, n, cfg)


def recurrent_path_probe(n: int, cfg: Any) -> Callable[[int], float]:
    """``s -> ||d y_n / d x_1||`` through one ``attnlab.nn.RNN`` whose gradient may flow through only the last
    s state-to-state transitions: the state before the last s + 1 inputs is detached (truncated BPTT)."""
    d = cfg.path_width
    torch.manual_seed(cfg.seed)
    rnn = ann.RNN(d, d, batch_first=True, dtype=torch.float64)
    g = torch.Generator().manual_seed(cfg.seed)
    _orthogonal_(rnn.weight_hh_l0, g)  # h_t = tanh(W_ih x_t + W_hh h_{t-1}): orthogonal, no bias, small x
    _orthogonal_(rnn.weight_ih_l0, g)
    with torch.no_grad():
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.zero_()

    def probe(s: int) -> float:
        def fn(x: Tensor) -> Tensor:
            x = 1e-2 * x  # small inputs keep tanh near its linear range: nothing vanishes
            cut = n - (s + 1)  # inputs 1..cut feed a state that is then detached
            if cut <= 0:
                return rnn(x)[0]  # (B, n, d)
            with torch.no_grad():  # the truncation: no gradient flows into the state h_cut
                _, h = rnn(x[:, :cut])  # (1, B, d)
            return rnn(x[:, cut:], h)[0]  # (B, s + 1, d): its last row is y_n

        return _grad_norm_at_first(fn, n, d, cfg.seed)

    return probe


def expected_path(kind: str, n: int, k: int, r: int) -> int:
    """The path length each layer's wiring implies: attention 1 layer; restricted attention and the contiguous
    convolution reach r - 1 / k - 1 positions per layer; the dilated convolution covers k^L positions with L
    layers; the recurrent layer takes n - 1 state-to-state steps."""
    if kind == "attention":
        return 1
    if kind == "restricted":
        return -(-(n - 1) // (r - 1))
    if kind == "convolution":
        return -(-(n - 1) // (k - 1))
    if kind == "dilated":
        layers = 0
        while k**layers < n:
            layers += 1
        return layers
    return n - 1


__all__ = ["LayerPathProbe", "band_mask", "expected_path", "first_nonzero", "layer_path_probe", "recurrent_path_probe"]
