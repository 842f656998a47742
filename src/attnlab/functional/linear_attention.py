r"""Causal linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"): one function, two forms.

Softmax attention weighs value j for query i by ``sim(q_i, k_j) = exp(q_i^T k_j / sqrt(d_k))``. Linear
attention takes a kernel instead, ``sim(q, k) = phi(q)^T phi(k)`` with a positive feature map (their section
3.2.1)

.. math::
    \phi(x) = \mathrm{elu}(x) + 1 \quad (> 0 \text{ everywhere, so every weight is positive}),

and associativity moves the sum over keys inside (section 3.2). Causal (section 3.3): query i sees keys j <= i,

.. math::
    y_i = \frac{\phi(q_i)^\top S_i}{\phi(q_i)^\top z_i + \epsilon}, \qquad
    S_i = S_0 + \sum_{j \le i} \phi(k_j)\, v_j^\top, \qquad z_i = z_0 + \sum_{j \le i} \phi(k_j).

Read as a recurrence (section 3.4, "transformers are RNNs"): ``S_i = S_{i-1} + phi(k_i) v_i^T``,
``z_i = z_{i-1} + phi(k_i)``: a fixed-size state ``(S, z)`` of ``d_k x d_v + d_k`` numbers replaces the KV
cache, so decoding costs O(1) per token whatever the context length. The price: everything the past holds must
fit in that state (the chapter's fixed-vector bottleneck, returned).

Symbols: ``...`` leading dims (batch, heads); T sequence length; d_k query/key size; d_v value size; c chunk
size; n = ceil(T / c) chunks; ``S`` ``(..., d_k, d_v)`` and ``z`` ``(..., d_k)`` the state (zeros when none
is given: the start of a sequence).

Implementations (``impl``), equal up to rounding (the tests hold them to 1e-10 in float64):

- ``"recurrent"``: the loop above, one :func:`linear_attention_step` per token (what decoding runs).
- ``"chunked"`` (training): split time into chunks of c. Within a chunk, the masked quadratic form
  ``(phi(Q) phi(K)^T * M) V`` (M lower-triangular, diagonal included); across chunks, the state at each chunk's
  start is ``S_0`` plus an exclusive cumulative sum of the chunks' ``phi(K)^T V``. Memory ``O(T c + (T/c) d_k d_v)``
  per (batch, head) instead of the ``O(T d_k d_v)`` of a per-token cumulative sum; ``c >= T`` is the fully
  parallel quadratic form.

``epsilon`` (default 1e-6, as the authors' implementation adds) only guards the division: the denominator is a
sum of positive terms, at least ``phi(q_i)^T phi(k_i) > 0``. In float16/bfloat16 the state and the division are
carried in float32 and the output returns in the input's dtype (as :func:`scaled_dot_product_attention` does).
No ``1/sqrt(d_k)`` scale: the feature map, not a temperature, shapes the weights (as in the paper).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab._checks import check_float, check_positive_int, check_tensor, shape_str

IMPLS = ("chunked", "recurrent")


class LinearAttentionState(NamedTuple):
    """The recurrent state after the tokens seen so far: ``s`` ``(..., d_k, d_v)`` = sum of ``phi(k_j) v_j^T``;
    ``z`` ``(..., d_k)`` = sum of ``phi(k_j)`` (the normaliser)."""

    s: Tensor
    z: Tensor


class LinearAttentionOutput(NamedTuple):
    """``output`` ``(..., T, d_v)`` (``(..., d_v)`` from a step); ``state`` after the last token."""

    output: Tensor
    state: LinearAttentionState


def elu_feature_map(x: Tensor) -> Tensor:
    """phi(x) = elu(x) + 1 (Katharopoulos et al. 2020, section 3.2.1): positive, and its gradient never dies."""
    return F.elu(x) + 1.0


def linear_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    state: LinearAttentionState | None = None,
    *,
    impl: str = "chunked",
    chunk_size: int = 64,
    eps: float = 1e-6,
) -> LinearAttentionOutput:
    """Causal linear attention of query/key ``(..., T, d_k)`` and value ``(..., T, d_v)``, continuing from
    ``state`` (zeros: the sequence starts here). Returns the output ``(..., T, d_v)`` and the state after
    the last token, so a prefix's state feeds :func:`linear_attention_step` for decoding."""
    _check_args(query, key, value, state, eps)
    if impl not in IMPLS:
        raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
    check_positive_int("chunk_size", chunk_size)
    if query.shape[-2] < 1:
        raise ValueError(f"query: expected a sequence length >= 1, got shape {shape_str(query)}")
    s, z = _initial_state(query, value, state)
    q, k, v = (x.to(s.dtype) for x in (query, key, value))  # float32 for float16/bfloat16 inputs
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)  # (..., T, d_k)
    if impl == "recurrent":
        outputs = []
        for q_t, k_t, v_t in zip(phi_q.unbind(-2), phi_k.unbind(-2), v.unbind(-2), strict=True):  # each (..., d_k|d_v)
            y_t, s, z = _step(q_t, k_t, v_t, s, z, eps)
            outputs.append(y_t)
        out = torch.stack(outputs, dim=-2)  # (..., T, d_v)
    else:
        out, s, z = _chunked(phi_q, phi_k, v, s, z, chunk_size, eps)
    return LinearAttentionOutput(out.to(query.dtype), LinearAttentionState(s, z))


def linear_attention_step(
    query: Tensor, key: Tensor, value: Tensor, state: LinearAttentionState | None = None, *, eps: float = 1e-6
) -> LinearAttentionOutput:
    """One decoding step: query/key ``(..., d_k)``, value ``(..., d_v)`` of the new token (no time axis).

    ``S <- S + phi(k) v^T``, ``z <- z + phi(k)``, ``y = phi(q)^T S / (phi(q)^T z + eps)``: O(d_k d_v) work
    whatever the number of tokens before it. Returns ``y`` ``(..., d_v)`` and the new state (the old one is not
    modified)."""
    _check_args(query, key, value, state, eps, step=True)
    s, z = _initial_state(query, value, state, step=True)
    q, k, v = (x.to(s.dtype) for x in (query, key, value))  # float32 for float16/bfloat16 inputs
    y, s, z = _step(elu_feature_map(q), elu_feature_map(k), v, s, z, eps)
    return LinearAttentionOutput(y.to(query.dtype), LinearAttentionState(s, z))


def _step(phi_q: Tensor, phi_k: Tensor, v: Tensor, s: Tensor, z: Tensor, eps: float):
    """The recurrence (section 3.4) on feature-mapped q, k: (..., d_k); v: (..., d_v); s (..., d_k, d_v)."""
    s = s + phi_k.unsqueeze(-1) * v.unsqueeze(-2)  # S_i = S_{i-1} + phi(k_i) v_i^T: (..., d_k, 1) * (..., 1, d_v)
    z = z + phi_k  # z_i = z_{i-1} + phi(k_i)   (..., d_k)
    num = (phi_q.unsqueeze(-2) @ s).squeeze(-2)  # phi(q_i)^T S_i: (..., 1, d_k) @ (..., d_k, d_v)
    den = (phi_q * z).sum(-1, keepdim=True)  # phi(q_i)^T z_i   (..., 1)
    return num / (den + eps), s, z  # (..., d_v)


def _chunked(phi_q: Tensor, phi_k: Tensor, v: Tensor, s0: Tensor, z0: Tensor, c: int, eps: float):
    """The chunked parallel form (module docstring); returns (output (..., T, d_v), S_T, z_T)."""
    *batch, T, d_k = phi_q.shape
    d_v = v.shape[-1]
    c = min(c, T)
    n = math.ceil(T / c)
    pad = n * c - T  # zero rows at the end: phi(k) = 0 there adds nothing to any state
    if pad:
        phi_q, phi_k, v = (F.pad(x, (0, 0, 0, pad)) for x in (phi_q, phi_k, v))
    q = phi_q.reshape(*batch, n, c, d_k)  # (..., n, c, d_k)
    k = phi_k.reshape(*batch, n, c, d_k)  # (..., n, c, d_k)
    vc = v.reshape(*batch, n, c, d_v)  # (..., n, c, d_v)
    # within a chunk: weights phi(q_i)^T phi(k_j) for j <= i (the causal mask M, diagonal included)
    weights = torch.tril(q @ k.transpose(-2, -1))  # (..., n, c, d_k) @ (..., n, d_k, c) -> (..., n, c, c)
    num = weights @ vc  # (..., n, c, c) @ (..., n, c, d_v) -> (..., n, c, d_v)
    den = weights.sum(-1)  # (..., n, c)
    # across chunks: the state at each chunk's start, S_0 + sum of the earlier chunks' phi(K)^T V
    ds = (k.transpose(-2, -1) @ vc).to(s0.dtype)  # (..., n, d_k, c) @ (..., n, c, d_v) -> (..., n, d_k, d_v)
    dz = k.sum(-2).to(z0.dtype)  # (..., n, d_k)
    s_all = torch.cumsum(torch.cat([s0.unsqueeze(-3), ds], -3), -3)  # (..., n + 1, d_k, d_v): before chunk 0..n
    z_all = torch.cumsum(torch.cat([z0.unsqueeze(-2), dz], -2), -2)  # (..., n + 1, d_k)
    s_before, z_before = s_all[..., :n, :, :], z_all[..., :n, :]
    num = num + q @ s_before  # (..., n, c, d_k) @ (..., n, d_k, d_v) -> (..., n, c, d_v)
    den = den + (q * z_before.unsqueeze(-2)).sum(-1)  # phi(q_i)^T z_before: (..., n, c)
    out = num / (den + eps).unsqueeze(-1)  # (..., n, c, d_v)
    out = out.reshape(*batch, n * c, d_v)[..., :T, :]  # (..., T, d_v)
    return out, s_all[..., n, :, :], z_all[..., n, :]


def _initial_state(query: Tensor, value: Tensor, state: LinearAttentionState | None, step: bool = False):
    """The given state, or zeros; float32 accumulators for float16/bfloat16 inputs."""
    if state is not None:
        return state.s, state.z
    lead = query.shape[:-1] if step else query.shape[:-2]
    dtype = _state_dtype(query)
    s = torch.zeros(*lead, query.shape[-1], value.shape[-1], dtype=dtype, device=query.device)
    z = torch.zeros(*lead, query.shape[-1], dtype=dtype, device=query.device)
    return s, z


def _state_dtype(query: Tensor) -> torch.dtype:
    return torch.promote_types(query.dtype, torch.float32)


def _check_args(query, key, value, state, eps, step: bool = False) -> None:
    min_dim = 1 if step else 2
    layout = "(..., head_size)" if step else "(..., length, head_size)"
    for name, x in (("query", query), ("key", key), ("value", value)):
        check_tensor(name, x)
        check_float(name, x)
        if x.dim() < min_dim:
            raise ValueError(f"{name}: expected a tensor of at least {min_dim} dims {layout}, got {shape_str(x)}")
    if key.shape != query.shape:
        raise ValueError(f"key: expected the shape of query {shape_str(query)}, got {shape_str(key)}")
    if value.shape[:-1] != query.shape[:-1]:
        want = "leading dims" if step else "leading dims and length"
        raise ValueError(f"value: expected the {want} of query {shape_str(query)}, got {shape_str(value)}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps: expected a number >= 0, got {eps!r}")
    if state is None:
        return
    if not isinstance(state, tuple) or len(state) != 2:
        raise TypeError(f"state: expected a LinearAttentionState(s, z), got {type(state).__name__}")
    lead = query.shape[:-1] if step else query.shape[:-2]
    d_k, d_v = query.shape[-1], value.shape[-1]
    for name, x, shape in (("state.s", state[0], (*lead, d_k, d_v)), ("state.z", state[1], (*lead, d_k))):
        check_tensor(name, x)
        if tuple(x.shape) != shape:
            raise ValueError(f"{name}: expected shape ({', '.join(map(str, shape))}), got {shape_str(x)}")
        if x.dtype != _state_dtype(query):
            raise TypeError(
                f"{name}: expected dtype {_state_dtype(query)} (the state's dtype for query's), got {x.dtype}"
            )
        if x.device != query.device:
            raise ValueError(f"{name}: expected device {query.device} (that of query), got {x.device}")
