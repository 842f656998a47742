r"""One direction of an LSTM layer with a hand-derived backward through time (BPTT).

Autograd through the Python loop records ~10 nodes per step and does a small ``dW_hh`` matmul at every step.
Here the forward runs without autograd, saving the gate activations, and the backward is written out:

With pre-activations ``a = xw_t + W_hh h_{t-1}`` (packed ``i|f|g|o``), ``c_t = f c_{t-1} + i g`` and
``h_t = o tanh(c_t)``, given ``dh_t`` (from the output at t and from step t+1) and ``dc_t`` (from step t+1):

.. math::
    dc_t \mathrel{+}= dh_t \, o \, (1 - \tanh^2 c_t) \\
    da_i = dc_t \, g \, i (1 - i), \quad da_f = dc_t \, c_{t-1} \, f (1 - f), \quad
    da_g = dc_t \, i \, (1 - g^2), \quad da_o = dh_t \tanh(c_t) \, o (1 - o) \\
    dc_{t-1} = dc_t \, f, \qquad dh_{t-1} = da \, W_{hh} \qquad (B, 4H) @ (4H, H) \\
    dW_{hh} = \textstyle\sum_t da_t^\top h_{t-1}, \qquad dxw_t = da_t

Every factor that does not depend on the incoming gradient (``g i (1-i)``, ``o (1 - tanh^2 c)``, ...) is
computed for all steps at once before the loop, which leaves ~5 small ops per step; ``dW_hh`` is one
``(4H, T*B) @ (T*B, H)`` matmul after it. Variable lengths follow :class:`~attnlab.nn.loop.TimeMasks`: a
masked step passes ``dh`` and ``dc`` straight to the previous state and gets no gate gradient.

This backward is first-order only (``once_differentiable``); an ``LSTM`` with ``use_hand_bptt = False``
differentiates the plain loop with autograd instead (double backward, forward-mode AD).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from attnlab.nn.loop import TimeMasks


class _LSTMDirection(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xw: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, masks: TimeMasks, reverse: bool):
        T, B, G = masks.t_end, xw.shape[1], xw.shape[2]
        H = G // 4
        w_hh_t = w_hh.t()  # (H, 4H)
        acts = xw.new_empty(T, B, G)  # (T, B, 4H): i, f, g, o after their nonlinearities
        tanh_c = xw.new_empty(T, B, H)  # (T, B, H)
        h_in = xw.new_empty(T, B, H)  # the state entering each step
        c_in = xw.new_empty(T, B, H)
        out = xw.new_empty(T, B, H)
        h, c = h0, c0
        for t in masks.order(reverse):
            h_in[t], c_in[t] = h, c
            a = torch.addmm(xw[t], h, w_hh_t, out=acts[t])  # (B, 4H) = xw_t + h W_hh^T
            a[:, : 2 * H].sigmoid_()  # i, f
            a[:, 2 * H : 3 * H].tanh_()  # g
            a[:, 3 * H :].sigmoid_()  # o
            i, f, g, o = a.chunk(4, 1)
            c_new = torch.addcmul(f * c, i, g)  # c' = f c + i g
            h_new = o * torch.tanh(c_new, out=tanh_c[t])  # h' = o tanh(c')
            m = masks.at(t)
            if m is not None:  # ended sequences keep their state
                h_new, c_new = torch.where(m, h_new, h), torch.where(m, c_new, c)
            h, c = h_new, c_new
            out[t] = h
        ctx.save_for_backward(acts, tanh_c, h_in, c_in, w_hh)
        ctx.masks, ctx.reverse, ctx.T_in = masks, reverse, xw.shape[0]
        return out, h, c

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out: Tensor, d_h: Tensor, d_c: Tensor):
        acts, tanh_c, h_in, c_in, w_hh = ctx.saved_tensors
        masks: TimeMasks = ctx.masks
        T, B, G = acts.shape
        H = G // 4
        i, f, g, o = acts.chunk(4, 2)  # each (T, B, H)
        # Factors independent of the incoming gradient, for all steps at once.
        o_dtanh = o * (1 - tanh_c * tanh_c)  # dh -> dc through h = o tanh(c)
        k_ifg = torch.cat([g * i * (1 - i), c_in * f * (1 - f), i * (1 - g * g)], 2).view(T, B, 3, H)  # dc -> da
        k_o = tanh_c * o * (1 - o)  # dh -> da_o
        d_acts = torch.empty_like(acts) if masks.t_end == ctx.T_in else acts.new_zeros(ctx.T_in, B, G)
        dh, dc = d_h, d_c
        for t in masks.order(not ctx.reverse):  # the forward's steps, last first
            dh = dh + d_out[t]  # the output at t is the state h_t
            m = masks.at(t)
            if m is not None:  # a masked step only passes its gradient back to the previous state
                keep_h, keep_c = torch.where(m, 0.0, dh), torch.where(m, 0.0, dc)
                dh, dc = torch.where(m, dh, 0.0), torch.where(m, dc, 0.0)
            da = d_acts[t]  # (B, 4H)
            dc = torch.addcmul(dc, dh, o_dtanh[t])
            torch.mul(dc.unsqueeze(1), k_ifg[t], out=da[:, : 3 * H].view(B, 3, H))  # da_i, da_f, da_g
            torch.mul(dh, k_o[t], out=da[:, 3 * H :])  # da_o
            dc = dc * f[t]  # dc_{t-1}
            dh = da @ w_hh  # (B, 4H) @ (4H, H): dh_{t-1}
            if m is not None:
                dh, dc = dh + keep_h, dc + keep_c
        d_w_hh = d_acts[:T].flatten(0, 1).t() @ h_in.flatten(0, 1)  # (4H, T*B) @ (T*B, H)
        return d_acts, dh, dc, d_w_hh, None, None


def lstm_direction(
    xw: Tensor, state: tuple[Tensor, Tensor], weight_hh: Tensor, lengths: list[int] | None, reverse: bool
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Same contract as :func:`attnlab.nn.loop.run_direction` for an LSTM without projections."""
    masks = TimeMasks(lengths, xw.shape[0], xw.device)
    out, h, c = _LSTMDirection.apply(xw, state[0], state[1], weight_hh, masks, reverse)
    return masks.finish(out), (h, c)
