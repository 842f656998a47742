"""Bad arguments raise ValueError/TypeError whose message starts with the argument's name."""

from __future__ import annotations

import pytest
import torch

import attnlab.nn as ann

LAYERS = ["RNN", "LSTM", "GRU"]
CELLS = ["RNNCell", "LSTMCell", "GRUCell"]


def _layer(name: str, **kw):
    torch.manual_seed(0)
    return getattr(ann, name)(3, 4, **kw)


def _state(name: str, *shape: int, dtype=torch.float32):
    """h_0 (or (h_0, c_0) for the LSTM) of the given shape."""
    h = torch.zeros(shape, dtype=dtype)
    return (h, h.clone()) if name.startswith("LSTM") else h


# --- layers: input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3,), (2, 5, 2, 3)], ids=["1-D", "4-D"])
@pytest.mark.parametrize("name", LAYERS)
def test_layer_input_wrong_rank(name, shape):
    with pytest.raises(ValueError, match=r"^input: expected a 2-D or 3-D tensor"):
        _layer(name)(torch.zeros(shape))


@pytest.mark.parametrize("name", LAYERS)
def test_layer_input_wrong_feature_size(name):
    with pytest.raises(ValueError, match=r"^input: expected last dimension input_size=3"):
        _layer(name)(torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match=r"^input: expected last dimension input_size=3"):
        _layer(name)(torch.zeros(5, 2))  # unbatched


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool], ids=["int64", "bool"])
@pytest.mark.parametrize("name", LAYERS)
def test_layer_input_not_floating(name, dtype):
    with pytest.raises(TypeError, match=r"^input: expected a floating-point tensor"):
        _layer(name)(torch.zeros(5, 2, 3, dtype=dtype))


@pytest.mark.parametrize("name", LAYERS)
def test_layer_input_not_a_tensor(name):
    with pytest.raises(TypeError, match=r"^input: expected a torch.Tensor"):
        _layer(name)([[[0.0, 0.0, 0.0]]])


@pytest.mark.parametrize("name", LAYERS)
def test_layer_input_empty_sequence(name):
    with pytest.raises(ValueError, match=r"^input: expected a sequence length >= 1"):
        _layer(name)(torch.zeros(0, 2, 3))


# --- layers: lengths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lengths",
    [[0, 3], [6, 3], torch.tensor([3, 0]), torch.tensor([3, -1])],
    ids=["zero", "above-T", "tensor-zero", "tensor-negative"],
)
@pytest.mark.parametrize("name", LAYERS)
def test_lengths_out_of_range(name, lengths):
    with pytest.raises(ValueError, match=r"^lengths: expected every length in \[1, 5\]"):
        _layer(name)(torch.zeros(5, 2, 3), lengths=lengths)


@pytest.mark.parametrize("lengths", [[3], [3, 2, 1], torch.tensor([5, 5, 5])], ids=["too-few", "too-many", "tensor"])
@pytest.mark.parametrize("name", LAYERS)
def test_lengths_wrong_count(name, lengths):
    with pytest.raises(ValueError, match=r"^lengths: expected 2 lengths"):
        _layer(name)(torch.zeros(5, 2, 3), lengths=lengths)


@pytest.mark.parametrize("name", LAYERS)
def test_lengths_wrong_count_batch_first(name):
    # with batch_first the batch is dim 0: 4 sequences of 2 steps
    with pytest.raises(ValueError, match=r"^lengths: expected 4 lengths"):
        _layer(name, batch_first=True)(torch.zeros(4, 2, 3), lengths=[2, 2])


@pytest.mark.parametrize("name", LAYERS)
def test_lengths_two_dimensional(name):
    with pytest.raises(ValueError, match=r"^lengths: expected a 1-D tensor"):
        _layer(name)(torch.zeros(5, 2, 3), lengths=torch.tensor([[3, 2]]))


@pytest.mark.parametrize(
    "lengths",
    [torch.tensor([3.0, 2.0]), [3.0, 2.0], [True, True], torch.tensor([True, True]), "32", 3],
    ids=["float-tensor", "float-list", "bool-list", "bool-tensor", "str", "int"],
)
@pytest.mark.parametrize("name", LAYERS)
def test_lengths_not_integers(name, lengths):
    with pytest.raises(TypeError, match=r"^lengths: expected"):
        _layer(name)(torch.zeros(5, 2, 3), lengths=lengths)


@pytest.mark.parametrize("name", LAYERS)
def test_lengths_with_unbatched_input(name):
    with pytest.raises(ValueError, match=r"^lengths: only valid with a batched"):
        _layer(name)(torch.zeros(5, 3), lengths=[5])


@pytest.mark.parametrize("name", LAYERS)
def test_lengths_with_packed_input(name):
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.zeros(5, 2, 3), [5, 3])
    with pytest.raises(ValueError, match=r"^lengths: not allowed with a PackedSequence"):
        _layer(name)(packed, lengths=[5, 3])


# --- layers: initial state ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "shape"),
    [
        ({}, (1, 3, 4)),  # batch 3 instead of 2
        ({}, (2, 2, 4)),  # 2 rows but num_layers * num_directions = 1
        ({"bidirectional": True}, (1, 2, 4)),  # 1 row but 2 directions
        ({"num_layers": 2}, (2, 2, 5)),  # hidden 5 instead of 4
        ({}, (2, 4)),  # 2-D state for a batched input
    ],
    ids=["batch", "rows", "directions", "hidden", "rank"],
)
@pytest.mark.parametrize("name", LAYERS)
def test_hx_wrong_shape(name, kw, shape):
    with pytest.raises(ValueError, match=r"^hx.*: expected shape"):
        _layer(name, **kw)(torch.zeros(5, 2, 3), _state(name, *shape))


@pytest.mark.parametrize("name", LAYERS)
def test_hx_wrong_shape_unbatched(name):
    with pytest.raises(ValueError, match=r"^hx.*: expected shape \(1, 4\)"):
        _layer(name)(torch.zeros(5, 3), _state(name, 1, 1, 4))


def test_lstm_hx_wrong_shapes_name_the_state():
    lstm = _layer("LSTM", proj_size=2)  # h_0 is (1, B, 2), c_0 is (1, B, 4)
    good_h, good_c = torch.zeros(1, 2, 2), torch.zeros(1, 2, 4)
    with pytest.raises(ValueError, match=r"^hx\[0\] \(h_0\): expected shape \(1, 2, 2\)"):
        lstm(torch.zeros(5, 2, 3), (good_c, good_c))
    with pytest.raises(ValueError, match=r"^hx\[1\] \(c_0\): expected shape \(1, 2, 4\)"):
        lstm(torch.zeros(5, 2, 3), (good_h, good_h))


@pytest.mark.parametrize(
    "hx",
    [torch.zeros(1, 2, 4), [torch.zeros(1, 2, 4)], (torch.zeros(1, 2, 4),) * 3],
    ids=["tensor", "one", "three"],
)
def test_lstm_hx_not_a_pair(hx):
    with pytest.raises(TypeError, match=r"^hx: expected a tuple \(h_0, c_0\)"):
        _layer("LSTM")(torch.zeros(5, 2, 3), hx)


@pytest.mark.parametrize("name", ["RNN", "GRU"])
def test_hx_not_a_tensor(name):
    with pytest.raises(TypeError, match=r"^hx: expected a torch.Tensor"):
        _layer(name)(torch.zeros(5, 2, 3), [[[0.0] * 4] * 2])


@pytest.mark.parametrize("name", LAYERS)
def test_hx_dtype_mismatch(name):
    with pytest.raises(TypeError, match=r"^hx.*: expected dtype torch.float32"):
        _layer(name)(torch.zeros(5, 2, 3), _state(name, 1, 2, 4, dtype=torch.float64))


def test_lstm_cx_dtype_mismatch():
    with pytest.raises(TypeError, match=r"^hx\[1\] \(c_0\): expected dtype torch.float32"):
        _layer("LSTM")(torch.zeros(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4, dtype=torch.float64)))


# --- layers: constructor ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "arg"),
    [
        ({"hidden_size": 0}, "hidden_size"),
        ({"hidden_size": 2.0}, "hidden_size"),
        ({"input_size": 0}, "input_size"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_layers": True}, "num_layers"),
        ({"dropout": 1.5}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": True}, "dropout"),
    ],
    ids=[
        "hidden-0",
        "hidden-float",
        "input-0",
        "layers-0",
        "layers-bool",
        "dropout-1.5",
        "dropout-neg",
        "dropout-bool",
    ],
)
@pytest.mark.parametrize("name", LAYERS)
def test_layer_bad_constructor_args(name, kw, arg):
    args = {"input_size": 3, "hidden_size": 4, **kw}
    with pytest.raises(ValueError, match=rf"^{arg}: expected"):
        getattr(ann, name)(**args)


@pytest.mark.parametrize("nonlinearity", ["sigmoid", "Tanh", None])
def test_rnn_bad_nonlinearity(nonlinearity):
    with pytest.raises(ValueError, match=r"^nonlinearity: expected 'tanh' or 'relu'"):
        ann.RNN(3, 4, nonlinearity=nonlinearity)


@pytest.mark.parametrize("proj_size", [4, 5, -1, 1.0])
def test_lstm_bad_proj_size(proj_size):
    with pytest.raises(ValueError, match=r"^proj_size: expected"):
        ann.LSTM(3, 4, proj_size=proj_size)


# --- cells ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 1, 3), ()], ids=["3-D", "0-D"])
@pytest.mark.parametrize("name", CELLS)
def test_cell_input_wrong_rank(name, shape):
    with pytest.raises(ValueError, match=r"^input: expected a 1-D or 2-D tensor"):
        _layer(name)(torch.zeros(shape))


@pytest.mark.parametrize("name", CELLS)
def test_cell_input_wrong_feature_size(name):
    with pytest.raises(ValueError, match=r"^input: expected last dimension input_size=3"):
        _layer(name)(torch.zeros(2, 5))


@pytest.mark.parametrize("name", CELLS)
def test_cell_input_not_floating(name):
    with pytest.raises(TypeError, match=r"^input: expected a floating-point tensor"):
        _layer(name)(torch.zeros(2, 3, dtype=torch.int32))


@pytest.mark.parametrize(
    ("batch", "shape"), [(2, (3, 4)), (2, (2, 5)), (None, (1, 4))], ids=["batch", "hidden", "unbatched"]
)
@pytest.mark.parametrize("name", CELLS)
def test_cell_hx_wrong_shape(name, batch, shape):
    x = torch.zeros(3) if batch is None else torch.zeros(batch, 3)
    with pytest.raises(ValueError, match=r"^hx: expected shape"):
        _layer(name)(x, _state(name, *shape))


def test_lstm_cell_cx_wrong_shape():
    with pytest.raises(ValueError, match=r"^cx: expected shape \(2, 4\)"):
        _layer("LSTMCell")(torch.zeros(2, 3), (torch.zeros(2, 4), torch.zeros(2, 5)))


@pytest.mark.parametrize("hx", [torch.zeros(2, 4), (torch.zeros(2, 4),)], ids=["tensor", "one"])
def test_lstm_cell_hx_not_a_pair(hx):
    with pytest.raises(TypeError, match=r"^hx: expected a tuple \(h, c\)"):
        _layer("LSTMCell")(torch.zeros(2, 3), hx)


@pytest.mark.parametrize("name", CELLS)
def test_cell_hx_dtype_mismatch(name):
    with pytest.raises(TypeError, match=r"^hx: expected dtype torch.float32"):
        _layer(name)(torch.zeros(2, 3), _state(name, 2, 4, dtype=torch.float64))


@pytest.mark.parametrize(
    ("kw", "arg"),
    [({"hidden_size": 0}, "hidden_size"), ({"input_size": -1}, "input_size"), ({"hidden_size": 2.5}, "hidden_size")],
    ids=["hidden-0", "input-neg", "hidden-float"],
)
@pytest.mark.parametrize("name", CELLS)
def test_cell_bad_constructor_args(name, kw, arg):
    with pytest.raises(ValueError, match=rf"^{arg}: expected"):
        getattr(ann, name)(**{"input_size": 3, "hidden_size": 4, **kw})


def test_rnn_cell_bad_nonlinearity():
    with pytest.raises(ValueError, match=r"^nonlinearity: expected 'tanh' or 'relu'"):
        ann.RNNCell(3, 4, nonlinearity="sigmoid")


def test_lstm_backward_names_the_two_spellings():
    """One spelling of "hand-derived backward" across attnlab: backward="manual" | "autograd"."""
    from attnlab.nn import LSTM

    assert LSTM(3, 4).backward == "manual" and LSTM(3, 4, backward="autograd").backward == "autograd"
    with pytest.raises(ValueError, match=r"^backward: expected one of \('autograd', 'manual'\), got 'hand'"):
        LSTM(3, 4, backward="hand")
    m = LSTM(3, 4)
    with pytest.raises(ValueError, match=r"^backward: expected one of"):
        m.backward = True
