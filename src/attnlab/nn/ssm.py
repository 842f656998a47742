r"""The Mamba block (Gu & Dao 2023, section 3.4 and Figure 3): a selective state-space layer that mixes tokens
through a fixed-size state instead of attention.

For x ``(B, T, C)``:

.. math::
    [u; z] = x W_{in} \qquad
    u = \mathrm{SiLU}(\mathrm{conv1d}_{causal}(u)) \qquad
    [\delta_r; B; C] = u W_x \qquad
    \Delta = \mathrm{softplus}(\delta_r W_{\Delta} + b_{\Delta}) \\
    y = \mathrm{SelectiveScan}(u, \Delta, A = -\exp(A_{log}), B, C, D) \qquad
    \mathrm{out} = (y \odot \mathrm{SiLU}(z))\, W_{out}

- ``in_proj`` W_in: C -> 2 D_in (D_in = expand C), split into the scanned branch u and the gate z.
- ``conv1d``: depthwise (one filter per channel), kernel d_conv, causal (left padding d_conv - 1): a short
  local mixing before the scan.
- ``x_proj`` W_x: D_in -> dt_rank + 2 N gives the input-dependent low-rank step ``delta_r`` and the maps B, C
  (selection, section 3.2 and Algorithm 2); ``dt_proj`` raises delta_r to D_in; softplus keeps Delta > 0.
- ``A_log`` ``(D_in, N)``: the S4D-real initialisation ``A[d, n] = -(n + 1)``; ``D`` ``(D_in,)``: the skip,
  ones at init. ``dt_proj.bias`` is set so that softplus(bias) is log-uniform in [dt_min, dt_max].
- The scan and its discretisation (ZOH ``A_bar = exp(Delta A)``, ``B_bar`` ~ ``Delta B``, stated there):
  :mod:`attnlab.functional.selective_scan`.

Symbols: B batch, T length, C = d_model, D_in = expand * d_model channels of the scan, N = d_state, K = d_conv,
R = dt_rank (default ceil(C / 16)). Parameter names follow the authors' ``Mamba`` module (``in_proj``,
``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``).

Decoding: :class:`MambaState` ``(conv, ssm)`` is all the past a block keeps, whatever the context length: the
last K - 1 inputs of the convolution ``(B, D_in, K - 1)`` and the scan state ``(B, D_in, N)``. ``forward(x,
state)`` continues from a state (zeros: a fresh sequence) and returns the new one; :meth:`Mamba.step` does one
token in O(1) work. (The authors' decoding cache holds K conv inputs, the newest included; ours holds the K - 1
before the new token.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import check_float, check_positive_int, check_tensor, shape_str
from attnlab.functional.selective_scan import scan_dtype, selective_scan, selective_scan_ref, selective_scan_step

SCANS = ("auto", "chunked", "sequential")


class MambaState(NamedTuple):
    """``conv`` ``(B, D_in, K - 1)``: the last K - 1 convolution inputs; ``ssm`` ``(B, D_in, N)``: the scan state
    (float32 when the activations are float16/bfloat16)."""

    conv: Tensor
    ssm: Tensor


class MambaOutput(NamedTuple):
    """``output`` ``(B, T, C)`` (``(B, C)`` from :meth:`Mamba.step`); ``state`` after the last token."""

    output: Tensor
    state: MambaState


class Mamba(nn.Module):
    """The Mamba mixer (no norm, no residual: the block around it adds those), batch first.

    Args:
        d_model: C, the width of x.
        d_state: N, the state size per channel (16 in the paper).
        d_conv: K, the causal convolution's kernel (4).
        expand: D_in = expand * d_model (2).
        dt_rank: R, the rank of the step-size projection; default ceil(d_model / 16).
        dt_min, dt_max: the range of the initial step sizes softplus(dt_proj.bias) (log-uniform).
        bias: biases in in_proj and out_proj (the authors: none); the convolution always has one.
        scan: how :meth:`forward` scans (the same numbers): ``"chunked"``
            (:func:`~attnlab.functional.selective_scan`, ~2 sqrt(T) sequential steps), ``"sequential"``
            (:func:`~attnlab.functional.selective_scan_ref`, T steps), ``"auto"``: sequential on the CPU (its
            per-step tensors stay in cache; faster there at training sizes), chunked on other devices (fewer
            kernel launches).
        chunk_size: the chunk length of the chunked scan (default ceil(sqrt(T))).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        *,
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        bias: bool = False,
        scan: str = "auto",
        chunk_size: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("d_state", d_state), ("d_conv", d_conv), ("expand", expand)):
            check_positive_int(name, value)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank is None else check_positive_int("dt_rank", dt_rank)
        if chunk_size is not None:
            check_positive_int("chunk_size", chunk_size)
        if scan not in SCANS:
            raise ValueError(f"scan: expected one of {SCANS}, got {scan!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"dt_min, dt_max: expected 0 < dt_min <= dt_max, got {dt_min!r}, {dt_max!r}")
        self.d_model, self.d_state, self.d_conv, self.d_inner = d_model, d_state, d_conv, expand * d_model
        self.scan, self.chunk_size = scan, chunk_size
        kw = {"device": device, "dtype": dtype}
        D_in, N, R = self.d_inner, d_state, self.dt_rank
        self.in_proj = nn.Linear(d_model, 2 * D_in, bias=bias, **kw)  # W_in: x -> [u; z]
        self.conv1d = nn.Conv1d(D_in, D_in, d_conv, groups=D_in, bias=True, **kw)  # depthwise, (D_in, 1, K)
        self.x_proj = nn.Linear(D_in, R + 2 * N, bias=False, **kw)  # W_x: u -> [delta_r; B; C]
        self.dt_proj = nn.Linear(R, D_in, bias=True, **kw)  # W_Delta, b_Delta
        self.A_log = nn.Parameter(torch.empty(D_in, N, **kw))
        self.D = nn.Parameter(torch.empty(D_in, **kw))
        self.out_proj = nn.Linear(D_in, d_model, bias=bias, **kw)  # W_out
        self._dt_range = (dt_min, dt_max)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """The authors' initialisation of the state-space parameters (the Linear layers keep torch's default)."""
        dt_min, dt_max = self._dt_range
        nn.init.uniform_(self.dt_proj.weight, -(self.dt_rank**-0.5), self.dt_rank**-0.5)  # keeps the variance
        log_dt = torch.rand_like(self.dt_proj.bias) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = log_dt.exp().clamp(min=1e-4)  # initial step sizes, log-uniform in [dt_min, dt_max]
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^{-1}(dt) = dt + log(1 - e^{-dt})
        n = torch.arange(1, self.d_state + 1, dtype=self.A_log.dtype, device=self.A_log.device)
        self.A_log.copy_(n.log().expand(self.d_inner, -1))  # S4D-real: A[d, n] = -(n + 1), 0-based n
        self.D.fill_(1.0)

    def initial_state(self, batch: int, *, device=None, dtype: torch.dtype = torch.float32) -> MambaState:
        """Zeros for a fresh sequence; ``dtype`` is the activations' (the scan state is float32 for 16-bit)."""
        conv = torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device, dtype=dtype)
        ssm = torch.zeros(batch, self.d_inner, self.d_state, device=device, dtype=scan_dtype(conv))
        return MambaState(conv, ssm)

    def forward(self, x: Tensor, state: MambaState | None = None) -> MambaOutput:
        """x ``(B, T, C)`` -> ``(B, T, C)``, continuing from ``state`` (None: a fresh sequence)."""
        check_tensor("x", x)
        check_float("x", x)
        if x.dim() != 3 or x.shape[-1] != self.d_model or x.shape[1] < 1:
            raise ValueError(f"x: expected shape (batch, length >= 1, d_model={self.d_model}), got {shape_str(x)}")
        Bn, T, _ = x.shape
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (B, T, 2 D_in) -> 2 x (B, T, D_in)
        conv_past, ssm_state = self._state(state, Bn, u)
        u_in = torch.cat([conv_past.to(u.dtype), u.transpose(1, 2)], dim=-1)  # (B, D_in, K - 1 + T)
        u = F.conv1d(u_in, self.conv1d.weight, self.conv1d.bias, groups=self.d_inner)  # causal: (B, D_in, T)
        u = F.silu(u).transpose(1, 2)  # (B, T, D_in)
        delta, Bm, Cm = self._selection(u)  # (B, T, D_in), (B, T, N), (B, T, N)
        A = -torch.exp(self.A_log)  # (D_in, N), every entry < 0
        scan = self.scan if self.scan != "auto" else ("sequential" if x.device.type == "cpu" else "chunked")
        if scan == "chunked":
            y, ssm_state = selective_scan(u, delta, A, Bm, Cm, self.D, ssm_state, chunk_size=self.chunk_size)
        else:
            y, ssm_state = selective_scan_ref(u, delta, A, Bm, Cm, self.D, ssm_state)  # (B, T, D_in), (B, D_in, N)
        out = self.out_proj(y * F.silu(z))  # gate, then (B, T, D_in) -> (B, T, C)
        return MambaOutput(out, MambaState(u_in[..., T:], ssm_state))  # the last K - 1 conv inputs

    def step(self, x: Tensor, state: MambaState | None = None) -> MambaOutput:
        """One decoding step: x ``(B, C)`` (one token) -> ``(B, C)`` and the new state; O(D_in (K + N)) work."""
        check_tensor("x", x)
        check_float("x", x)
        if x.dim() != 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"x: expected shape (batch, d_model={self.d_model}) (one token), got {shape_str(x)}")
        u, z = self.in_proj(x).chunk(2, dim=-1)  # 2 x (B, D_in)
        conv_past, ssm_state = self._state(state, x.shape[0], u)
        window = torch.cat([conv_past.to(u.dtype), u.unsqueeze(-1)], dim=-1)  # (B, D_in, K): the kernel's inputs
        u = (window * self.conv1d.weight.squeeze(1)).sum(-1) + self.conv1d.bias  # the conv's last output, (B, D_in)
        u = F.silu(u)
        delta, Bm, Cm = self._selection(u)  # (B, D_in), (B, N), (B, N)
        A = -torch.exp(self.A_log)
        y, ssm_state = selective_scan_step(u, delta, A, Bm, Cm, self.D, ssm_state)
        out = self.out_proj(y * F.silu(z))  # (B, D_in) -> (B, C)
        return MambaOutput(out, MambaState(window[..., 1:], ssm_state))

    def _selection(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Delta, B, C from the input (Algorithm 2): ``(..., D_in)`` -> ``(..., D_in)``, ``(..., N)``, ``(..., N)``."""
        delta_r, Bm, Cm = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(delta_r))  # Delta = softplus(delta_r W_Delta + b_Delta) > 0, (..., D_in)
        return delta, Bm, Cm

    def _state(self, state: MambaState | None, batch: int, like: Tensor) -> tuple[Tensor, Tensor]:
        if state is None:
            return self.initial_state(batch, device=like.device, dtype=like.dtype)
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError(f"state: expected a MambaState(conv, ssm), got {type(state).__name__}")
        conv, ssm = state
        for name, s, shape in (
            ("state.conv", conv, (batch, self.d_inner, self.d_conv - 1)),
            ("state.ssm", ssm, (batch, self.d_inner, self.d_state)),
        ):
            check_tensor(name, s)
            if tuple(s.shape) != shape:
                raise ValueError(f"{name}: expected shape ({', '.join(map(str, shape))}), got {shape_str(s)}")
        return conv, ssm

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_state={self.d_state}, d_conv={self.d_conv}, d_inner={self.d_inner}"
