r"""Recurrent cells: exactly one time step each, state-dict compatible with ``torch.nn.*Cell``.

Each cell's math lives in two static functions that the cell and the layers in
:mod:`attnlab.nn.recurrent` share:

- ``project(x, weight_ih, bias_ih, bias_hh)``: the input half of every gate, ``x W_ih^T + b``. In a layer it
  is hoisted out of the time loop and done for all time steps in one matmul.
- ``step(xw, state, weight_hh_t, bias_hh)``: one time step given that projection, with a single fused matmul
  ``h W_hh^T`` for all gates.

Legend: B batch, I input size, H hidden size. Weights are packed gate by gate along dim 0, in PyTorch's order:
``W_ih`` is ``(G*H, I)`` and ``W_hh`` is ``(G*H, H)`` with G = 1 (RNN), 4 (LSTM: ``i|f|g|o``) or 3
(GRU: ``r|z|n``).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import check_float, check_ndim, check_positive_int, check_same_dtype_device, check_tensor

State = tuple[Tensor, ...]


def uniform_reset(module: nn.Module, hidden_size: int) -> None:
    """U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias, as torch initialises its recurrent cells and layers."""
    bound = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        nn.init.uniform_(p, -bound, bound)


class _CellBase(nn.Module):
    """Parameters, initialisation and argument checks shared by the three cells."""

    GATES: ClassVar[int] = 1
    N_STATES: ClassVar[int] = 1  # 2 for the LSTM's (h, c)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        kw = {"device": device, "dtype": dtype}
        gh = self.GATES * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gh, input_size, **kw))  # (G*H, I)
        self.weight_hh = nn.Parameter(torch.empty(gh, hidden_size, **kw))  # (G*H, H)
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gh, **kw))
            self.bias_hh = nn.Parameter(torch.empty(gh, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_reset(self, self.hidden_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s

    def _prepare(self, input: Tensor, hx: State | None) -> tuple[Tensor, State, bool]:
        """Check input (B, I) or unbatched (I,) and the state; return (batched input, state, batched?)."""
        input = check_tensor("input", input)
        check_float("input", input)
        check_ndim("input", input, (1, 2), "(batch, input_size) or unbatched (input_size,)")
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"input: expected last dimension input_size={self.input_size}, got shape {tuple(input.shape)}"
            )
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        names = ("hx", "cx") if self.N_STATES == 2 else ("hx",)
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            return x, (zeros,) * self.N_STATES, batched
        states = []
        for name, s in zip(names, hx, strict=True):
            s = check_tensor(name, s)
            want = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
            if tuple(s.shape) != want:
                raise ValueError(f"{name}: expected shape {want}, got {tuple(s.shape)}")
            check_same_dtype_device(name, s, input)
            states.append(s if batched else s.unsqueeze(0))
        return x, tuple(states), batched


def fold_bias(bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor | None:
    """b_ih + b_hh: for RNN and LSTM cells both biases fold into the hoisted input projection."""
    return None if bias_ih is None else bias_ih + bias_hh


def _project_folded(x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor:
    """W_ih x + b_ih + b_hh."""
    return F.linear(x, weight_ih, fold_bias(bias_ih, bias_hh))  # (..., I) @ (I, G*H) -> (..., G*H)


class RNNCell(_CellBase):
    r"""Elman RNN cell, one step: :math:`h' = \phi(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})`, with
    :math:`\phi` = tanh (default) or relu.

    Shapes: input ``(B, I)`` or ``(I,)``; hx ``(B, H)`` or ``(H,)``, zeros when omitted; returns h' of hx's
    shape. Parameters as ``torch.nn.RNNCell``: ``weight_ih (H, I)``, ``weight_hh (H, H)``, ``bias_ih (H)``,
    ``bias_hh (H)``.
    """

    GATES = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")

    project = staticmethod(_project_folded)

    @staticmethod
    def step(xw: Tensor, state: State, weight_hh_t: Tensor, bias_hh: Tensor | None, relu: bool = False) -> State:
        (h,) = state
        pre = torch.addmm(xw, h, weight_hh_t)  # (B, H) + (B, H) @ (H, H)
        return (torch.relu(pre) if relu else torch.tanh(pre),)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, state, batched = self._prepare(input, None if hx is None else (hx,))
        xw = self.project(x, self.weight_ih, self.bias_ih, self.bias_hh)
        (h,) = self.step(xw, state, self.weight_hh.t(), self.bias_hh, relu=self.nonlinearity == "relu")
        return h if batched else h.squeeze(0)


class LSTMCell(_CellBase):
    r"""LSTM cell, one step (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000):

    .. math::
        i = \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \\
        f = \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g = \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \\
        o = \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' = f \odot c + i \odot g \\
        h' = o \odot \tanh(c')

    Packing (PyTorch's): ``weight_ih = W_ii|W_if|W_ig|W_io`` of shape ``(4H, I)``, ``weight_hh`` ``(4H, H)``.
    The additive cell update ``c' = f c + i g`` is the gradient highway: ``dc'/dc = f``, so with the forget
    gate open the gradient passes many steps without the repeated squashing of a plain RNN.

    Shapes: input ``(B, I)`` or ``(I,)``; hx = ``(h, c)``, each ``(B, H)`` or ``(H,)``; returns ``(h', c')``.
    """

    GATES = 4
    N_STATES = 2

    project = staticmethod(_project_folded)

    @staticmethod
    def step(
        xw: Tensor, state: State, weight_hh_t: Tensor, bias_hh: Tensor | None, weight_hr_t: Tensor | None = None
    ) -> State:
        h, c = state
        gates = torch.addmm(xw, h, weight_hh_t)  # (B, 4H) + (B, H) @ (H, 4H)
        i, f, g, o = gates.chunk(4, 1)  # each (B, H), packed i|f|g|o
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # c' = f c + i g
        h = torch.sigmoid(o) * torch.tanh(c)  # h' = o tanh(c')
        if weight_hr_t is not None:  # LSTM with projections (Sak et al. 2014): h' = W_hr h'
            h = h @ weight_hr_t  # (B, H) @ (H, P) -> (B, P)
        return h, c

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"hx: expected a tuple (h, c) of two tensors, got {type(hx).__name__}")
        x, state, batched = self._prepare(input, hx)
        xw = self.project(x, self.weight_ih, self.bias_ih, self.bias_hh)
        h, c = self.step(xw, state, self.weight_hh.t(), self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    r"""GRU cell, one step, in PyTorch's convention:

    .. math::
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
        h' = (1 - z) \odot n + z \odot h

    Packing: ``weight_ih = W_ir|W_iz|W_in`` ``(3H, I)``, ``weight_hh = W_hr|W_hz|W_hn`` ``(3H, H)``.

    Deviation from the paper: Cho et al. 2014 reset the state *before* the matmul,
    ``n = tanh(W_in x + W_hn (r * h))``; PyTorch (and cuDNN) apply ``r`` after it, to ``W_hn h + b_hn``, so
    that all three hidden projections are one fused matmul. We follow PyTorch, so weights are interchangeable.
    """

    GATES = 3

    @staticmethod
    def project(x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor:
        """W_ih x + b_ih only: b_hn sits inside r * (W_hn h + b_hn) and cannot be folded in."""
        return F.linear(x, weight_ih, bias_ih)  # (..., I) @ (I, 3H) -> (..., 3H)

    @staticmethod
    def step(xw: Tensor, state: State, weight_hh_t: Tensor, bias_hh: Tensor | None) -> State:
        (h,) = state
        hw = h @ weight_hh_t if bias_hh is None else torch.addmm(bias_hh, h, weight_hh_t)  # (B, 3H)
        xr, xz, xn = xw.chunk(3, 1)  # each (B, H), packed r|z|n
        hr, hz, hn = hw.chunk(3, 1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)  # PyTorch's convention: r applied after W_hn h + b_hn
        return (n + z * (h - n),)  # h' = (1 - z) n + z h

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, state, batched = self._prepare(input, None if hx is None else (hx,))
        xw = self.project(x, self.weight_ih, self.bias_ih, self.bias_hh)
        (h,) = self.step(xw, state, self.weight_hh.t(), self.bias_hh)
        return h if batched else h.squeeze(0)
