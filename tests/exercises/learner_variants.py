"""Mistakes written the way a learner would write them, independently of the catalogue's code (other ops, other
order, other names): the diagnosis must recognise each by its behaviour, not by identity. (exercise, id, fn)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def sdpa_no_scale(query, key, value, attn_mask=None, is_causal=False, scale=None):
    scores = torch.einsum("...td,...sd->...ts", query, key)
    if attn_mask is not None:
        scores = torch.where(attn_mask, scores, -math.inf) if attn_mask.dtype == torch.bool else scores + attn_mask
    return torch.einsum("...ts,...sd->...td", scores.softmax(-1), value)


def sdpa_polarity(query, key, value, attn_mask=None, is_causal=False, scale=None):
    d = query.size(-1)
    scores = torch.matmul(query, key.transpose(-1, -2)) / d**0.5
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        scores = torch.where(attn_mask, torch.full_like(scores, -math.inf), scores)  # True taken as "masked"
    return torch.matmul(F.softmax(scores, dim=-1), value)


def sdpa_nan_rows(query, key, value, attn_mask=None, is_causal=False, scale=None):
    s = (scale if scale is not None else query.shape[-1] ** -0.5) * (query @ key.mT)
    if is_causal:
        s = s + torch.triu(torch.full(s.shape[-2:], -math.inf), 1)
    if attn_mask is not None:
        s = s.masked_fill(attn_mask.logical_not(), -math.inf) if attn_mask.dtype == torch.bool else s + attn_mask
    return s.softmax(-1) @ value


def causal_top_left(T, S):
    return torch.tril(torch.ones(T, S)).bool()


def kv_step_is_causal(x, cache_k, cache_v, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads):
    """The classic: torch's is_causal=True with a cache (top-left alignment)."""
    B, T, E = x.shape
    hs = E // num_heads
    q, k, v = F.linear(x, in_proj_weight, in_proj_bias).chunk(3, dim=-1)
    q, k, v = (y.reshape(B, T, num_heads, hs).permute(0, 2, 1, 3) for y in (q, k, v))
    k, v = torch.cat((cache_k, k), dim=2), torch.cat((cache_v, v), dim=2)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.linear(y.permute(0, 2, 1, 3).reshape(B, T, E), out_proj_weight, out_proj_bias), k, v


def mha_no_transpose(
    query,
    key,
    value,
    in_proj_weight,
    in_proj_bias,
    out_proj_weight,
    out_proj_bias,
    num_heads,
    attn_mask=None,
    is_causal=False,
):
    B, T, E = query.shape
    S, hs = key.shape[1], E // num_heads
    wq, wk, wv = in_proj_weight.split(E)
    bq, bk, bv = in_proj_bias.split(E)
    q = F.linear(query, wq, bq).view(B, num_heads, T, hs)  # heads cut along the sequence
    k = F.linear(key, wk, bk).view(B, num_heads, S, hs)
    v = F.linear(value, wv, bv).view(B, num_heads, S, hs)
    mask = attn_mask
    if is_causal:
        mask = torch.ones(T, S, dtype=torch.bool).tril()
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return F.linear(y.transpose(1, 2).reshape(B, T, E), out_proj_weight, out_proj_bias)


def lstm_swapped_g_o(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    H = h.shape[1]
    z = x @ weight_ih.t() + bias_ih + h @ weight_hh.t() + bias_hh
    i = torch.sigmoid(z[:, :H])
    f = torch.sigmoid(z[:, H : 2 * H])
    o = torch.sigmoid(z[:, 2 * H : 3 * H])  # o read third, g last
    g = torch.tanh(z[:, 3 * H :])
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next


def gru_cho(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    H = h.shape[-1]
    W_ir, W_iz, W_in = weight_ih[:H], weight_ih[H : 2 * H], weight_ih[2 * H :]
    W_hr, W_hz, W_hn = weight_hh[:H], weight_hh[H : 2 * H], weight_hh[2 * H :]
    b_ir, b_iz, b_in = bias_ih.split(H)
    b_hr, b_hz, b_hn = bias_hh.split(H)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)  # Cho et al.: reset before the product
    return (1 - z) * n + z * h


def layer_norm_std(x, weight, bias, eps=1e-5):
    mu = x.mean(dim=-1, keepdim=True)
    sd = x.std(dim=-1, keepdim=True)  # unbiased by default
    return weight * (x - mu) / torch.sqrt(sd**2 + eps) + bias


def layer_norm_eps_outside(x, weight, bias, eps=1e-5):
    centred = x - x.mean(-1, keepdim=True)
    std = centred.pow(2).mean(-1, keepdim=True).sqrt()
    return centred / (std + eps) * weight + bias


def sinusoidal_halves(length, dim):
    pe = torch.zeros(length, dim)
    for pos in range(length):
        for i in range(dim // 2):
            angle = pos / (10000 ** (2 * i / dim))
            pe[pos, i] = math.sin(angle)
            pe[pos, dim // 2 + i] = math.cos(angle)
    return pe


def rotary_rotate_half(x, offset=0):
    hs, T = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / (10000 ** (torch.arange(0, hs, 2).float() / hs))
    t = torch.arange(offset, offset + T).float()
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    x1, x2 = x[..., : hs // 2], x[..., hs // 2 :]
    rotated = torch.cat((-x2, x1), dim=-1)
    return (x * emb.cos().to(x.dtype) + rotated * emb.sin().to(x.dtype)).to(x.dtype)


def bptt_linear(h, weight_hh, grad_last):
    T = h.shape[1]
    out = torch.empty_like(h)
    out[:, T - 1] = grad_last
    for t in reversed(range(T - 1)):
        out[:, t] = (weight_hh.T @ out[:, t + 1].T).T  # forgot diag(1 - h^2)
    return out


def online_no_rescale(m, l, acc, scores, values):
    m_new = torch.max(m, scores.max(dim=-1, keepdim=True).values)
    shift = torch.where(m_new == -math.inf, torch.zeros_like(m_new), m_new)
    p = (scores - shift).exp()
    l_new = l * (m - shift).exp() + p.sum(-1, keepdim=True)
    return m_new, l_new, acc + p @ values  # acc kept under the old max


def clip_each(grads, max_norm):
    total = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    out = []
    for g in grads:
        n = g.norm()
        out.append(g * (max_norm / n) if n > max_norm else g)
    return out, total


def softmax_backward_diag(probs, grad_probs):
    return grad_probs * probs


def context_after_softmax(scores, values, key_mask=None):
    w = torch.softmax(scores, dim=-1)
    if key_mask is not None:
        w = w * key_mask.float()
    return torch.einsum("bs,bsd->bd", w, values), w


def rnn_layer_all_steps(x, lengths, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    h = h0
    outputs = []
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t] @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h


def greedy_no_stop(step, bos, eos, max_len):
    seq = [bos]
    while len(seq) <= max_len:
        seq.append(step(seq).argmax().item())
    return seq[1:]


def beam_one_per_beam(scores, log_probs, beam_size):
    best, tok = log_probs.max(dim=-1)
    total = scores + best
    order = torch.argsort(total, descending=True)[:beam_size]
    return total[order], order, tok[order]


VARIANTS = [
    ("scaled_dot_product_attention", "sdpa.no_scale", sdpa_no_scale),
    ("scaled_dot_product_attention", "sdpa.mask_polarity", sdpa_polarity),
    ("scaled_dot_product_attention", "sdpa.nan_fully_masked", sdpa_nan_rows),
    ("causal_mask", "causal.top_left", causal_top_left),
    ("kv_cache_step", "kv.top_left", kv_step_is_causal),
    ("multi_head_attention", "mha.split_no_transpose", mha_no_transpose),
    ("lstm_cell", "lstm.gates_ifog", lstm_swapped_g_o),
    ("gru_cell", "gru.reset_before", gru_cho),
    ("layer_norm", "ln.unbiased", layer_norm_std),
    ("layer_norm", "ln.eps_outside", layer_norm_eps_outside),
    ("sinusoidal_encoding", "pe.halves", sinusoidal_halves),
    ("rotary", "rope.half_pairs", rotary_rotate_half),
    ("bptt", "bptt.no_tanh_derivative", bptt_linear),
    ("online_softmax_update", "online.acc_not_rescaled", online_no_rescale),
    ("clip_grad_norm", "clip.per_tensor", clip_each),
    ("softmax_backward", "softmax_bwd.diagonal_only", softmax_backward_diag),
    ("attention_context", "context.mask_after_softmax", context_after_softmax),
    ("rnn_layer", "layer.updates_padding", rnn_layer_all_steps),
    ("greedy_decode", "greedy.ignores_eos", greedy_no_stop),
    ("beam_search_step", "beam.per_beam", beam_one_per_beam),
]
