r"""The selective scan of Mamba (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State
Spaces"): a diagonal linear recurrence whose step size, input and output maps depend on the input.

A continuous state-space model ``h'(t) = A h(t) + B x(t)``, ``y(t) = C h(t)`` (their eq. 1) is discretised with
step ``delta`` by the zero-order hold (eq. 4), ``A_bar = exp(delta A)``,
``B_bar = (delta A)^{-1} (exp(delta A) - I) delta B``, and run as a recurrence (eq. 2a-2b). Selection (section
3.2, Algorithm 2): ``delta``, ``B`` and ``C`` are functions of the input at each step, so the model can choose
what to keep and what to forget. Per channel d and state index n, for t = 1..T:

.. math::
    h_t[d, n] = \exp(\Delta_t[d] A[d, n])\, h_{t-1}[d, n] + \Delta_t[d]\, B_t[n]\, u_t[d], \qquad
    y_t[d] = \sum_n C_t[n]\, h_t[d, n] + D[d]\, u_t[d].

Deviation, stated: ``B_bar`` is taken as ``delta B`` (the first-order approximation of the ZOH formula, which
the authors' implementation uses: their ``selective_scan_ref`` multiplies delta, B and u), while ``A_bar`` is the
exact ZOH ``exp(delta A)``. ``A`` is real and negative (``A = -exp(A_log)``), so every decay is in (0, 1].

Symbols: B batch (the letter is also Mamba's input matrix; ``B_t`` below always means the input map), T
length, D channels (Mamba's d_inner), N state size per channel; u ``(B, T, D)`` input; delta ``(B, T, D)``
positive step sizes; A ``(D, N)``; B_t, C_t ``(B, T, N)``; D ``(D,)`` skip; h ``(B, D, N)`` state.

Two computations, equal up to rounding (the tests hold them to 1e-10 in float64):

- :func:`selective_scan_ref`: the recurrence above, one :func:`selective_scan_step` per token (T sequential
  steps; decoding runs the same step).
- :func:`selective_scan` (training), chunked in two levels with chunk length c (default ceil(sqrt(T))):
  (1) inside every chunk at once, the scan from a zero state (c steps, vectorised over the T/c chunks) and its
  outputs ``C_t h^local_t``; the cumulative log decay from the chunk's start, ``L_t = A * cumsum(delta)`` (A does
  not change in time, so the cumulative sum runs over delta ``(B, T, D)``, N times smaller than the decays);
  (2) a sequential pass over the chunks carries the state across, ``H_{j+1} = exp(L_end) H_j + h^local_end``;
  (3) every position adds what came in, ``y_t += C_t (exp(L_t) H_j)``. About 2 sqrt(T) sequential steps
  instead of T, every factor a decay <= 1 (nothing overflows, nothing is divided by a decay), memory
  O(B T D N) as the reference. The fully parallel within-chunk form (Mamba-2's "segsum" matrix
  ``exp(L_t - L_s)``) would need a (c x c) matrix per channel and state index, c times the memory, because
  Mamba-1's decay differs per (d, n); Mamba-2 makes A a scalar per head for that.

Which is faster depends on the machine. Fewer sequential steps pay where each step costs kernel launches (a
GPU) or where the tensors are small. On a CPU at training sizes the reference's per-step tensors ``(B, D, N)``
stay in cache while the chunked scan streams ``(B, T, D, N)`` tensors through memory, and the plain loop wins:
hence :class:`attnlab.nn.Mamba`'s ``scan="auto"``.

Float16/bfloat16 inputs are scanned in float32 (states and decays), the output returns in u's dtype.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab._checks import check_float, check_positive_int, check_tensor, shape_str


class ScanOutput(NamedTuple):
    """``output`` y ``(B, T, D)`` (``(B, D)`` from a step); ``state`` h after the last token ``(B, D, N)``."""

    output: Tensor
    state: Tensor


def selective_scan_step(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, state: Tensor
) -> ScanOutput:
    """One step of the recurrence: u, delta ``(B, D)``; A ``(D, N)``; B, C ``(B, N)``; D ``(D,)`` or None;
    state ``(B, D, N)`` (in the scan's dtype: float32 for float16/bfloat16 u). Returns y ``(B, D)`` and the
    new state; nothing is modified in place. No checks: the callers validate once, outside the loop."""
    work = state.dtype
    u_, delta_, B_, C_ = (x.to(work) for x in (u, delta, B, C))
    decay = torch.exp(delta_.unsqueeze(-1) * A)  # A_bar = exp(delta A), eq. 4: (B, D, 1) * (D, N) -> (B, D, N)
    drive = (delta_ * u_).unsqueeze(-1) * B_.unsqueeze(-2)  # B_bar u ~ delta B u: (B, D, 1) * (B, 1, N)
    h = decay * state + drive  # h_t = A_bar h_{t-1} + B_bar u_t, eq. 2a   (B, D, N)
    y = (h * C_.unsqueeze(-2)).sum(-1)  # y_t = C_t h_t, eq. 2b: (B, D, N) * (B, 1, N) summed over N -> (B, D)
    if D is not None:
        y = y + D * u_  # the skip connection D u_t   (B, D)
    return ScanOutput(y.to(u.dtype), h)


def selective_scan_ref(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    state: Tensor | None = None,
) -> ScanOutput:
    """The sequential reference: one :func:`selective_scan_step` per token from ``state`` (zeros if None).
    Shapes in the module docstring; returns y ``(B, T, D)`` and the last state ``(B, D, N)``."""
    h = _check_scan_args(u, delta, A, B, C, D, state)
    ys = []
    for u_t, delta_t, B_t, C_t in zip(u.unbind(1), delta.unbind(1), B.unbind(1), C.unbind(1), strict=True):
        y_t, h = selective_scan_step(u_t, delta_t, A, B_t, C_t, D, h)  # (B, D), (B, D, N)
        ys.append(y_t)
    return ScanOutput(torch.stack(ys, dim=1), h)  # (B, T, D)


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    state: Tensor | None = None,
    *,
    chunk_size: int | None = None,
) -> ScanOutput:
    """The chunked scan (module docstring), the same numbers as :func:`selective_scan_ref` in about
    ``2 sqrt(T)`` sequential steps. ``chunk_size``: c, default ``ceil(sqrt(T))``."""
    h0 = _check_scan_args(u, delta, A, B, C, D, state)
    if chunk_size is not None:
        check_positive_int("chunk_size", chunk_size)
    Bn, T, Dn = u.shape
    N = A.shape[1]
    c = min(chunk_size or math.ceil(math.sqrt(T)), T)
    n = math.ceil(T / c)
    work = h0.dtype
    u_, delta_, B_, C_ = (x.to(work) for x in (u, delta, B, C))
    pad = n * c - T  # delta = 0 at the padded steps: decay exp(0) = 1 and no drive, the state passes unchanged
    if pad:
        u_, delta_, B_, C_ = (F.pad(x, (0, 0, 0, pad)) for x in (u_, delta_, B_, C_))
    dt = delta_.view(Bn, n, c, Dn)  # (B, n, c, D)
    du = (delta_ * u_).view(Bn, n, c, Dn)  # delta u: (B, n, c, D)
    Bc, Cc = B_.view(Bn, n, c, N), C_.view(Bn, n, c, N)  # (B, n, c, N)
    # (1) inside every chunk at once, from a zero state: h^local_t = A_bar_t h^local_{t-1} + B_bar_t u_t
    h = torch.zeros(Bn, n, Dn, N, dtype=work, device=u.device)  # (B, n, D, N): one state per chunk
    ys = []
    for dt_t, du_t, B_t, C_t in zip(dt.unbind(2), du.unbind(2), Bc.unbind(2), Cc.unbind(2), strict=True):  # c steps
        # eq. 2a: exp(delta A) (B, n, D, 1) * (D, N) ; delta u B: (B, n, D, 1) * (B, n, 1, N)
        h = torch.exp(dt_t.unsqueeze(-1) * A) * h + du_t.unsqueeze(-1) * B_t.unsqueeze(-2)  # (B, n, D, N)
        ys.append((h * C_t.unsqueeze(-2)).sum(-1))  # C_t h^local_t: (B, n, D, N) * (B, n, 1, N) -> (B, n, D)
    y = torch.stack(ys, dim=2)  # (B, n, c, D)
    # L_t = sum of delta_s A from the chunk's start to t = A * cumsum(delta): A is constant in time
    cum_dt = torch.cumsum(dt, dim=2)  # (B, n, c, D)
    chunk_decay = torch.exp(cum_dt[:, :, -1].unsqueeze(-1) * A)  # exp(L_end): (B, n, D, 1) * (D, N) -> (B, n, D, N)
    # (2) across chunks: the state entering chunk j + 1 is H_{j+1} = exp(L_end) H_j + h^local_end
    entering = []
    H = h0  # (B, D, N)
    for decay_j, local_end_j in zip(chunk_decay.unbind(1), h.unbind(1), strict=True):  # n steps, each (B, D, N)
        entering.append(H)
        H = decay_j * H + local_end_j
    H_in = torch.stack(entering, dim=1)  # (B, n, D, N)
    # (3) every position adds what came in: C_t (exp(L_t) H_j), so that y_t = C_t h_t (eq. 2b)
    carry = torch.exp(cum_dt.unsqueeze(-1) * A)  # exp(L_t): (B, n, c, D, 1) * (D, N) -> (B, n, c, D, N)
    y = y + (carry * H_in.unsqueeze(2) * Cc.unsqueeze(-2)).sum(-1)  # (B, n, c, D, N) * (B, n, c, 1, N) -> (B, n, c, D)
    y = y.reshape(Bn, n * c, Dn)[:, :T]  # (B, T, D)
    if D is not None:
        y = y + D * u_[:, :T]  # the skip D u_t
    return ScanOutput(y.to(u.dtype), H)


def scan_dtype(u: Tensor) -> torch.dtype:
    """The dtype of the states and decays for input u: float32 for float16/bfloat16, else u's dtype."""
    return torch.promote_types(u.dtype, torch.float32)


def _check_scan_args(u, delta, A, B, C, D, state) -> Tensor:
    """Validate once, outside the loops; return the initial state (zeros when None)."""
    for name, x in (("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C)):
        check_tensor(name, x)
        check_float(name, x)
    if u.dim() != 3 or u.shape[1] < 1:
        raise ValueError(f"u: expected a (batch, length >= 1, channels) tensor, got shape {shape_str(u)}")
    Bn, T, Dn = u.shape
    if A.dim() != 2 or A.shape[0] != Dn:
        raise ValueError(f"A: expected shape ({Dn}, state size) (channels of u, state size), got {shape_str(A)}")
    N = A.shape[1]
    for name, x, shape in (("delta", delta, (Bn, T, Dn)), ("B", B, (Bn, T, N)), ("C", C, (Bn, T, N))):
        if tuple(x.shape) != shape:
            raise ValueError(f"{name}: expected shape ({', '.join(map(str, shape))}), got {shape_str(x)}")
    if D is not None and (check_tensor("D", D).dim() != 1 or D.shape[0] != Dn):
        raise ValueError(f"D: expected shape ({Dn},) (channels of u), got {shape_str(D)}")
    work = scan_dtype(u)
    if state is None:
        return torch.zeros(Bn, Dn, N, dtype=work, device=u.device)
    check_tensor("state", state)
    if tuple(state.shape) != (Bn, Dn, N):
        raise ValueError(
            f"state: expected shape ({Bn}, {Dn}, {N}) (batch, channels, state size), got {shape_str(state)}"
        )
    if state.dtype != work:
        raise TypeError(f"state: expected dtype {work} (the scan's dtype for u's {u.dtype}), got {state.dtype}")
    return state
