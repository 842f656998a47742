"""Known wrong recurrent layers over lengths, and wrong gradient clippings (kept as code for the diagnosis)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.exercises.engine import Mistake


def _layer(
    x,
    lengths,
    h0,
    weight_ih,
    weight_hh,
    bias_ih,
    bias_hh,
    *,
    freeze=True,
    zero_outputs=True,
    final="state",
    extra_step=False,
):
    """A tanh RNN over lengths written out, with the knobs of the known mistakes."""
    h, outs = h0, []
    for t, x_t in enumerate(x.unbind(1)):  # x_t (B, I)
        new = torch.tanh(F.linear(x_t, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh))  # (B, H)
        valid = (t <= lengths if extra_step else t < lengths).unsqueeze(1)  # (B, 1)
        h = torch.where(valid, new, h) if freeze else new
        outs.append(h * valid if zero_outputs else h)
    out = torch.stack(outs, 1)  # (B, T, H)
    return out, (out[:, -1] if final == "last_output" else h)


def _variant(**knobs):
    def rnn_layer(x, lengths, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        return _layer(x, lengths, h0, weight_ih, weight_hh, bias_ih, bias_hh, **knobs)

    return rnn_layer


LAYER_MISTAKES = (
    Mistake(
        "layer.updates_padding",
        "a lengths loop that updates padded steps",
        "past its length a sequence must keep its state: h = torch.where(t < lengths[:, None], h_new, h); otherwise "
        "the padding runs through the RNN and h_n is the state after the padding",
        _variant(freeze=False, zero_outputs=False),
    ),
    Mistake(
        "layer.padding_outputs",
        "outputs at padded steps not zeroed",
        "the state is frozen correctly, but the outputs past each length must be zero (as pad_packed_sequence "
        "gives): out_t = h_t * (t < lengths)[:, None]",
        _variant(zero_outputs=False),
    ),
    Mistake(
        "layer.final_from_last_step",
        "h_n read from the last time step",
        "h_n is each sequence's state at ITS last valid step (the frozen state), not output[:, -1], which is zero "
        "padding for the shorter sequences",
        _variant(final="last_output"),
    ),
    Mistake(
        "layer.off_by_one",
        "one step too many per sequence",
        "a sequence of length n is valid at steps 0..n-1: update while t < lengths, not t <= lengths",
        _variant(extra_step=True),
    ),
)


def _total(grads):
    return torch.sqrt(sum((g**2).sum() for g in grads))


def _clip_per_tensor(grads, max_norm):
    return [g * torch.clamp(max_norm / (g.norm() + 1e-6), max=1.0) for g in grads], _total(grads)


def _clip_always(grads, max_norm):
    total = _total(grads)
    return [g * max_norm / (total + 1e-6) for g in grads], total


def _clip_sum_of_norms(grads, max_norm):
    total = sum(g.norm() for g in grads)
    return [g * torch.clamp(max_norm / (total + 1e-6), max=1.0) for g in grads], total


def _clip_by_value(grads, max_norm):
    return [g.clamp(-max_norm, max_norm) for g in grads], _total(grads)


def _clip_norm_after(grads, max_norm):
    total = _total(grads)
    clipped = [g * torch.clamp(max_norm / (total + 1e-6), max=1.0) for g in grads]
    return clipped, _total(clipped)


CLIP_MISTAKES = (
    Mistake(
        "clip.per_tensor",
        "each gradient clipped by its own norm",
        "clip by the GLOBAL norm of all gradients together, sqrt(sum_i ||g_i||^2), with one common factor; "
        "per-tensor clipping changes the update's direction",
        _clip_per_tensor,
    ),
    Mistake(
        "clip.always_scales",
        "gradients rescaled even below max_norm",
        "scale only when the norm exceeds max_norm: factor min(1, max_norm / (norm + 1e-6)); otherwise small "
        "gradients are blown up to max_norm",
        _clip_always,
    ),
    Mistake(
        "clip.sum_of_norms",
        "the norms added instead of the squares",
        "the global 2-norm is sqrt(sum_i ||g_i||^2), not sum_i ||g_i||",
        _clip_sum_of_norms,
    ),
    Mistake(
        "clip.by_value",
        "each entry clamped (clipping by value)",
        "clip_grad_norm rescales the whole gradient by one factor; clamping each entry to [-max_norm, max_norm] is "
        "clip_grad_value_, a different rule that changes the direction",
        _clip_by_value,
    ),
    Mistake(
        "clip.norm_after",
        "the norm returned after clipping",
        "return the total norm BEFORE clipping (what torch returns, and what you log to see explosions)",
        _clip_norm_after,
    ),
)
