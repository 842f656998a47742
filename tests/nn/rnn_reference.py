"""The one oracle check for the recurrent twins, in the habit of tinygrad's ``helper_test_op``.

:func:`check_against_torch` runs a ``torch.nn`` module and our twin (weights copied) on the same input,
initial state and lengths, compares every output, then backpropagates the same random upstream gradients
through both and compares the gradients of the input, of the initial state and of every parameter by name.
With ``lengths`` the oracle is torch on ``pack_padded_sequence(..., enforce_sorted=False)`` read back with
``pad_packed_sequence(..., total_length=T)``; with ``packed=True`` both modules get the PackedSequence.

Devices: :func:`twins` initialises both modules on the CPU (the same numbers on every device) and moves them to
``device``; the inputs follow the module's device, drawn from CPU generators and moved. On CUDA the oracle is
torch's module on the same device (cuDNN), compared at the same tolerances (the ``device`` fixture turns TF32 off).

Shapes (torch's legend): T time, B batch, I input size, H hidden size, P proj size, D directions, L layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import attnlab.nn as ann

# float64: both sides do the same math in (nearly) the same order; the differences are a few ulps.
F64 = {"rtol": 1e-12, "atol": 1e-13}


def twins(
    name: str, *args, seed: int = 0, dtype: torch.dtype = torch.float32, device: str = "cpu", **kwargs
) -> tuple[nn.Module, nn.Module]:
    """``torch.nn.<name>`` initialised from ``seed`` and ``attnlab.nn.<name>`` loaded from its state_dict, both
    initialised on the CPU and then moved to ``device``."""
    torch.manual_seed(seed)
    theirs = getattr(nn, name)(*args, dtype=dtype, **kwargs)
    ours = getattr(ann, name)(*args, dtype=dtype, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    return theirs.to(device), ours.to(device)


def randn(*shape: int, dtype: torch.dtype = torch.float32, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def layer_inputs(
    mod: nn.Module, T: int, B: int | None, *, with_hx: bool = True, seed: int = 1
) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor] | None]:
    """A random input for a layer ``(T, B, I)`` / ``(B, T, I)`` / unbatched ``(T, I)`` (B=None) and h_0 (or
    ``(h_0, c_0)``) of shape ``(D*L, B, H_out)`` / ``(D*L, H_out)``, in the module's dtype, on its device."""
    dtype, device = next(mod.parameters()).dtype, next(mod.parameters()).device
    I, H, P = mod.input_size, mod.hidden_size, getattr(mod, "proj_size", 0)
    rows = mod.num_layers * (2 if mod.bidirectional else 1)
    if B is None:
        x_shape, h_lead = (T, I), (rows,)
    else:
        x_shape, h_lead = ((B, T, I) if mod.batch_first else (T, B, I)), (rows, B)
    x = randn(*x_shape, dtype=dtype, seed=seed, device=device)
    if not with_hx:
        return x, None
    h = randn(*h_lead, P or H, dtype=dtype, seed=seed + 1, device=device)
    if type(mod).__name__ == "LSTM":  # torch's or ours
        return x, (h, randn(*h_lead, H, dtype=dtype, seed=seed + 2, device=device))
    return x, h


def cell_inputs(
    mod: nn.Module, B: int | None, *, with_hx: bool = True, seed: int = 1
) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor] | None]:
    """A random input ``(B, I)`` (``(I,)`` when B is None) and hx (``(h, c)`` for the LSTM) for a cell, in the
    module's dtype, on its device."""
    dtype, device = next(mod.parameters()).dtype, next(mod.parameters()).device
    lead = () if B is None else (B,)
    x = randn(*lead, mod.input_size, dtype=dtype, seed=seed, device=device)
    if not with_hx:
        return x, None
    h = randn(*lead, mod.hidden_size, dtype=dtype, seed=seed + 1, device=device)
    if type(mod).__name__ == "LSTMCell":  # torch's or ours
        return x, (h, randn(*lead, mod.hidden_size, dtype=dtype, seed=seed + 2, device=device))
    return x, h


def _leaves(t):
    """Fresh leaf copies that require grad, keeping the structure (None, Tensor or tuple of Tensors)."""
    if t is None:
        return None
    if isinstance(t, Tensor):
        return t.detach().clone().requires_grad_(True)
    return tuple(_leaves(s) for s in t)


def _flat(t, name: str) -> list[tuple[str, Tensor]]:
    """Named tensors of a (nested) result: ``output``, ``state[0]``, ``state[1]``... in order."""
    if t is None:
        return []
    if isinstance(t, PackedSequence):
        return [(f"{name}.data", t.data)]
    if isinstance(t, Tensor):
        return [(name, t)]
    return [item for i, s in enumerate(t) for item in _flat(s, f"{name}[{i}]")]


def _close(actual: Tensor, expected: Tensor, what: str, tol: dict) -> None:
    torch.testing.assert_close(actual, expected, **tol, msg=lambda m: f"{what}: {m}")


def check_against_torch(
    theirs: nn.Module,
    ours: nn.Module,
    x: Tensor,
    hx=None,
    lengths: Sequence[int] | Tensor | None = None,
    *,
    packed: bool = False,
    tol: dict | None = None,
    seed: int = 0,
) -> None:
    """Compare ``ours`` against ``theirs`` forward and backward on ``(x, hx)`` (and ``lengths``).

    Args:
        theirs, ours: a torch module and our twin holding the same weights.
        x: the (padded) input; hx: the initial state (None: omitted in both calls).
        lengths: valid steps per sequence; torch gets a packed sequence, ours ``lengths=`` (unless
            ``packed``, when both get the same PackedSequence).
        tol: ``rtol``/``atol`` for ``assert_close``; None means its defaults for the dtype.
        seed: for the random upstream gradients.
    """
    tol = tol or {}
    xt, xo = _leaves(x), _leaves(x)
    ht, ho = _leaves(hx), _leaves(hx)
    state_args_t = () if hx is None else (ht,)
    state_args_o = () if hx is None else (ho,)
    if lengths is None:
        res_t = theirs(xt, *state_args_t)
        res_o = ours(xo, *state_args_o)
    else:
        bf = theirs.batch_first
        lens = torch.as_tensor(lengths, dtype=torch.int64)
        pt = pack_padded_sequence(xt, lens, batch_first=bf, enforce_sorted=False)
        if packed:
            po = pack_padded_sequence(xo, lens, batch_first=bf, enforce_sorted=False)
            res_t = theirs(pt, *state_args_t)
            res_o = ours(po, *state_args_o)
            assert isinstance(res_o[0], PackedSequence), type(res_o[0])
            for field in ("batch_sizes", "sorted_indices", "unsorted_indices"):
                assert torch.equal(getattr(res_o[0], field), getattr(res_t[0], field)), field
        else:
            out_p, state_t = theirs(pt, *state_args_t)
            out_t, _ = pad_packed_sequence(out_p, batch_first=bf, total_length=x.shape[1 if bf else 0])
            res_t = (out_t, state_t)
            res_o = ours(xo, *state_args_o, lengths=lengths)

    # forward: every output and final state
    flat_t, flat_o = _flat(res_t, "result"), _flat(res_o, "result")
    assert [n for n, _ in flat_o] == [n for n, _ in flat_t], "different result structure"
    for (name, a_t), (_, a_o) in zip(flat_t, flat_o, strict=True):
        _close(a_o, a_t, f"forward {name}", tol)

    # backward: the same random upstream gradient into every output
    gen = torch.Generator().manual_seed(seed)
    ups = [torch.randn(a.shape, generator=gen, dtype=a.dtype).to(a.device) for _, a in flat_t]
    names_t = [n for n, _ in theirs.named_parameters()]
    names_o = [n for n, _ in ours.named_parameters()]
    assert names_o == names_t, "different parameter names or order"
    wrt_names = ["input", *(n for n, _ in _flat(hx, "hx")), *names_t]
    wrt_t = [xt, *(t for _, t in _flat(ht, "hx")), *theirs.parameters()]
    wrt_o = [xo, *(t for _, t in _flat(ho, "hx")), *ours.parameters()]
    grads_t = torch.autograd.grad([a for _, a in flat_t], wrt_t, ups, materialize_grads=True)
    grads_o = torch.autograd.grad([a for _, a in flat_o], wrt_o, ups, materialize_grads=True)
    for name, g_t, g_o in zip(wrt_names, grads_t, grads_o, strict=True):
        _close(g_o, g_t, f"grad of {name}", tol)
