r"""Recurrent layers: multi-layer, bidirectional, variable-length; drop-in twins of ``torch.nn.RNN/LSTM/GRU``.

The three layers share one loop over time (:func:`attnlab.nn.loop.run_direction`) and differ only in the cell
whose ``project`` / ``step`` functions they call (:mod:`attnlab.nn.cells`, where the readable equations are),
differentiated by autograd. What runs when you call :class:`LSTM` (without ``proj_size``) is by default the
same equations in :mod:`attnlab.nn.lstm_bptt`: a loop with a hand-derived backward through time
(``backward="manual"``, the spelling of every hand-derived backward in attnlab, as ``impl="manual"`` in the
SDPA) and its matrix products on oneDNN (:mod:`attnlab.nn.gemm`); ``backward="autograd"`` runs the shared loop.
Per layer and direction:

1. the input projection for *all* time steps is one matmul, hoisted out of the loop: ``(T, B, I) -> (T, B, G*H)``;
2. each step does one fused matmul of the state against ``W_hh`` for all gates, then the gate arithmetic.

Legend (as in PyTorch's docs): T sequence length, B batch, I ``input_size``, H ``hidden_size``,
P ``proj_size`` (LSTM only), H_out = P if P > 0 else H, D = 2 if bidirectional else 1, L ``num_layers``.

Shapes: input ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``) or unbatched ``(T, I)``; hidden state
``(D*L, B, H_out)`` (``c``: ``(D*L, B, H)``), layer-major: index ``layer * D + direction``; output
``(T, B, D*H_out)``. Parameters: ``weight_ih_l{k}{_reverse}``, ``weight_hh_l{k}{_reverse}``,
``bias_ih_l{k}{_reverse}``, ``bias_hh_l{k}{_reverse}`` (and ``weight_hr_l{k}{_reverse}`` for an LSTM with
P > 0), exactly the names, shapes and order of torch, so ``ours.load_state_dict(theirs.state_dict())`` works.

Variable lengths: ``forward(..., lengths=...)`` (a 1-D tensor or list of B lengths in [1, T]) gives what torch
gives on ``pack_padded_sequence(..., enforce_sorted=False)``: outputs at padded steps are zero and the final
state of each sequence is taken at its last valid step; the reverse direction starts at each sequence's last
valid step. Unlike ``pad_packed_sequence`` (which trims to ``max(lengths)``), the output keeps the input's T.
A ``PackedSequence`` input is accepted as by torch and gives a ``PackedSequence`` output.
"""

from __future__ import annotations

import functools
import warnings
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from attnlab._checks import (
    check_backward,
    check_float,
    check_lengths,
    check_ndim,
    check_positive_int,
    check_same_dtype_device,
    check_tensor,
)
from attnlab.nn.cells import GRUCell, LSTMCell, RNNCell, fold_bias, uniform_reset
from attnlab.nn.loop import StepFn, run_direction
from attnlab.nn.lstm_bptt import lstm_direction


class _RecurrentBase(nn.Module):
    """The parameters, checks and layer/direction loop shared by RNN, LSTM and GRU."""

    CELL: ClassVar[type] = RNNCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a probability in [0, 1], got {dropout!r}")
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"proj_size: expected an integer >= 0, got {proj_size!r}")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size: expected proj_size < hidden_size={hidden_size}, got {proj_size}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"dropout={dropout} has no effect with num_layers=1: dropout is applied between layers",
                UserWarning,
                stacklevel=2,
            )
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = proj_size
        kw = {"device": device, "dtype": dtype}
        D = 2 if bidirectional else 1
        gh = self.CELL.GATES * hidden_size
        h_out = proj_size if proj_size > 0 else hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else D * h_out
            for suffix in ("", "_reverse")[:D]:
                self.register_parameter(f"weight_ih_l{layer}{suffix}", nn.Parameter(torch.empty(gh, layer_in, **kw)))
                self.register_parameter(f"weight_hh_l{layer}{suffix}", nn.Parameter(torch.empty(gh, h_out, **kw)))
                if bias:
                    self.register_parameter(f"bias_ih_l{layer}{suffix}", nn.Parameter(torch.empty(gh, **kw)))
                    self.register_parameter(f"bias_hh_l{layer}{suffix}", nn.Parameter(torch.empty(gh, **kw)))
                if proj_size > 0:
                    self.register_parameter(
                        f"weight_hr_l{layer}{suffix}", nn.Parameter(torch.empty(proj_size, hidden_size, **kw))
                    )
        self.reset_parameters()

    # --- torch-compatible surface -------------------------------------------------------------------
    def reset_parameters(self) -> None:
        uniform_reset(self, self.hidden_size)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _h_out(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def _weights(
        self, layer: int, direction: int
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
        sfx = "_reverse" if direction == 1 else ""
        get = functools.partial(getattr, self)
        return (
            get(f"weight_ih_l{layer}{sfx}"),
            get(f"weight_hh_l{layer}{sfx}"),
            get(f"bias_ih_l{layer}{sfx}", None),
            get(f"bias_hh_l{layer}{sfx}", None),
            get(f"weight_hr_l{layer}{sfx}", None),
        )

    @property
    def all_weights(self) -> list[list[Tensor]]:
        return [
            [w for w in self._weights(layer, d) if w is not None]
            for layer in range(self.num_layers)
            for d in range(self.num_directions)
        ]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (
            ("proj_size", 0),
            ("num_layers", 1),
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
        ):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s

    # --- per-kind hooks -----------------------------------------------------------------------------
    def _make_step(self, weight_hh: Tensor, bias_hh: Tensor | None, weight_hr: Tensor | None) -> StepFn:
        return functools.partial(self.CELL.step, weight_hh_t=weight_hh.t(), bias_hh=bias_hh)

    def _direction(self, x, state, weights, lengths, reverse):
        """One direction of one layer: inputs ``(T, B, I)`` -> outputs ``(T, B, H_out)`` and the final state."""
        w_ih, w_hh, b_ih, b_hh, w_hr = weights
        xw = self.CELL.project(x, w_ih, b_ih, b_hh)  # (T, B, G*H): one matmul for all steps
        return run_direction(self._make_step(w_hh, b_hh, w_hr), xw, state, lengths, reverse)

    # --- forward ------------------------------------------------------------------------------------
    def _check_state(self, name: str, s: object, x: Tensor, batched: bool, size: int) -> Tensor:
        s = check_tensor(name, s)
        rows = self.num_layers * self.num_directions
        want = (rows, x.shape[1], size) if batched else (rows, size)
        if tuple(s.shape) != want:
            layout = "(num_layers*num_directions, batch, hidden)" if batched else "(num_layers*num_directions, hidden)"
            raise ValueError(f"{name}: expected shape {want} {layout}, got {tuple(s.shape)}")
        check_same_dtype_device(name, s, x)
        return s if batched else s.unsqueeze(1)

    def _initial_state(self, hx: object, x: Tensor, batched: bool) -> tuple[Tensor, ...]:
        rows, B = self.num_layers * self.num_directions, x.shape[1]
        if self.CELL.N_STATES == 2:
            if hx is None:
                return (x.new_zeros(rows, B, self._h_out), x.new_zeros(rows, B, self.hidden_size))
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx: expected a tuple (h_0, c_0) of two tensors, got {type(hx).__name__}")
            return (
                self._check_state("hx[0] (h_0)", hx[0], x, batched, self._h_out),
                self._check_state("hx[1] (c_0)", hx[1], x, batched, self.hidden_size),
            )
        if hx is None:
            return (x.new_zeros(rows, B, self.hidden_size),)
        return (self._check_state("hx", hx, x, batched, self.hidden_size),)

    def forward(self, input, hx=None, lengths=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx, lengths)
        input = check_tensor("input", input)
        check_float("input", input)
        check_ndim(
            "input", input, (2, 3), "(seq, batch, input_size), (batch, seq, input_size) or unbatched (seq, input_size)"
        )
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"input: expected last dimension input_size={self.input_size}, got shape {tuple(input.shape)}"
            )
        batched = input.dim() == 3
        if not batched:
            if lengths is not None:
                raise ValueError("lengths: only valid with a batched (3-D) input, got an unbatched 2-D input")
            x = input.unsqueeze(1)  # (T, 1, I)
        else:
            x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
        if x.shape[0] == 0:
            raise ValueError(f"input: expected a sequence length >= 1, got shape {tuple(input.shape)}")
        lens = None if lengths is None else check_lengths(lengths, x.shape[1], x.shape[0])
        states0 = self._initial_state(hx, x, batched)

        output, finals = self._run_layers(x, states0, lens)  # (T, B, D*H_out), per-state (D*L, B, ·)
        if not batched:
            output = output.squeeze(1)
            finals = tuple(f.squeeze(1) for f in finals)
        elif self.batch_first:
            output = output.transpose(0, 1)  # (B, T, D*H_out)
        return output, (finals if self.CELL.N_STATES == 2 else finals[0])

    def _run_layers(self, x: Tensor, states0: tuple[Tensor, ...], lens: list[int] | None) -> tuple[Tensor, tuple]:
        D = self.num_directions
        finals: list[list[Tensor]] = [[] for _ in states0]
        layer_in = x  # (T, B, I) for layer 0, (T, B, D*H_out) above
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                state = tuple(s[layer * D + d] for s in states0)  # each (B, ·)
                out, state = self._direction(layer_in, state, self._weights(layer, d), lens, reverse=d == 1)
                outs.append(out)
                for acc, s in zip(finals, state, strict=True):
                    acc.append(s)
            layer_in = outs[0] if D == 1 else torch.cat(outs, dim=2)  # (T, B, D*H_out)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, p=self.dropout, training=True)
        return layer_in, tuple(torch.stack(acc, 0) for acc in finals)

    def _forward_packed(self, packed: PackedSequence, hx, lengths):
        if lengths is not None:
            raise ValueError("lengths: not allowed with a PackedSequence input (it carries its own lengths)")
        padded, lens = pad_packed_sequence(packed, batch_first=self.batch_first)  # original batch order
        output, h = self.forward(padded, hx, lengths=lens)
        # Repack in the input's own sorted order so sorted_indices/unsorted_indices match torch's output.
        b_dim = 0 if self.batch_first else 1
        order = packed.sorted_indices
        if order is not None:
            output = output.index_select(b_dim, order)
            lens = lens.index_select(0, order.cpu())
        data = pack_padded_sequence(output, lens, batch_first=self.batch_first, enforce_sorted=True).data
        return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), h


class RNN(_RecurrentBase):
    r"""Multi-layer Elman RNN, :math:`h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`, with
    :math:`\phi` = tanh or relu (``nonlinearity``). A twin of ``torch.nn.RNN``: same arguments, parameters and
    returns, plus ``lengths=`` in ``forward``. See :mod:`attnlab.nn.recurrent` for shapes and the legend.

    ``forward(input, hx=None, lengths=None) -> (output, h_n)``.
    """

    CELL = RNNCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device=device, dtype=dtype
        )
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")

    def _make_step(self, weight_hh: Tensor, bias_hh: Tensor | None, weight_hr: Tensor | None) -> StepFn:
        return functools.partial(
            RNNCell.step, weight_hh_t=weight_hh.t(), bias_hh=bias_hh, relu=self.nonlinearity == "relu"
        )


class LSTM(_RecurrentBase):
    r"""Multi-layer LSTM (equations on :class:`~attnlab.nn.LSTMCell`), a twin of ``torch.nn.LSTM``
    including ``proj_size``: same arguments, parameters and returns, plus ``lengths=`` in ``forward``.

    ``forward(input, hx=None, lengths=None) -> (output, (h_n, c_n))``.

    Which code runs: with ``backward="manual"`` (the default) and no ``proj_size``, each layer and direction is
    :func:`attnlab.nn.lstm_bptt.lstm_direction`, the cell's equations in a loop whose backward through time is
    written out (about 2x faster than autograd through the loop; first-order only). ``backward="autograd"`` (or
    a ``proj_size``) runs the shared loop of :mod:`attnlab.nn.loop` over :meth:`LSTMCell.step`, differentiated by
    autograd (double backward, forward-mode AD). Both are tested against ``torch.nn.LSTM``.
    """

    CELL = LSTMCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        backward: str = "manual",
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device=device,
            dtype=dtype,
        )
        self.backward = backward

    @property
    def backward(self) -> str:
        """``"manual"``: the hand-derived BPTT of :mod:`attnlab.nn.lstm_bptt`; ``"autograd"``: the shared loop."""
        return self._backward

    @backward.setter
    def backward(self, value: str) -> None:
        self._backward = check_backward(value)

    def _make_step(self, weight_hh: Tensor, bias_hh: Tensor | None, weight_hr: Tensor | None) -> StepFn:
        return functools.partial(
            LSTMCell.step,
            weight_hh_t=weight_hh.t(),
            bias_hh=bias_hh,
            weight_hr_t=None if weight_hr is None else weight_hr.t(),
        )

    def _direction(self, x, state, weights, lengths, reverse):
        w_ih, w_hh, b_ih, b_hh, w_hr = weights
        if self.backward == "manual" and w_hr is None:
            return lstm_direction(x, state, w_ih, fold_bias(b_ih, b_hh), w_hh, lengths, reverse)
        return super()._direction(x, state, weights, lengths, reverse)


class GRU(_RecurrentBase):
    r"""Multi-layer GRU (equations and the deviation from Cho et al. 2014 on :class:`~attnlab.nn.GRUCell`),
    a twin of ``torch.nn.GRU``: same arguments, parameters and returns, plus ``lengths=`` in ``forward``.

    ``forward(input, hx=None, lengths=None) -> (output, h_n)``.
    """

    CELL = GRUCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device=device, dtype=dtype
        )
