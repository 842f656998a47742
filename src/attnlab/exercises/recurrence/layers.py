"""Exercises 3.1 ``rnn_layer`` (a tanh RNN over padded sequences with ``lengths``) and ``clip_grad_norm``: checked
against ``torch.nn.RNN`` on packed sequences and ``torch.nn.utils.clip_grad_norm_``."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnlab.exercises.engine import Check, Exercise
from attnlab.exercises.recurrence import layer_mistakes as lm
from attnlab.exercises.trial import Trial
from attnlab.nn import loop
from attnlab.nn.recurrent import RNN


def rnn_layer(x, lengths, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """The library's RNN (batch first) with ``lengths``, on these weights."""
    with torch.device("meta"):
        layer = RNN(x.shape[-1], h0.shape[-1], batch_first=True)
    params = {"weight_ih_l0": weight_ih, "weight_hh_l0": weight_hh, "bias_ih_l0": bias_ih, "bias_hh_l0": bias_hh}
    out, h_n = torch.func.functional_call(layer, params, (x, h0.unsqueeze(0)), {"lengths": lengths})
    return out, h_n[0]  # (B, T, H), (B, H)


def clip_grad_norm(grads, max_norm):
    """torch's rule (clip_grad_norm_ with the 2-norm): scale every gradient by min(1, max_norm / (norm + 1e-6))."""
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))  # sqrt(sum ||g||^2)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * coef for g in grads], total


# --- rnn_layer checks ------------------------------------------------------------------------------------------


def _twin(t: Trial, I: int, H: int, dtype=torch.float32) -> nn.RNN:
    with t.seeded():
        return nn.RNN(I, H, batch_first=True, dtype=dtype)


def _weights(m: nn.RNN, grad: bool = False) -> list[Tensor]:
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    return [getattr(m, n).detach().clone().requires_grad_(grad) for n in names]


def _lengths(t: Trial, B: int, T: int) -> Tensor:
    lengths = t.randint(1, T + 1, B)
    lengths[0], lengths[-1] = T, 1  # always a full and a length-1 sequence
    return lengths


def _layer(t: Trial, m: nn.RNN, x: Tensor, lengths: Tensor, h0: Tensor, grad: bool = False) -> tuple[Tensor, Tensor]:
    out, h_n = t.parts(t.call(x, lengths, h0, *_weights(m, grad)), 2, "the result (output, h_n)")
    B, T, _ = x.shape
    t.tensor(out, (B, T, m.hidden_size), x.dtype, "output")
    t.tensor(h_n, (B, m.hidden_size), x.dtype, "h_n")
    return out, h_n


def _packed(m: nn.RNN, x: Tensor, lengths: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
    """The oracle: torch's RNN on the packed batch, padded back to T steps (zeros after each length)."""
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h_n = m(packed, h0.unsqueeze(0))
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], h_n[0]


def _compare(t: Trial, B: int, T: int, I: int, H: int, full: bool = False, dtype=torch.float32) -> None:
    m = _twin(t, I, H, dtype)
    x, h0 = t.randn(B, T, I, dtype=dtype), t.randn(B, H, dtype=dtype)
    lengths = torch.full((B,), T) if full else _lengths(t, B, T)
    out, h_n = _layer(t, m, x, lengths, h0)
    want_out, want_h = _packed(m, x, lengths, h0)
    where = f"lengths {lengths.tolist()}"
    t.close(out, want_out.detach(), f"output ({where}; zeros after each length)")
    t.close(h_n, want_h.detach(), f"h_n ({where}; the state at each sequence's last valid step)")


def _padding_ignored(t: Trial) -> None:
    m = _twin(t, 3, 5)
    x, h0, lengths = t.randn(4, 6, 3), t.randn(4, 5), _lengths(t, 4, 6)
    out, h_n = _layer(t, m, x, lengths, h0)
    x2 = x.clone()
    pad = torch.arange(6) >= lengths.unsqueeze(1)  # (B, T): True at padded steps
    x2[pad] = t.randn(int(pad.sum()), 3, scale=5.0)
    out2, h_n2 = _layer(t, m, x2, lengths, h0)
    t.close(out2, out, f"output after changing the padded inputs (lengths {lengths.tolist()})")
    t.close(h_n2, h_n, "h_n after changing the padded inputs")


def _gradients(t: Trial) -> None:
    m = _twin(t, 3, 4)
    x, h0 = t.randn(3, 5, 3).requires_grad_(), t.randn(3, 4).requires_grad_()
    lengths = _lengths(t, 3, 5)
    out, h_n = _layer(t, m, x, lengths, h0, grad=True)
    cots = [t.randn(*out.shape), t.randn(*h_n.shape)]
    got = t.grad([out, h_n], [t.args[0], t.args[2], *t.args[3:]], cots)
    want = torch.autograd.grad(list(_packed(m, x, lengths, h0)), [x, h0, *_weights_of(m)], cots)
    for name, g, w in zip(("x", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh"), got, want, strict=True):
        t.close(g, w, f"gradient of {name} (lengths {lengths.tolist()})")


def _weights_of(m: nn.RNN) -> list[Tensor]:
    return [m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0]


def _one_by_one(t: Trial) -> None:
    m = _twin(t, 3, 4)
    x, h0, lengths = t.randn(3, 6, 3), t.randn(3, 4), _lengths(t, 3, 6)
    out, h_n = _layer(t, m, x, lengths, h0)
    for b in range(3):
        n = int(lengths[b])
        one, h_one = _layer(t, m, x[b : b + 1, :n], lengths[b : b + 1], h0[b : b + 1])
        t.close(one[0], out[b, :n], f"sequence {b} (length {n}) alone against its rows of the batch")
        t.close(h_one[0], h_n[b], f"h_n of sequence {b} alone against the batch's")


LAYER = Exercise(
    name="rnn_layer",
    section="3.1",
    title="A tanh RNN layer over padded sequences with lengths",
    task=(
        "Run a tanh RNN over a batch of padded sequences (batch first). Sequence b is valid for its first "
        "lengths[b] steps: after that its state must stay unchanged, its outputs must be zero, and h_n is its "
        "state at its last valid step (what torch gives on a packed sequence)."
    ),
    equation=(
        "h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) for t < length, h_t = h_{t-1} after; "
        "out_t = h_t * [t < length]"
    ),
    shapes="x (B, T, I); lengths (B,) int64 in [1, T]; h0 (B, H); weights as torch.nn.RNNCell's",
    returns="a tuple (output (B, T, H), h_n (B, H))",
    reference=rnn_layer,
    solution=(rnn_layer, loop.run_direction, loop.TimeMasks),
    checks=(
        Check(
            "shape and dtype",
            "B=3, T=5, I=4, H=6",
            "",
            lambda t: _layer(t, _twin(t, 4, 6), t.randn(3, 5, 4), _lengths(t, 3, 5), t.randn(3, 6)),
        ),
        Check("full lengths", "every sequence T long: torch.nn.RNN", "", lambda t: _compare(t, 3, 6, 4, 5, full=True)),
        Check(
            "variable lengths",
            "torch.nn.RNN on the packed sequences (lengths 1..T)",
            "",
            lambda t: _compare(t, 4, 7, 3, 5),
        ),
        Check("padding ignored", "changing the padded inputs changes nothing", "", _padding_ignored),
        Check("gradients", "input, h0 and weight gradients against torch on packed sequences", "", _gradients),
        Check("batched = one by one", "each sequence alone, cut to its length, gives its rows", "", _one_by_one),
        Check(
            "odd shapes",
            "batch 1, T = 1, hidden size 59; float64",
            "",
            lambda t: (_compare(t, 1, 1, 2, 59), _compare(t, 2, 3, 2, 3, dtype=torch.float64)),
        ),
    ),
    mistakes=lm.LAYER_MISTAKES,
    forbidden=("torch.nn.RNN", "torch.rnn_tanh"),
)


# --- clip_grad_norm checks -------------------------------------------------------------------------------------


def _clip(t: Trial, grads: list[Tensor], max_norm: float) -> tuple[list[Tensor], Tensor]:
    clipped, norm = t.parts(t.call(grads, max_norm), 2, "the result (clipped gradients, total norm)")
    t.expect(isinstance(clipped, (list, tuple)) and len(clipped) == len(grads), f"expected {len(grads)} gradients back")
    for i, (c, g) in enumerate(zip(clipped, grads, strict=True)):
        t.tensor(c, g.shape, g.dtype, f"gradient {i}")
    t.tensor(norm, (), grads[0].dtype, "the total norm")
    return list(clipped), norm


def _torch_clip(grads: list[Tensor], max_norm: float) -> tuple[list[Tensor], Tensor]:
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params], norm


def _grads(t: Trial, scale: float, dtype=torch.float32) -> list[Tensor]:
    return [
        t.randn(4, 3, dtype=dtype, scale=scale),
        t.randn(5, dtype=dtype, scale=scale),
        t.randn(2, 2, 2, dtype=dtype, scale=scale),
    ]


def _clip_case(t: Trial, scale: float, max_norm: float, what: str, dtype=torch.float32) -> None:
    grads = _grads(t, scale, dtype)
    got, norm = _clip(t, grads, max_norm)
    want, want_norm = _torch_clip(grads, max_norm)
    t.close(norm, want_norm, f"the total norm returned ({what}; before clipping)")
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        t.close(g, w, f"gradient {i} ({what}) against torch.nn.utils.clip_grad_norm_")


def _clip_direction(t: Trial) -> None:
    grads = _grads(t, 3.0)
    got, _ = _clip(t, grads, 0.5)
    flat, flat_in = torch.cat([g.flatten() for g in got]), torch.cat([g.flatten() for g in grads])
    ratio = flat / flat_in
    t.close(
        ratio, ratio[:1].expand_as(ratio), "clipped / original for every entry (one common factor keeps the direction)"
    )
    t.close(flat.norm(), torch.tensor(0.5), "the norm after clipping (max_norm = 0.5)", rtol=1e-4, atol=1e-5)


CLIP = Exercise(
    name="clip_grad_norm",
    section="3.1",
    title="Gradient clipping by the global norm",
    task=(
        "Exploding gradients are tamed by clipping: compute the global 2-norm of all the gradients together; when "
        "it exceeds max_norm, scale every gradient by max_norm / (norm + 1e-6); otherwise leave them. Return the "
        "clipped gradients and the norm before clipping, as torch.nn.utils.clip_grad_norm_ does."
    ),
    equation="n = sqrt(sum_i ||g_i||^2);  g_i <- g_i * min(1, max_norm / (n + 1e-6))",
    shapes="grads: a list of tensors of any shapes; max_norm: float; returns (list of tensors, 0-dim tensor)",
    returns="a tuple (clipped gradients, total norm)",
    reference=clip_grad_norm,
    solution=(clip_grad_norm,),
    checks=(
        Check("shape and dtype", "three gradients back, and a 0-dim norm", "", lambda t: _clip(t, _grads(t, 1.0), 1.0)),
        Check(
            "above max_norm", "a norm of ~10 clipped to 1", "", lambda t: _clip_case(t, 3.0, 1.0, "norm above max_norm")
        ),
        Check(
            "below max_norm",
            "a norm of ~0.3 left alone (max_norm 5)",
            "",
            lambda t: _clip_case(t, 0.1, 5.0, "norm below max_norm"),
        ),
        Check("direction kept", "one common factor for every entry; the new norm is max_norm", "", _clip_direction),
        Check(
            "float64", "dtype follows the gradients", "", lambda t: _clip_case(t, 2.0, 1.5, "float64", torch.float64)
        ),
    ),
    mistakes=lm.CLIP_MISTAKES,
    forbidden=(
        "torch.nn.utils.clip_grad_norm_",
        "torch.nn.utils.clip_grad_norm",
        "torch.nn.utils.clip_grads_with_norm_",
    ),
)

EXERCISES = (LAYER, CLIP)
