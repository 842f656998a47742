r"""The attention of the RNN encoder-decoders: Bahdanau (additive) and Luong (dot, general, concat).

Both score each source position against a decoder state, softmax the scores over the source and return the
weighted sum of the values (by default the encoder states themselves), as
``AttentionOutput(output=context, weights)``. The math is in :mod:`attnlab.functional.scores`, the hand-derived
backward in :mod:`attnlab.functional.attention_backward`; these modules hold the parameters and check the inputs.

Shapes: B batch, T decoder steps, S source positions, Dq = ``query_size`` (decoder state), Dk = ``key_size``
(encoder state), Dv value size, A = ``attn_size``.

- ``query`` ``(B, Dq)`` (one decoder step) or ``(B, T, Dq)`` (T steps at once, e.g. teacher forcing when the
  queries do not depend on the contexts, as in Luong's model);
- ``keys`` ``(B, S, Dk)``; ``values`` ``(B, S, Dv)``, default the keys;
- ``key_mask`` ``(B, S)`` bool, True at real (non-padding) source positions: padded positions get weight 0, and
  a row with no real position gets zero weights and a zero context (not NaN);
- returns ``output`` (the context) ``(B, [T,] Dv)`` and ``weights`` ``(B, [T,] S)``.

``backward="manual"`` routes the forward through the hand-derived :class:`torch.autograd.Function` (one call per
decoder step): the same numbers, a backward written out by hand instead of autograd's. For the general and concat
scores the projection of the query (general) or the split of ``W_a`` (concat) stays with autograd and the
attention itself goes through the dot-product / additive Function.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnlab._checks import check_backward, check_ndim, check_positive_int, check_tensor, shape_str
from attnlab.functional import attention_backward as manual
from attnlab.functional import scores as fs
from attnlab.functional.sdpa import AttentionOutput

LUONG_SCORES = ("dot", "general", "concat")


class AdditiveAttention(nn.Module):
    r"""Bahdanau et al. 2015 (additive, "concat" in Luong's terms) attention.

    .. math::
        e_{ij} = v^\top \tanh(W s_{i-1} + U h_j + b), \qquad
        \alpha_{ij} = \frac{\exp e_{ij}}{\sum_k \exp e_{ik}}, \qquad c_i = \sum_j \alpha_{ij} h_j

    (eq. 5-6 and appendix A.1.2, where the paper names them ``v_a, W_a, U_a``). The query is the decoder's
    **previous** state ``s_{i-1}``: the context ``c_i`` is then an input of the step that computes ``s_i``
    (``s_i = f(s_{i-1}, y_{i-1}, c_i)``). The keys ``h_j`` are the encoder's annotations (in the paper the
    concatenated forward and backward states of a bidirectional RNN).

    Parameters (legend: A ``attn_size``, Dq ``query_size``, Dk ``key_size``):

    - ``W`` ``(A, Dq)``: projects the decoder state;
    - ``U`` ``(A, Dk)``: projects each key; computed once per key and shared by every decoder step;
    - ``v`` ``(A,)``: reads the score off the tanh layer;
    - ``b`` ``(A,)``, only with ``bias=True``: a bias inside the tanh. The paper's equations write none ("we omit
      all the bias terms"), so the default is ``bias=False``. A bias on the score itself would be pointless: the
      softmax is unchanged by adding the same number to every score.

    Initialisation: each entry uniform in ``(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (fan_in Dq, Dk and A for W, U and
    v), as ``nn.Linear`` does; ``b`` zero. (The paper draws W, U from N(0, 0.001^2) and sets v = 0, which makes
    every initial weight exactly 1/S.)

    Args:
        query_size, key_size, attn_size: Dq, Dk, A.
        bias: add ``b`` inside the tanh.
        backward: ``"autograd"`` or ``"manual"`` (the hand-derived backward,
            :class:`attnlab.functional.attention_backward.AdditiveAttentionFunction`).
    """

    def __init__(
        self,
        query_size: int,
        key_size: int,
        attn_size: int,
        *,
        bias: bool = False,
        backward: str = "autograd",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.query_size = check_positive_int("query_size", query_size)
        self.key_size = check_positive_int("key_size", key_size)
        self.attn_size = check_positive_int("attn_size", attn_size)
        self.backward_mode = check_backward(backward)
        kw = {"device": device, "dtype": dtype}
        self.W = nn.Parameter(torch.empty(attn_size, query_size, **kw))
        self.U = nn.Parameter(torch.empty(attn_size, key_size, **kw))
        self.v = nn.Parameter(torch.empty(attn_size, **kw))
        self.b = nn.Parameter(torch.empty(attn_size, **kw)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p, fan_in in ((self.W, self.query_size), (self.U, self.key_size), (self.v, self.attn_size)):
            nn.init.uniform_(p, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        if self.b is not None:
            nn.init.zeros_(self.b)

    def project_keys(self, keys: Tensor) -> Tensor:
        """``U h_j`` for every key: ``(B, S, Dk)`` -> ``(B, S, A)``. A decoder computes it once per source and
        passes it to every step's :meth:`forward` as ``projected_keys`` (Bahdanau's appendix A.1.2)."""
        check_tensor("keys", keys)
        check_ndim("keys", keys, (3,), "(B, S, Dk)")
        if keys.shape[-1] != self.key_size:
            raise ValueError(f"keys: expected last dim key_size={self.key_size}, got shape {shape_str(keys)}")
        return keys @ self.U.T  # (B, S, Dk) @ (Dk, A) -> (B, S, A)

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor | None = None,
        *,
        key_mask: Tensor | None = None,
        projected_keys: Tensor | None = None,
    ) -> AttentionOutput:
        """``query`` ``(B, Dq)`` = ``s_{i-1}`` or ``(B, T, Dq)``; ``keys`` ``(B, S, Dk)`` = ``h_j``; see the module.

        ``projected_keys``: :meth:`project_keys` of these keys, computed once and reused across decoder steps
        (autograd backward only)."""
        _check_sizes(query, keys, self.query_size, self.key_size)
        if check_backward(self.backward_mode) == "manual":
            if projected_keys is not None:
                raise ValueError("projected_keys: only with backward='autograd' (the manual backward projects itself)")
            return manual.additive_attention_manual(
                query, keys, values, self.W, self.U, self.v, self.b, key_mask=key_mask
            )
        return fs.additive_attention(
            query, keys, values, self.W, self.U, self.v, self.b, key_mask=key_mask, projected_keys=projected_keys
        )

    def extra_repr(self) -> str:
        return (
            f"query_size={self.query_size}, key_size={self.key_size}, attn_size={self.attn_size}, "
            f"bias={self.b is not None}, backward={self.backward_mode!r}"
        )


class LuongAttention(nn.Module):
    r"""Luong et al. 2015 global attention with the dot, general or concat score (their eq. 7-8).

    .. math::
        \mathrm{score}(h_t, \bar h_s) =
        \begin{cases} h_t^\top \bar h_s & \text{dot} \\ h_t^\top W_a \bar h_s & \text{general} \\
        v_a^\top \tanh(W_a [h_t ; \bar h_s]) & \text{concat} \end{cases}, \qquad
        a_t(s) = \frac{\exp \mathrm{score}(h_t, \bar h_s)}{\sum_{s'} \exp \mathrm{score}(h_t, \bar h_{s'})},
        \qquad c_t = \sum_s a_t(s) \bar h_s

    The query is the decoder's **current** state ``h_t`` (Bahdanau's uses the previous one, ``s_{i-1}``): Luong
    computes ``h_t`` first, then ``c_t``, then the attentional state ``htilde_t = tanh(W_c [c_t ; h_t])`` (eq. 5),
    which belongs to the decoder and is not part of this module. The keys ``hbar_s`` are the encoder's top-layer
    states. No scaling: the dot score is ``h_t . hbar_s``, not divided by ``sqrt(D)`` (that is Vaswani's change).

    Parameters (legend: Dq ``query_size``, Dk ``key_size``, A ``attn_size``):

    - dot: none; needs ``Dq == Dk``; ``attn_size`` must be None;
    - general: ``W_a`` ``(Dq, Dk)``; ``attn_size`` must be None;
    - concat: ``W_a`` ``(A, Dq + Dk)`` (its first Dq columns act on ``h_t``, the rest on ``hbar_s``) and
      ``v_a`` ``(A,)``; ``attn_size`` defaults to Dq. This is the additive score with ``W = W_a[:, :Dq]`` and
      ``U = W_a[:, Dq:]``.

    Initialisation: uniform in ``(-1/sqrt(fan_in), 1/sqrt(fan_in))``, fan_in Dk (general), Dq + Dk (concat's
    ``W_a``) and A (``v_a``).

    Args:
        query_size, key_size: Dq, Dk.
        score: ``"dot"``, ``"general"`` or ``"concat"``.
        attn_size: A, for ``"concat"`` only.
        backward: ``"autograd"`` or ``"manual"`` (the hand-derived backward of
            :mod:`attnlab.functional.attention_backward`: the dot-product Function for dot and general, the additive
            Function for concat).
    """

    def __init__(
        self,
        query_size: int,
        key_size: int,
        score: str = "dot",
        attn_size: int | None = None,
        *,
        backward: str = "autograd",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.query_size = check_positive_int("query_size", query_size)
        self.key_size = check_positive_int("key_size", key_size)
        if score not in LUONG_SCORES:
            raise ValueError(f"score: expected one of {LUONG_SCORES}, got {score!r}")
        if score == "dot" and query_size != key_size:
            raise ValueError(
                f"key_size: the dot score needs key_size == query_size = {query_size}, got {key_size} "
                "(use score='general' to compare states of different sizes)"
            )
        if score != "concat" and attn_size is not None:
            raise ValueError(f"attn_size: expected None for score={score!r} (only 'concat' has one), got {attn_size!r}")
        self.score = score
        self.attn_size = None if score != "concat" else query_size if attn_size is None else attn_size
        if self.attn_size is not None:
            check_positive_int("attn_size", self.attn_size)
        self.backward_mode = check_backward(backward)
        kw = {"device": device, "dtype": dtype}
        if score == "general":
            self.W_a = nn.Parameter(torch.empty(query_size, key_size, **kw))
            self.register_parameter("v_a", None)
        elif score == "concat":
            self.W_a = nn.Parameter(torch.empty(self.attn_size, query_size + key_size, **kw))
            self.v_a = nn.Parameter(torch.empty(self.attn_size, **kw))
        else:
            self.register_parameter("W_a", None)
            self.register_parameter("v_a", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.W_a is not None:
            fan_in = self.W_a.shape[1]
            nn.init.uniform_(self.W_a, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        if self.v_a is not None:
            nn.init.uniform_(self.v_a, -1 / math.sqrt(self.attn_size), 1 / math.sqrt(self.attn_size))

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor | None = None, *, key_mask: Tensor | None = None
    ) -> AttentionOutput:
        """``query`` ``(B, Dq)`` = ``h_t`` or ``(B, T, Dq)``; ``keys`` ``(B, S, Dk)`` = ``hbar_s``; see the module."""
        _check_sizes(query, keys, self.query_size, self.key_size)
        by_hand = check_backward(self.backward_mode) == "manual"
        if self.score == "dot":
            attention = manual.dot_attention_manual if by_hand else fs.dot_attention
            return attention(query, keys, values, key_mask=key_mask)
        if self.score == "general":
            attention = manual.general_attention_manual if by_hand else fs.general_attention
            return attention(query, keys, values, self.W_a, key_mask=key_mask)
        attention = manual.concat_attention_manual if by_hand else fs.concat_attention
        return attention(query, keys, values, self.W_a, self.v_a, key_mask=key_mask)

    def extra_repr(self) -> str:
        size = f", attn_size={self.attn_size}" if self.attn_size is not None else ""
        return (
            f"query_size={self.query_size}, key_size={self.key_size}, score={self.score!r}{size}, "
            f"backward={self.backward_mode!r}"
        )


def _check_sizes(query: Tensor, keys: Tensor, query_size: int, key_size: int) -> None:
    """The feature sizes the module was built for (the functional checks do the rest)."""
    for name, x, size, attr, meaning in (
        ("query", query, query_size, "query_size", "(B, Dq) or (B, T, Dq)"),
        ("keys", keys, key_size, "key_size", "(B, S, Dk)"),
    ):
        check_tensor(name, x)
        check_ndim(name, x, (2, 3) if name == "query" else (3,), meaning)
        if x.shape[-1] != size:
            raise ValueError(f"{name}: expected last dimension {attr}={size}, got shape {shape_str(x)}")
