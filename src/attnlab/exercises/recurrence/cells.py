"""Exercises 3.1 ``rnn_cell``, ``lstm_cell``, ``gru_cell``: one time step each, checked against
``torch.nn.RNNCell``/``LSTMCell``/``GRUCell`` with the same weights (forward, input, state and weight gradients)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab.exercises.engine import Check, Exercise
from attnlab.exercises.recurrence import cell_mistakes as cm
from attnlab.exercises.trial import Trial
from attnlab.nn import cells as library
from attnlab.nn.cells import GRUCell, LSTMCell, RNNCell

WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """The library's RNNCell step: tanh(x W_ih^T + b_ih + b_hh + h W_hh^T)."""
    xw = RNNCell.project(x, weight_ih, bias_ih, bias_hh)  # (B, H)
    return RNNCell.step(xw, (h,), weight_hh.t(), bias_hh)[0]


def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """The library's LSTMCell step (gates packed i|f|g|o)."""
    xw = LSTMCell.project(x, weight_ih, bias_ih, bias_hh)  # (B, 4H)
    return LSTMCell.step(xw, (h, c), weight_hh.t(), bias_hh)


def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """The library's GRUCell step (gates packed r|z|n, the reset gate applied after W_hn h + b_hn)."""
    xw = GRUCell.project(x, weight_ih, bias_ih, bias_hh)  # (B, 3H): W_ih x + b_ih only
    return GRUCell.step(xw, (h,), weight_hh.t(), bias_hh)[0]


class _Cell:
    """The checks of one cell kind: its torch twin, how to call the learner's function and compare."""

    def __init__(self, twin: type[nn.Module], n_states: int) -> None:
        self.twin, self.n_states = twin, n_states

    def module(self, t: Trial, I: int, H: int, dtype=torch.float32) -> nn.Module:
        with t.seeded():
            return self.twin(I, H, dtype=dtype)

    def run(self, t: Trial, m: nn.Module, x: Tensor, states: list[Tensor], grad: bool = False) -> list[Tensor]:
        ws = [getattr(m, n).detach().clone().requires_grad_(grad) for n in WEIGHTS]
        out = t.call(x, *states, *ws)
        outs = list(t.parts(out, 2, "the result (h', c')")) if self.n_states == 2 else [out]
        for name, o in zip(("h'", "c'"), outs, strict=False):
            t.tensor(o, states[0].shape, x.dtype, name)
        return outs

    def twin_out(self, m: nn.Module, x: Tensor, states: list[Tensor]) -> list[Tensor]:
        out = m(x, tuple(states) if self.n_states == 2 else states[0])
        return list(out) if self.n_states == 2 else [out]

    def inputs(self, t: Trial, B: int, I: int, H: int, dtype=torch.float32, grad: bool = False):
        x = t.randn(B, I, dtype=dtype).requires_grad_(grad)
        return x, [t.randn(B, H, dtype=dtype).requires_grad_(grad) for _ in range(self.n_states)]

    def compare(self, t: Trial, B: int, I: int, H: int, dtype=torch.float32) -> None:
        m = self.module(t, I, H, dtype)
        x, states = self.inputs(t, B, I, H, dtype)
        for name, got, want in zip(("h'", "c'"), self.run(t, m, x, states), self.twin_out(m, x, states), strict=False):
            t.close(got, want.detach(), f"{name} against torch.nn.{self.twin.__name__} (B={B}, I={I}, H={H}, {dtype})")

    def gradients(self, t: Trial) -> None:
        m = self.module(t, 5, 6)
        x, states = self.inputs(t, 3, 5, 6, grad=True)
        outs = self.run(t, m, x, states, grad=True)
        cots = [t.randn(*o.shape) for o in outs]
        got = t.grad(outs, t.args[: 1 + self.n_states + 4], cots)
        params = [getattr(m, n) for n in WEIGHTS]
        want = torch.autograd.grad(self.twin_out(m, x, states), [x, *states, *params], cots)
        names = ["x", *(["h", "c"][: self.n_states]), *WEIGHTS]
        for name, g, w in zip(names, got, want, strict=True):
            t.close(g, w, f"gradient of {name}")

    def checks(self) -> tuple[Check, ...]:
        torch_name = f"torch.nn.{self.twin.__name__}"
        return (
            Check(
                "shape and dtype",
                "B=2, I=3, H=4",
                "",
                lambda t: self.run(t, self.module(t, 3, 4), *self.inputs(t, 2, 3, 4)),
            ),
            Check(
                f"against {torch_name}",
                "B=3, I=5, H=7, float32, weights copied",
                "",
                lambda t: self.compare(t, 3, 5, 7),
            ),
            Check("gradients", "input, state and weight gradients against torch's autograd", "", self.gradients),
            Check("odd shapes", "batch 1, input size 1, hidden size 59", "", lambda t: self.compare(t, 1, 1, 59)),
            Check("float64", "dtype follows the inputs", "", lambda t: self.compare(t, 2, 4, 3, torch.float64)),
        )


_SHAPES_1 = "x (B, I), h (B, H); weight_ih ({g}H, I), weight_hh ({g}H, H), bias_ih and bias_hh ({g}H,)"

RNN = Exercise(
    name="rnn_cell",
    section="3.1",
    title="Elman RNN cell (tanh)",
    task=(
        "One step of a tanh RNN: the new hidden state from the input and the previous state. Weights as "
        "torch.nn.RNNCell's."
    ),
    equation="h' = tanh(W_ih x + b_ih + W_hh h + b_hh)",
    shapes=_SHAPES_1.format(g="") + "; returns h' (B, H)",
    returns="h' (B, H)",
    reference=rnn_cell,
    solution=(rnn_cell, library._project_folded, RNNCell.step),
    checks=_Cell(nn.RNNCell, 1).checks(),
    mistakes=cm.RNN_MISTAKES,
    forbidden=("torch.nn.RNNCell", "torch.rnn_tanh_cell"),
)

LSTM = Exercise(
    name="lstm_cell",
    section="3.1",
    title="LSTM cell (gates i, f, g, o as torch packs them)",
    task=(
        "One LSTM step. The four gates come packed in the weights in torch's order i|f|g|o (input, forget, cell "
        "candidate, output): the first H rows of weight_ih belong to i, the next H to f, and so on."
    ),
    equation=(
        "i, f, o = sigma(W_i* x + b_i* + W_h* h + b_h*), g = tanh(W_ig x + b_ig + W_hg h + b_hg); "
        "c' = f * c + i * g; h' = o * tanh(c')"
    ),
    shapes=_SHAPES_1.format(g="4").replace("h (B, H)", "h, c (B, H)") + "; returns (h', c'), each (B, H)",
    returns="a tuple (h', c')",
    reference=lstm_cell,
    solution=(lstm_cell, library._project_folded, LSTMCell.step),
    checks=_Cell(nn.LSTMCell, 2).checks(),
    mistakes=cm.LSTM_MISTAKES,
    forbidden=("torch.nn.LSTMCell", "torch.lstm_cell"),
)

GRU = Exercise(
    name="gru_cell",
    section="3.1",
    title="GRU cell (torch's reset-gate placement)",
    task=(
        "One GRU step in torch's convention: gates packed r|z|n, and the reset gate multiplies W_hn h + b_hn (after "
        "the matrix product; Cho et al. 2014 apply it to h before)."
    ),
    equation=(
        "r, z = sigma(W_i* x + b_i* + W_h* h + b_h*); n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); "
        "h' = (1 - z) * n + z * h"
    ),
    shapes=_SHAPES_1.format(g="3") + "; returns h' (B, H)",
    returns="h' (B, H)",
    reference=gru_cell,
    solution=(gru_cell, GRUCell.project, GRUCell.step),
    checks=_Cell(nn.GRUCell, 1).checks(),
    mistakes=cm.GRU_MISTAKES,
    forbidden=("torch.nn.GRUCell", "torch.gru_cell"),
)

EXERCISES = (RNN, LSTM, GRU)
