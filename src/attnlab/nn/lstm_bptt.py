r"""One direction of an LSTM layer with a hand-derived backward through time (BPTT).

Autograd through the Python loop records ~10 nodes per step and does a small ``dW_hh`` matmul at every step.
Here the forward runs without autograd, saving the gate activations, and the backward is written out:

With pre-activations ``a_t = W_ih x_t + b + W_hh h_{t-1}`` (packed ``i|f|g|o``), ``c_t = f c_{t-1} + i g`` and
``h_t = o tanh(c_t)``, given ``dh_t`` (from the output at t and from step t+1) and ``dc_t`` (from step t+1):

.. math::
    dc_t \mathrel{+}= dh_t \, o \, (1 - \tanh^2 c_t) \\
    da_i = dc_t \, g \, i (1 - i), \quad da_f = dc_t \, c_{t-1} \, f (1 - f), \quad
    da_g = dc_t \, i \, (1 - g^2), \quad da_o = dh_t \tanh(c_t) \, o (1 - o) \\
    dc_{t-1} = dc_t \, f, \qquad dh_{t-1} = da_t \, W_{hh} \qquad (B, 4H) @ (4H, H) \\
    dW_{hh} = \textstyle\sum_t da_t^\top h_{t-1}, \quad dW_{ih} = \sum_t da_t^\top x_t, \quad
    db = \sum_t da_t, \quad dx_t = da_t W_{ih}

The forward projects the inputs of all steps in one matmul, into the buffer that then holds the activations
(each step overwrites its pre-activations with ``i, f, g, o``), and runs one fused ``(B, H) @ (H, 4H)`` matmul
per step. The backward walks the steps last first in blocks of :data:`BLOCK`: for a block, the factors that do
not depend on the incoming gradient (``g i (1-i)``, ``o (1 - tanh^2 c)``, ...) are computed for all its steps at
once, each step then costs ~6 small ops and its ``dh_{t-1}`` matmul, and the block's ``da`` gives ``dW_hh``,
``dW_ih``, ``db`` and ``dx`` as matmuls with ``B * BLOCK`` rows. So no ``(T, B, 4H)`` gradient is ever made:
fresh memory is slow to touch on this project's machines (page faults), and the block scratch is reused.
Matmuls go through :mod:`attnlab.nn.gemm` (oneDNN for float32 on CPU).

Variable lengths follow :class:`~attnlab.nn.loop.TimeMasks`: a masked step passes ``dh`` and ``dc`` straight to
the previous state and gets no gate gradient. This backward is first-order only (``once_differentiable``); an
``LSTM(..., backward="autograd")`` differentiates the plain loop with autograd instead (double backward,
forward-mode AD).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from attnlab.nn import gemm
from attnlab.nn.loop import TimeMasks

#: Steps per block in the backward (see the module docstring).
BLOCK = 16


def _tanh(x: Tensor, out: Tensor, minus_one: Tensor) -> Tensor:
    """``tanh(x) = 2 sigmoid(2x) - 1`` into ``out`` (``minus_one``: a 0-dim tensor, which a kernel reads faster
    than a Python scalar). ``torch.tanh`` runs at ~2.5 ns per float32 element on this project's CPUs against
    ~0.25 for ``torch.sigmoid`` (1M elements, one thread). Doubling is exact; the subtraction costs up to ~1 ulp
    of 1 in absolute error (6e-8 in float32) near 0."""
    torch.add(x, x, out=out)  # 2x
    return torch.add(minus_one, out.sigmoid_(), alpha=2, out=out)  # 2 sigmoid(2x) - 1


def _shifted(n: int, reverse: bool) -> tuple[slice, slice, int]:
    """Layout of a ``(n + 1, B, H)`` buffer holding the initial state and the state after each of n steps.

    Returns (slots of the states *entering* steps 0..n-1, slots of the states *leaving* them, slot of the
    initial state). Forward order: entering step t is slot t, leaving is slot t + 1, the initial state slot 0;
    reverse order: entering t is slot t + 1, leaving is slot t, the initial state slot n.
    """
    if reverse:
        return slice(1, n + 1), slice(0, n), n
    return slice(0, n), slice(1, n + 1), 0


def _accumulate(total: Tensor | None, part: Tensor) -> Tensor:
    return part if total is None else total.add_(part)


class _LSTMDirection(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, bias, w_hh, masks: TimeMasks, reverse: bool, keep: bool):
        """``keep``: save what the backward needs. Without it (no gradient wanted) the cell states and tanh(c)
        live in two-step scratch instead of ``(T, B, H)`` buffers."""
        T, B, I = masks.t_end, x.shape[1], x.shape[2]
        H = w_hh.shape[1]
        x = x.contiguous()
        # xw_t = W_ih x_t + b for all steps in one matmul; each step overwrites its row with i, f, g, o.
        acts = gemm.linear(x[:T].view(T * B, I), w_ih, bias).view(T, B, 4 * H)  # (T*B, I) @ (I, 4H)
        w = gemm.Weight(w_hh, B)  # (4H, H), packed once for all steps
        tanh_c = x.new_empty(T if keep else 1, B, H)  # (T, B, H)
        hs = x.new_empty(T + 1, B, H)  # h0 and h_t of every step, laid out by _shifted
        cs = x.new_empty(T + 1 if keep else 2, B, H)  # c0 and c_t; without keep, c_t in slot t % 2
        _, leave, first = _shifted(T, reverse)
        hs[first] = h0
        if keep:
            cs[first] = c0
        h_out, c_out = hs[leave], (cs[leave] if keep else cs)  # (T, B, H) views: step t writes its state at t
        minus_one = x.new_full((), -1.0)
        h, c = h0, c0
        for t in masks.order(reverse):
            a = acts[t]  # (B, 4H): xw_t
            pre = w.linear(h, add=a)  # (B, 4H) = xw_t + h W_hh^T
            pre_g = pre[:, 2 * H : 3 * H]
            pre_g.add_(pre_g)  # 2 pre_g
            i, f, g, o = torch.sigmoid(pre, out=a).chunk(4, 1)  # i, f, o; g = sigmoid(2 pre_g) so far
            torch.add(minus_one, g, alpha=2, out=g)  # g = tanh(pre_g) = 2 sigmoid(2 pre_g) - 1
            m = masks.at(t)
            c_t, tc_t = (c_out[t], tanh_c[t]) if keep else (c_out[t % 2], tanh_c[0])
            if m is None:
                c_new = torch.addcmul(f * c, i, g, out=c_t)  # c' = f c + i g
                h_new = torch.mul(o, _tanh(c_new, tc_t, minus_one), out=h_out[t])  # h' = o tanh(c')
            else:  # ended sequences keep their state
                c_new = torch.addcmul(f * c, i, g)
                h_new = o * _tanh(c_new, tc_t, minus_one)
                h_new = torch.where(m, h_new, h, out=h_out[t])
                c_new = torch.where(m, c_new, c, out=c_t)
            h, c = h_new, c_new
        if keep:
            ctx.save_for_backward(x, acts, tanh_c, hs, cs, w_ih, w_hh)
        ctx.masks, ctx.reverse, ctx.has_bias = masks, reverse, bias is not None
        return h_out, h.clone(), c.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out: Tensor, d_h: Tensor, d_c: Tensor):
        x, acts, tanh_c, hs, cs, w_ih, w_hh = ctx.saved_tensors
        masks: TimeMasks = ctx.masks
        need_x, _, _, need_w_ih, need_b, need_w_hh = ctx.needs_input_grad[:6]
        T, B, G = acts.shape
        H, I = G // 4, x.shape[2]
        enter, _, _ = _shifted(T, ctx.reverse)
        h_in, c_in = hs[enter], cs[enter]  # (T, B, H): the states entering each step
        w_t = gemm.Weight(w_hh.t(), B)  # (H, 4H), packed once for all steps
        dx = None
        if need_x:  # steps from t_end on never ran: zero gradient
            dx = x.new_zeros(x.shape) if x.shape[0] > T else x.new_empty(x.shape)  # (T_in, B, I)
        d_w_ih = d_b = d_w_hh = None
        scratch = acts.new_empty(min(BLOCK, T), B, G)  # da for one block of steps
        factors = acts.new_empty(min(BLOCK, T), B, 5, H)  # the block's gradient-independent factors
        one = acts.new_ones(())
        dh, dc = d_h, d_c
        steps = list(masks.order(not ctx.reverse))  # the forward's steps, last first
        for k in range(0, T, BLOCK):
            block = steps[k : k + BLOCK]
            lo, hi = min(block), max(block) + 1
            i, f, g, o = acts[lo:hi].chunk(4, 2)  # each (K, B, H)
            tc = tanh_c[lo:hi]
            # Factors independent of the incoming gradient, for the block's steps at once (x - x*x = x (1 - x)).
            fac = factors[: hi - lo]  # (K, B, 5, H)
            k_ifg = fac[:, :, :3]  # (K, B, 3, H): dc -> da_i, da_f, da_g
            k_i, k_f, k_g, k_o, o_dtanh = fac.unbind(2)  # each (K, B, H)
            torch.addcmul(i, i, i, value=-1, out=k_i).mul_(g)  # g i (1 - i)
            torch.addcmul(f, f, f, value=-1, out=k_f).mul_(c_in[lo:hi])  # c_{t-1} f (1 - f)
            torch.addcmul(one, g, g, value=-1, out=k_g).mul_(i)  # i (1 - g^2)
            torch.addcmul(o, o, o, value=-1, out=k_o).mul_(tc)  # dh -> da_o: tanh(c) o (1 - o)
            torch.addcmul(one, tc, tc, value=-1, out=o_dtanh).mul_(o)  # dh -> dc: o (1 - tanh^2 c)
            d_acts = scratch[: hi - lo]  # (K, B, 4H)
            for t in block:
                j = t - lo
                dh = dh + d_out[t]  # the output at t is the state h_t
                m = masks.at(t)
                if m is not None:  # a masked step only passes its gradient back to the previous state
                    keep_h, keep_c = torch.where(m, 0.0, dh), torch.where(m, 0.0, dc)
                    dh, dc = torch.where(m, dh, 0.0), torch.where(m, dc, 0.0)
                da = d_acts[j]  # (B, 4H)
                dc = torch.addcmul(dc, dh, o_dtanh[j])
                torch.mul(dc.unsqueeze(1), k_ifg[j], out=da[:, : 3 * H].view(B, 3, H))  # da_i, da_f, da_g
                torch.mul(dh, k_o[j], out=da[:, 3 * H :])  # da_o
                dc = dc * f[j]  # dc_{t-1}
                dh = w_t.linear(da)  # (B, 4H) @ (4H, H): dh_{t-1}
                if m is not None:
                    dh, dc = dh + keep_h, dc + keep_c
            da = d_acts.view(-1, G)  # (K*B, 4H)
            if need_w_hh:
                d_w_hh = _accumulate(d_w_hh, gemm.linear_grad_weight(da, h_in[lo:hi].view(-1, H)))  # (4H, H)
            if need_w_ih:
                d_w_ih = _accumulate(d_w_ih, gemm.linear_grad_weight(da, x[lo:hi].view(-1, I)))  # (4H, I)
            if need_b and ctx.has_bias:
                d_b = _accumulate(d_b, da.sum(0))  # (4H,)
            if need_x:
                dx[lo:hi] = gemm.linear(da, w_ih.t()).view(hi - lo, B, I)  # (K*B, 4H) @ (4H, I)
        return dx, dh, dc, d_w_ih, d_b, d_w_hh, None, None, None


def lstm_direction(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    weight_ih: Tensor,
    bias: Tensor | None,
    weight_hh: Tensor,
    lengths: list[int] | None,
    reverse: bool,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One direction of an LSTM layer without projections: inputs ``(T, B, I)``, ``state = (h0, c0)`` each
    ``(B, H)``, ``bias = b_ih + b_hh`` or None -> outputs ``(T, B, H)`` (zero at padded steps) and ``(h_n, c_n)``.
    Same semantics as projecting with :meth:`~attnlab.nn.LSTMCell.project` and running
    :func:`attnlab.nn.loop.run_direction` with :meth:`~attnlab.nn.LSTMCell.step`."""
    masks = TimeMasks(lengths, x.shape[0], x.device)
    inputs = (x, state[0], state[1], weight_ih, bias, weight_hh)
    keep = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)
    out, h, c = _LSTMDirection.apply(*inputs, masks, reverse, keep)
    return masks.finish(out), (h, c)
