r"""A mixture-of-experts feed-forward layer: a top-k router over E expert FFNs (Shazeer et al. 2017; Switch
Transformer, Fedus et al. 2021; Mixtral, Jiang et al. 2024). Parameters grow with E; the work per token grows
only with k.

For each token x ``(C,)``, router logits ``l = x W_r`` ``(E,)``, and (Mixtral, section 2.1)

.. math::
    G(x) = \mathrm{softmax}(\mathrm{TopK}(l)), \qquad
    y = \sum_{i \in \mathrm{TopK}(l)} G(x)_i\, E_i(x), \qquad
    E_i(x) = W_{2,i}\, \mathrm{GELU}(W_{1,i} x + b_{1,i}) + b_{2,i}.

The softmax over the k largest logits is the same as "softmax over all E, keep the top k, renormalise" (both are
``p_i / sum_{top-k} p_j``): one gate, either reading. With k = 1 the gate is 1 for the chosen expert, so the
router then learns only through the load-balancing loss (Switch's k = 1 gate, the unrenormalised p_i, differs
here; use k >= 2 for a router trained by the loss it serves). No noise on the logits (Shazeer's noisy top-k
gating is left out). Experts are GPT-2's GELU FFN (exact erf GELU, biases), as in :mod:`attnlab.nn.transformer`;
Mixtral's are SwiGLU.

Load-balancing loss (Switch Transformer, eq. 4-6), over the N tokens of the call:

.. math::
    \mathcal{L}_{aux} = \alpha\, E \sum_{i=1}^{E} f_i P_i, \qquad
    f_i = \frac{\#\{\text{router choices of expert } i\}}{k N}, \qquad
    P_i = \frac{1}{N} \sum_x \mathrm{softmax}(l(x))_i.

f_i counts the router's top-k choices (before any capacity drop); for k = 1 it is Switch's fraction of tokens.
It is minimal, ``alpha``, when routing is uniform (f_i = P_i = 1/E); only P_i carries a gradient.

Dispatch (batched; never a loop over tokens): the k N (token, choice) pairs are sorted by expert, each expert
runs once on its gathered tokens (a loop over the E experts), and the gated outputs are scattered back with
``index_add_``. Sizing the groups costs one host synchronisation per call (the per-expert counts).

Capacity (Switch eq. 3, with GShard's factor k): ``capacity_factor=None`` (default) means no token is ever
dropped. With a factor, each expert takes at most ``ceil(capacity_factor * k * N / E)`` pairs; priority goes to
first choices over second choices, then to earlier tokens (batch-major order); a dropped pair contributes zero,
the other choices of that token keep their gates (not renormalised), and a token whose every choice is dropped
gets zero output: the residual connection around the layer carries it through unchanged. The capacity depends
on N, the tokens of the call, so it is a training device; decoding should use ``None`` (as Mixtral does).

Symbols: N tokens (all leading dims of x flattened), C = d_model, H = d_hidden, E = n_expert, k = top_k.
Parameters: ``router`` (``nn.Linear(C, E, bias=False)``, W_r); per expert, stacked, the layout of
``nn.Linear``: ``w1`` ``(E, H, C)``, ``b1`` ``(E, H)``, ``w2`` ``(E, C, H)``, ``b2`` ``(E, C)``. The router
runs in at least float32 (Switch's "selective precision"), with autocast switched off around it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import check_float, check_positive_int, check_tensor, shape_str


class MoEOutput(NamedTuple):
    """``output`` the shape of x; ``aux_loss`` the weighted load-balancing loss (a scalar to add to the training
    loss); ``load`` ``(E,)`` the fractions f_i of router choices per expert; ``dropped`` the fraction of the k N
    choices dropped by the capacity (0 without one)."""

    output: Tensor
    aux_loss: Tensor
    load: Tensor
    dropped: Tensor


class MoE(nn.Module):
    """Top-k mixture of GELU feed-forward experts.

    Args:
        d_model: C, the width of x.
        d_hidden: H, each expert's hidden width (4C in GPT).
        n_expert: E.
        top_k: k in [1, E], the experts each token uses (Mixtral: 2 of 8).
        capacity_factor: None (no drops) or > 0 (see the module docstring).
        aux_loss_weight: alpha (Switch: 1e-2).
        bias: the experts' biases.
    """

    def __init__(
        self,
        d_model: int,
        d_hidden: int,
        n_expert: int,
        top_k: int = 2,
        *,
        capacity_factor: float | None = None,
        aux_loss_weight: float = 1e-2,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("d_hidden", d_hidden), ("n_expert", n_expert)):
            check_positive_int(name, value)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= n_expert:
            raise ValueError(f"top_k: expected an integer in [1, n_expert={n_expert}], got {top_k!r}")
        if capacity_factor is not None and not (
            isinstance(capacity_factor, (int, float)) and 0 < capacity_factor < math.inf
        ):
            raise ValueError(f"capacity_factor: expected None or a number > 0, got {capacity_factor!r}")
        if isinstance(aux_loss_weight, bool) or not isinstance(aux_loss_weight, (int, float)) or aux_loss_weight < 0:
            raise ValueError(f"aux_loss_weight: expected a number >= 0, got {aux_loss_weight!r}")
        self.d_model, self.d_hidden, self.n_expert, self.top_k = d_model, d_hidden, n_expert, top_k
        self.capacity_factor, self.aux_loss_weight = capacity_factor, float(aux_loss_weight)
        kw = {"device": device, "dtype": dtype}
        E, H, C = n_expert, d_hidden, d_model
        self.router = nn.Linear(C, E, bias=False, **kw)  # W_r
        self.w1 = nn.Parameter(torch.empty(E, H, C, **kw))  # W_{1,i}, as nn.Linear(C, H).weight
        self.w2 = nn.Parameter(torch.empty(E, C, H, **kw))  # W_{2,i}, as nn.Linear(H, C).weight
        self.b1 = nn.Parameter(torch.empty(E, H, **kw)) if bias else None
        self.b2 = nn.Parameter(torch.empty(E, C, **kw)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Each expert as ``nn.Linear``'s default: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        for w, b, fan_in in ((self.w1, self.b1, self.d_model), (self.w2, self.b2, self.d_hidden)):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(w, -bound, bound)
            if b is not None:
                nn.init.uniform_(b, -bound, bound)

    def capacity(self, n_tokens: int) -> int | None:
        """Router choices each expert may take for a call on ``n_tokens`` tokens (None: unlimited)."""
        if self.capacity_factor is None:
            return None
        return math.ceil(self.capacity_factor * self.top_k * n_tokens / self.n_expert)

    def forward(self, x: Tensor) -> MoEOutput:
        """x ``(..., C)`` -> :class:`MoEOutput` with output ``(..., C)`` (see the module docstring)."""
        check_tensor("x", x)
        check_float("x", x)
        if x.dim() < 1 or x.shape[-1] != self.d_model or x.numel() == 0:
            raise ValueError(f"x: expected shape (..., d_model={self.d_model}) with >= 1 token, got {shape_str(x)}")
        E, k = self.n_expert, self.top_k
        xf = x.reshape(-1, self.d_model)  # (N, C)
        N = xf.shape[0]
        work = torch.promote_types(x.dtype, torch.float32)  # the router in >= float32, autocast or not (Switch)
        with torch.autocast(x.device.type, enabled=False):
            logits = F.linear(xf.to(work), self.router.weight.to(work))  # (N, C) @ (C, E) -> (N, E)
        top_logits, top_expert = logits.topk(k, dim=-1)  # (N, k) each, best first
        gates = torch.softmax(top_logits, dim=-1)  # G(x) = softmax(TopK(l)), Mixtral   (N, k)
        # the k N (token, choice) pairs, choice-major: all first choices, then all second choices, ...
        pair_expert = top_expert.t().reshape(-1)  # (k N,)
        pair_token = torch.arange(N, device=x.device).repeat(k)  # (k N,)
        pair_gate = gates.t().reshape(-1)  # (k N,)
        order = torch.argsort(pair_expert, stable=True)  # grouped by expert, priority order kept inside a group
        counts = torch.bincount(pair_expert, minlength=E)  # (E,) router choices per expert
        capacity = self.capacity(N)
        out = torch.zeros(N, self.d_model, dtype=torch.promote_types(x.dtype, gates.dtype), device=x.device)
        start = 0
        for e, n_e in enumerate(counts.tolist()):  # the one host synchronisation; a loop over experts, not tokens
            keep = n_e if capacity is None else min(n_e, capacity)  # the first `capacity` pairs in priority order
            pairs = order[start : start + keep]  # (n_e,)
            start += n_e
            if keep == 0:
                continue
            tokens = pair_token[pairs]  # (n_e,)
            h = F.gelu(F.linear(xf[tokens], self.w1[e], None if self.b1 is None else self.b1[e]))  # (n_e, H)
            h = F.linear(h, self.w2[e], None if self.b2 is None else self.b2[e])  # (n_e, H) -> (n_e, C)
            out.index_add_(0, tokens, h * pair_gate[pairs].unsqueeze(-1))  # y += G(x)_i E_i(x)
        load = counts.to(logits.dtype) / (k * N)  # f_i   (E,)
        importance = torch.softmax(logits, dim=-1).mean(0)  # P_i   (E,)
        aux_loss = self.aux_loss_weight * E * (load * importance).sum()  # Switch eq. 4
        over = counts.new_zeros(()) if capacity is None else (counts - capacity).clamp(min=0).sum()
        dropped = over.to(logits.dtype) / (k * N)
        return MoEOutput(out.to(x.dtype).view(x.shape), aux_loss, load, dropped)

    def extra_repr(self) -> str:
        cap = "" if self.capacity_factor is None else f", capacity_factor={self.capacity_factor}"
        return f"d_model={self.d_model}, d_hidden={self.d_hidden}, n_expert={self.n_expert}, top_k={self.top_k}{cap}"
