"""Known wrong RNN, LSTM and GRU cells (kept as code for the diagnosis); each is one mistake away from torch's."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.exercises.engine import Mistake

# --- RNN -------------------------------------------------------------------------------------------------------


def _rnn_no_hidden_bias(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return torch.tanh(F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh))


def _rnn_sigmoid(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return torch.sigmoid(F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh))


def _rnn_not_transposed(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return torch.tanh(x @ weight_ih + bias_ih + h @ weight_hh + bias_hh)


MISSING_BIAS = "torch has two biases per gate, b_ih and b_hh: add both (for a plain sum they act as one, b_ih + b_hh)"
NOT_TRANSPOSED = (
    "weights not transposed",
    "torch stores weight_ih as (H, I), one row per hidden unit: compute x @ weight_ih.T (or F.linear(x, weight_ih))",
)

RNN_MISTAKES = (
    Mistake("rnn.missing_bias", "a missing bias (b_hh)", MISSING_BIAS, _rnn_no_hidden_bias),
    Mistake(
        "rnn.sigmoid",
        "sigmoid instead of tanh",
        "the Elman cell squashes with tanh (range -1..1, zero-centred); sigmoid is for gates",
        _rnn_sigmoid,
    ),
    Mistake("rnn.not_transposed", *NOT_TRANSPOSED, _rnn_not_transposed),
)

# --- LSTM ------------------------------------------------------------------------------------------------------


def _lstm(
    x,
    h,
    c,
    weight_ih,
    weight_hh,
    bias_ih,
    bias_hh,
    *,
    order="ifgo",
    forget_on_input=False,
    h_tanh=True,
    old_cell=False,
    hidden_bias=True,
    inplace=False,
):
    gates = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh if hidden_bias else None)  # (B, 4H)
    parts = dict(zip(order, gates.chunk(4, 1), strict=True))
    i, f, o = (torch.sigmoid(parts[k]) for k in "ifo")
    g = torch.tanh(parts["g"])
    if inplace:
        c_new = c.mul_(f).add_(i * g)  # c modified in place
    elif forget_on_input:
        c_new = f * g + i * c
    else:
        c_new = f * c + i * g
    h_new = o * (torch.tanh(c if old_cell else c_new) if h_tanh else c_new)
    return h_new, c_new


def _lstm_variant(**knobs):
    def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        return _lstm(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, **knobs)

    return lstm_cell


LSTM_MISTAKES = (
    Mistake(
        "lstm.gates_ifog",
        "LSTM gates in the wrong order (i, f, o, g)",
        "torch packs the gates i|f|g|o: chunk(4) gives i, f, g, o (the cell candidate g third, the output gate last)",
        _lstm_variant(order="ifog"),
    ),
    Mistake(
        "lstm.gates_igfo",
        "LSTM gates in TensorFlow's order (i, g, f, o)",
        "torch packs the gates i|f|g|o, not TensorFlow 1's i|j|f|o: chunk(4) gives i, f, g, o",
        _lstm_variant(order="igfo"),
    ),
    Mistake(
        "lstm.forget_on_input",
        "the forget gate on the input",
        "the forget gate scales the OLD cell and the input gate the candidate: c' = f * c + i * g",
        _lstm_variant(forget_on_input=True),
    ),
    Mistake(
        "lstm.h_no_tanh", "h' without tanh of the cell", "h' = o * tanh(c'), not o * c'", _lstm_variant(h_tanh=False)
    ),
    Mistake(
        "lstm.old_cell",
        "h' from the old cell",
        "h' = o * tanh(c'), with the NEW cell state c' just computed",
        _lstm_variant(old_cell=True),
    ),
    Mistake("lstm.missing_bias", "a missing bias (b_hh)", MISSING_BIAS, _lstm_variant(hidden_bias=False)),
    Mistake(
        "lstm.inplace",
        "an in-place update of the cell state",
        "c.mul_(f) (or c *= f) overwrites a tensor autograd needs: write c_new = f * c + i * g out of place",
        _lstm_variant(inplace=True),
        error=r"in-?place operation",
    ),
)

# --- GRU -------------------------------------------------------------------------------------------------------


def _gru(
    x, h, weight_ih, weight_hh, bias_ih, bias_hh, *, reset="after", z_swapped=False, order="rzn", hidden_bias=True
):
    xs = dict(zip(order, F.linear(x, weight_ih, bias_ih).chunk(3, 1), strict=True))  # (B, H) each
    w = dict(zip(order, weight_hh.chunk(3), strict=True))  # (H, H) each
    b = dict(zip(order, bias_hh.chunk(3), strict=True)) if hidden_bias else dict.fromkeys(order)
    r = torch.sigmoid(xs["r"] + F.linear(h, w["r"], b["r"]))
    z = torch.sigmoid(xs["z"] + F.linear(h, w["z"], b["z"]))
    if reset == "before":  # Cho et al. 2014: W_hn (r * h)
        n = torch.tanh(xs["n"] + F.linear(r * h, w["n"], b["n"]))
    elif reset == "weight_only":  # r * (W_hn h) + b_hn
        n = torch.tanh(xs["n"] + r * F.linear(h, w["n"]) + b["n"])
    else:
        n = torch.tanh(xs["n"] + r * F.linear(h, w["n"], b["n"]))
    return z * n + (1 - z) * h if z_swapped else (1 - z) * n + z * h


def _gru_variant(**knobs):
    def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
        return _gru(x, h, weight_ih, weight_hh, bias_ih, bias_hh, **knobs)

    return gru_cell


GRU_MISTAKES = (
    Mistake(
        "gru.reset_before",
        "GRU reset gate applied before W_hn h",
        "torch (and cuDNN) apply r AFTER the matrix product: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); "
        "r * h inside the product is Cho et al.'s original, which torch's weights do not match",
        _gru_variant(reset="before"),
    ),
    Mistake(
        "gru.reset_skips_bias",
        "the reset gate not applied to b_hn",
        "r multiplies W_hn h + b_hn together: r * (W_hn h + b_hn), b_hn included",
        _gru_variant(reset="weight_only"),
    ),
    Mistake(
        "gru.z_swapped",
        "update gate roles swapped",
        "h' = (1 - z) * n + z * h: z close to 1 KEEPS the old state",
        _gru_variant(z_swapped=True),
    ),
    Mistake(
        "gru.gates_zrn",
        "GRU gates in the wrong order (z, r, n)",
        "torch packs the GRU gates r|z|n: chunk(3) gives r (reset), z (update), n (candidate)",
        _gru_variant(order="zrn"),
    ),
    Mistake(
        "gru.missing_bias",
        "a missing bias (b_hh)",
        "torch's GRU has b_hh too: b_hr, b_hz add to the gates, b_hn sits inside r * (W_hn h + b_hn)",
        _gru_variant(hidden_bias=False),
    ),
)
