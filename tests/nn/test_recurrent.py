"""RNN, LSTM, GRU layers against torch.nn's (packed sequences for lengths), and their properties.

The comparisons with torch run on every device of the ``device`` fixture (the CPU, and CUDA where present: there
the oracle is cuDNN); gradcheck and the hypothesis properties run on the CPU in float64.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rnn_reference import F64, check_against_torch, layer_inputs, randn, twins
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence

import attnlab.nn as ann

# (class name, extra constructor kwargs), the hidden size is 7 in every test that uses these.
KINDS = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu"}),
    ("LSTM", {}),
    ("LSTM", {"proj_size": 3}),
    ("GRU", {}),
]
KIND_IDS = ["rnn-tanh", "rnn-relu", "lstm", "lstm-proj", "gru"]
kinds = pytest.mark.parametrize(("name", "kw"), KINDS, ids=KIND_IDS)
bidir = pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
batch_first = pytest.mark.parametrize("batch_first", [False, True], ids=["TBI", "BTI"])

# torch's own LSTM with proj_size says it leaves oneDNN for its default kernel: nothing about ours.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)


# --- against torch, forward and backward --------------------------------------------------------------


@batch_first
@bidir
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@kinds
def test_layer_matches_torch_float32(name, kw, num_layers, bidirectional, batch_first, device):
    cfg = {"num_layers": num_layers, "bidirectional": bidirectional, "batch_first": batch_first}
    theirs, ours = twins(name, 5, 7, device=device, **cfg, **kw)
    check_against_torch(theirs, ours, *layer_inputs(theirs, T=6, B=3))


@pytest.mark.parametrize("lengths", [None, [6, 2, 4]], ids=["full", "lengths"])
@bidir
@kinds
def test_layer_without_bias_matches_torch(name, kw, bidirectional, lengths, device):
    theirs, ours = twins(name, 5, 7, num_layers=2, bidirectional=bidirectional, bias=False, device=device, **kw)
    check_against_torch(theirs, ours, *layer_inputs(theirs, T=6, B=3), lengths=lengths)


@pytest.mark.parametrize("with_hx", [True, False], ids=["hx", "no-hx"])
@bidir
@kinds
def test_layer_matches_torch_float64(name, kw, bidirectional, with_hx, device):
    theirs, ours = twins(
        name, 4, 7, num_layers=2, bidirectional=bidirectional, dtype=torch.float64, device=device, **kw
    )
    check_against_torch(theirs, ours, *layer_inputs(theirs, T=9, B=4, with_hx=with_hx), tol=F64)


@pytest.mark.parametrize(("T", "B"), [(1, 3), (4, 1), (1, 1)], ids=["T1", "B1", "T1-B1"])
@bidir
@kinds
def test_layer_short_sequence_and_single_batch(name, kw, bidirectional, T, B, device):
    theirs, ours = twins(name, 3, 7, num_layers=2, bidirectional=bidirectional, device=device, **kw)
    check_against_torch(theirs, ours, *layer_inputs(theirs, T=T, B=B))


@pytest.mark.parametrize("with_hx", [True, False], ids=["hx", "no-hx"])
@bidir
@kinds
def test_layer_unbatched_input(name, kw, bidirectional, with_hx, device):
    theirs, ours = twins(name, 3, 7, num_layers=2, bidirectional=bidirectional, device=device, **kw)
    check_against_torch(theirs, ours, *layer_inputs(theirs, T=5, B=None, with_hx=with_hx))


@pytest.mark.parametrize(
    ("name", "I", "H", "kw", "T", "B"),
    [
        ("RNN", 1, 1, {}, 3, 2),
        ("LSTM", 1, 1, {}, 3, 2),
        ("GRU", 1, 1, {}, 3, 2),
        ("LSTM", 2, 2, {"proj_size": 1}, 4, 3),
        ("RNN", 17, 13, {"nonlinearity": "relu"}, 23, 5),
        ("LSTM", 17, 13, {"proj_size": 5}, 23, 5),
        ("GRU", 11, 19, {}, 29, 2),
    ],
    ids=["rnn-1x1", "lstm-1x1", "gru-1x1", "lstm-proj1", "rnn-17x13", "lstm-17x13-proj5", "gru-11x19"],
)
def test_layer_odd_shapes(name, I, H, kw, T, B, device):
    theirs, ours = twins(name, I, H, num_layers=2, bidirectional=True, device=device, **kw)
    check_against_torch(theirs, ours, *layer_inputs(theirs, T=T, B=B))


# --- lengths against torch's packed sequences ---------------------------------------------------------

LENGTHS = [
    ([5, 1, 3], 5, False),  # unsorted, a length of 1, max = T
    ([3, 2, 1], 6, True),  # sorted, max < T: the padded tail of every sequence is zero
    ([1], 4, False),  # batch of one, length 1
    ([4, 4], 4, True),  # all full: the same as no lengths
    ([2, 7, 1, 3], 8, True),  # unsorted, max < T
]
LENGTH_IDS = ["unsorted", "max-lt-T-BTI", "B1-len1", "full-BTI", "unsorted-max-lt-T-BTI"]


@pytest.mark.parametrize(("lengths", "T", "batch_first"), LENGTHS, ids=LENGTH_IDS)
@bidir
@kinds
def test_lengths_match_packed_torch(name, kw, bidirectional, lengths, T, batch_first, device):
    cfg = {"num_layers": 2, "bidirectional": bidirectional, "batch_first": batch_first}
    theirs, ours = twins(name, 3, 7, device=device, **cfg, **kw)
    x, hx = layer_inputs(theirs, T=T, B=len(lengths))
    check_against_torch(theirs, ours, x, hx, lengths=lengths)


@pytest.mark.parametrize(
    "as_type",
    [list, tuple, torch.tensor, lambda v: torch.tensor(v, dtype=torch.int32)],
    ids=["list", "tuple", "int64", "int32"],
)
def test_lengths_types_match_packed_torch(as_type, device):
    theirs, ours = twins("LSTM", 3, 7, bidirectional=True, device=device)
    x, hx = layer_inputs(theirs, T=6, B=4)
    check_against_torch(theirs, ours, x, hx, lengths=as_type([2, 6, 1, 4]))


@pytest.mark.parametrize("with_hx", [True, False], ids=["hx", "no-hx"])
@bidir
@kinds
def test_lengths_match_packed_torch_float64(name, kw, bidirectional, with_hx, device):
    theirs, ours = twins(
        name, 3, 7, num_layers=2, bidirectional=bidirectional, dtype=torch.float64, device=device, **kw
    )
    x, hx = layer_inputs(theirs, T=7, B=5, with_hx=with_hx)
    check_against_torch(theirs, ours, x, hx, lengths=[4, 7, 1, 2, 6], tol=F64)


@batch_first
@bidir
@kinds
def test_packed_sequence_input(name, kw, bidirectional, batch_first, device):
    cfg = {"num_layers": 2, "bidirectional": bidirectional, "batch_first": batch_first}
    theirs, ours = twins(name, 3, 7, device=device, **cfg, **kw)
    x, hx = layer_inputs(theirs, T=5, B=4)
    check_against_torch(theirs, ours, x, hx, lengths=[3, 5, 1, 4], packed=True)


@kinds
def test_packed_sequence_enforce_sorted(name, kw, device):
    # A PackedSequence made with enforce_sorted=True has sorted_indices None; the output keeps that.
    theirs, ours = twins(name, 3, 7, bidirectional=True, device=device, **kw)
    x, hx = layer_inputs(theirs, T=5, B=3)
    packed = pack_padded_sequence(x, [5, 3, 2], enforce_sorted=True)
    out_t, state_t = theirs(packed, hx)
    out_o, state_o = ours(packed, hx)
    assert out_o.sorted_indices is None and out_o.unsorted_indices is None
    assert torch.equal(out_o.batch_sizes, out_t.batch_sizes)
    torch.testing.assert_close(out_o.data, out_t.data)
    torch.testing.assert_close(state_o, state_t)


@pytest.mark.parametrize(("lengths", "T"), [(None, 5), ([3, 5, 1, 4], 6)], ids=["full", "lengths"])
@bidir
def test_lstm_autograd_loop_matches_torch(bidirectional, lengths, T, device):
    # The LSTM's plain autograd loop (backward="autograd", kept for double backward) is a twin too.
    theirs, ours = twins("LSTM", 3, 7, num_layers=2, bidirectional=bidirectional, device=device)
    ours.backward = "autograd"
    check_against_torch(theirs, ours, *layer_inputs(theirs, T=T, B=4), lengths=lengths)


@kinds
def test_full_lengths_equal_no_lengths(name, kw):
    _, ours = twins(name, 3, 7, num_layers=2, bidirectional=True, **kw)
    x, hx = layer_inputs(ours, T=4, B=3)
    torch.testing.assert_close(ours(x, hx, lengths=[4, 4, 4]), ours(x, hx), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_lengths_gradcheck(name):
    # gradcheck through the masked loop (input, initial state and every parameter), bidirectional.
    torch.manual_seed(0)
    layer = getattr(ann, name)(2, 3, bidirectional=True, dtype=torch.float64)
    x, hx = layer_inputs(layer, T=4, B=3)
    states = list(hx) if isinstance(hx, tuple) else [hx]
    names = [n for n, _ in layer.named_parameters()]
    n_states = len(states)

    def f(x, *rest):
        states, params = rest[:n_states], rest[n_states:]
        hx = tuple(states) if name == "LSTM" else states[0]
        out, h = functional_call(layer, dict(zip(names, params, strict=True)), (x, hx), {"lengths": [3, 1, 4]})
        return (out, *h) if name == "LSTM" else (out, h)

    leaves = [t.detach().clone().requires_grad_(True) for t in (x, *states, *layer.parameters())]
    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-7, rtol=1e-5)


# --- dropout ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lengths", [None, [4, 2, 5]], ids=["full", "lengths"])
@bidir
@kinds
def test_dropout_one_in_train_mode_matches_torch(name, kw, bidirectional, lengths, device):
    # p = 1 zeroes whatever reaches layers 2 and 3 in both implementations: no randomness left to differ.
    theirs, ours = twins(name, 3, 7, num_layers=3, dropout=1.0, bidirectional=bidirectional, device=device, **kw)
    assert theirs.training and ours.training
    x, hx = layer_inputs(theirs, T=5, B=3)
    check_against_torch(theirs, ours, x, hx, lengths=lengths)


@kinds
def test_dropout_one_zeroes_upper_layer_input(name, kw):
    # Above layer 1 the input is all zero, so layer 2's output equals that of a one-layer twin fed zeros.
    _, ours = twins(name, 3, 7, num_layers=2, dropout=1.0, **kw)
    x, hx = layer_inputs(ours, T=5, B=3)
    out, _ = ours(x, hx)
    top = getattr(ann, name)(ours.weight_ih_l1.shape[1], 7, **kw)
    top.load_state_dict({k.replace("_l1", "_l0"): v for k, v in ours.state_dict().items() if "_l1" in k})
    h1 = hx[0][1:2] if isinstance(hx, tuple) else hx[1:2]
    state = (h1, hx[1][1:2]) if isinstance(hx, tuple) else h1
    zeros = torch.zeros(5, 3, ours.weight_ih_l1.shape[1])
    torch.testing.assert_close(out, top(zeros, state)[0], rtol=0, atol=0)


@pytest.mark.parametrize("lengths", [None, [4, 2, 5]], ids=["full", "lengths"])
@kinds
def test_dropout_has_no_effect_in_eval_mode(name, kw, lengths, device):
    theirs, ours = twins(name, 3, 7, num_layers=3, dropout=0.5, bidirectional=True, device=device, **kw)
    theirs.eval()
    ours.eval()
    x, hx = layer_inputs(theirs, T=5, B=3)
    check_against_torch(theirs, ours, x, hx, lengths=lengths)
    no_dropout = getattr(ann, name)(3, 7, num_layers=3, bidirectional=True, device=device, **kw)
    no_dropout.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(x, hx), no_dropout(x, hx), rtol=0, atol=0)


@kinds
def test_dropout_applies_in_train_mode(name, kw):
    # p = 0.5 between layers in train mode: the output changes from the eval one, and from draw to draw.
    _, ours = twins(name, 3, 7, num_layers=2, dropout=0.5, **kw)
    x, hx = layer_inputs(ours, T=5, B=3)
    torch.manual_seed(1)
    train_a, _ = ours(x, hx)
    train_b, _ = ours(x, hx)
    ours.eval()
    evaluated, _ = ours(x, hx)
    assert (train_a - evaluated).abs().max() > 1e-3
    assert (train_a - train_b).abs().max() > 1e-3


@kinds
def test_dropout_with_one_layer_warns_like_torch(name, kw):
    with pytest.warns(UserWarning, match="dropout"):
        nn_cls = getattr(nn, name)(3, 7, num_layers=1, dropout=0.5, **kw)
    with pytest.warns(UserWarning, match="dropout"):
        ours = getattr(ann, name)(3, 7, num_layers=1, dropout=0.5, **kw)
    ours.load_state_dict(nn_cls.state_dict())
    # ... and indeed has no effect: train mode equals eval mode.
    x, hx = layer_inputs(ours, T=4, B=2)
    train_out = ours(x, hx)
    ours.eval()
    torch.testing.assert_close(train_out, ours(x, hx), rtol=0, atol=0)


# --- state_dict ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@bidir
@pytest.mark.parametrize("num_layers", [1, 3])
@kinds
def test_state_dict_matches_torch(name, kw, num_layers, bidirectional, bias):
    cfg = {"num_layers": num_layers, "bidirectional": bidirectional, "bias": bias, **kw}
    torch.manual_seed(0)
    theirs = getattr(nn, name)(4, 7, **cfg)
    ours = getattr(ann, name)(4, 7, **cfg)
    sd_t, sd_o = theirs.state_dict(), ours.state_dict()
    assert list(sd_o) == list(sd_t)
    assert [v.shape for v in sd_o.values()] == [v.shape for v in sd_t.values()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [[w.shape for w in ws] for ws in ours.all_weights] == [[w.shape for w in ws] for ws in theirs.all_weights]
    x, hx = layer_inputs(ours, T=3, B=2)
    # ours -> torch: torch then computes what ours computes
    theirs.load_state_dict(sd_o)
    torch.testing.assert_close(ours(x, hx), theirs(x, hx))
    # torch -> ours, from a freshly initialised torch module
    fresh = getattr(nn, name)(4, 7, **cfg)
    ours.load_state_dict(fresh.state_dict())
    torch.testing.assert_close(ours(x, hx), fresh(x, hx))


@kinds
def test_init_range_and_dtype(name, kw):
    torch.manual_seed(0)
    layer = getattr(ann, name)(4, 9, num_layers=2, bidirectional=True, dtype=torch.float64, **kw)
    bound = 1 / math.sqrt(9)
    for n, p in layer.named_parameters():
        assert p.dtype == torch.float64, n
        assert p.abs().max().item() <= bound, n
        assert p.std().item() > bound / 4, n


# --- properties (hypothesis) --------------------------------------------------------------------------


@st.composite
def layer_cases(draw):
    """A kind, sizes, a batch of lengths in [1, T] and a seed."""
    name = draw(st.sampled_from(["RNN", "LSTM", "GRU"]))
    H = draw(st.integers(1, 5))
    kw = {}
    if name == "RNN":
        kw["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    if name == "LSTM" and H > 1:
        kw["proj_size"] = draw(st.integers(0, H - 1))
    T = draw(st.integers(1, 6))
    lengths = draw(st.lists(st.integers(1, T), min_size=1, max_size=4))
    return name, draw(st.integers(1, 4)), H, kw, T, lengths, draw(st.integers(0, 2**16))


def _state_rows(hx, rows):
    """The rows ``rows`` (a slice) of h_0, or of both h_0 and c_0."""
    return tuple(s[rows] for s in hx) if isinstance(hx, tuple) else hx[rows]


@SETTINGS
@given(layer_cases(), st.booleans())
def test_reverse_direction_is_forward_on_flipped_input(case, batch_first):
    name, I, H, kw, T, lengths = case[:6]
    bi, uni = (
        getattr(ann, name)(I, H, bidirectional=True, batch_first=batch_first, dtype=torch.float64, **kw),
        getattr(ann, name)(I, H, batch_first=batch_first, dtype=torch.float64, **kw),
    )
    torch.manual_seed(case[6])
    bi.reset_parameters()
    uni.load_state_dict({k.replace("_reverse", ""): v for k, v in bi.state_dict().items() if "_reverse" in k})
    x, hx = layer_inputs(bi, T=T, B=len(lengths), seed=case[6])
    t_dim = 1 if batch_first else 0
    # flip the first len_b steps of each sequence b; the padding stays where it is
    x_flip = x.clone()
    for b, n in enumerate(lengths):
        idx = (b, slice(None, n)) if batch_first else (slice(None, n), b)
        x_flip[idx] = x[idx].flip(0)
    out_bi, h_bi = bi(x, hx, lengths=lengths)
    out_uni, h_uni = uni(x_flip, _state_rows(hx, slice(1, 2)), lengths=lengths)
    H_out = kw.get("proj_size") or H
    rev = out_bi[..., H_out:]
    for b, n in enumerate(lengths):
        idx = (b, slice(None, n)) if batch_first else (slice(None, n), b)
        torch.testing.assert_close(rev[idx], out_uni[idx].flip(0), **F64)
        pad = (b, slice(n, None)) if batch_first else (slice(n, None), b)
        assert not rev[pad].any() and not out_uni[pad].any()
    assert out_bi.shape[t_dim] == T
    torch.testing.assert_close(_state_rows(h_bi, slice(1, 2)), h_uni, **F64)


@SETTINGS
@given(layer_cases(), st.integers(1, 2), st.booleans())
def test_batched_with_lengths_equals_one_by_one(case, num_layers, bidirectional):
    name, I, H, kw, T, lengths, seed = case
    torch.manual_seed(seed)
    layer = getattr(ann, name)(I, H, num_layers=num_layers, bidirectional=bidirectional, dtype=torch.float64, **kw)
    x, hx = layer_inputs(layer, T=T, B=len(lengths), seed=seed)
    out, h_n = layer(x, hx, lengths=lengths)  # (T, B, D*H_out), (D*L, B, ·)
    for b, n in enumerate(lengths):
        # sequence b alone, unpadded, as a batch of one
        out_b, h_b = layer(x[:n, b : b + 1], _state_rows(hx, (slice(None), slice(b, b + 1))))
        torch.testing.assert_close(out[:n, b : b + 1], out_b, **F64)
        assert not out[n:, b].any()
        torch.testing.assert_close(_state_rows(h_n, (slice(None), slice(b, b + 1))), h_b, **F64)


@SETTINGS
@given(layer_cases())
def test_lengths_match_packed_torch_property(case):
    # The same oracle comparison as above over drawn kinds, sizes and lengths, float64.
    name, I, H, kw, T, lengths, seed = case
    theirs, ours = twins(name, I, H, num_layers=2, bidirectional=True, dtype=torch.float64, seed=seed, **kw)
    x, hx = layer_inputs(theirs, T=T, B=len(lengths), seed=seed)
    check_against_torch(theirs, ours, x, hx, lengths=lengths, tol=F64, seed=seed)


def test_output_keeps_input_length_past_max_lengths():
    _, ours = twins("GRU", 2, 3, batch_first=True)
    x = randn(2, 6, 2)
    out, _ = ours(x, lengths=[2, 3])
    assert out.shape == (2, 6, 3)
    assert not out[0, 2:].any() and not out[1, 3:].any()
    assert out[0, :2].abs().min() > 0 and out[1, :3].abs().min() > 0
