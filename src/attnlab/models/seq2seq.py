r"""RNN encoder-decoder (seq2seq) with no attention, Bahdanau's additive attention or Luong's global attention.

Legend: B batch, S source length, T target length, E ``emb``, H ``hidden``, L ``enc_layers``, V target
vocabulary, A attention size (= H). Token ids follow :class:`attnlab.data.seq2seq.Vocab`: PAD 0, BOS 1, EOS 2.

Encoder (shared by every variant)
---------------------------------
Source embeddings ``(B, S, E)`` -> an L-layer **bidirectional** :class:`attnlab.nn.GRU` / :class:`~attnlab.nn.LSTM`
run with ``lengths=`` (padding never reaches a state) -> the annotations ``h_j = [h_j^fwd ; h_j^bwd]``, the
``memory`` ``(B, S, 2H)`` (zeros at padded positions). The top layer's final states, forward at each sequence's
last real position and backward at position 0, concatenated, are the **fixed vector**
``c = [h_fwd ; h_bwd]`` ``(B, 2H)``. The decoder's initial state is ``s_0 = tanh(W_init c + b_init)`` (``(B, H)``;
for the LSTM also ``c_0 = W_initc [c_fwd ; c_bwd] + b_initc`` from the final memory cells). Bahdanau initialise
``s_0`` from the first backward state only; we use both directions for every variant so that they differ in the
attention alone.

Decoders (one step; ``y_{i-1}`` is the previous target token, BOS at the first step)
------------------------------------------------------------------------------------
``"none"``, the fixed-vector bottleneck (Cho et al. 2014's RNN encoder-decoder; Sutskever et al. 2014 feed the
vector only as the initial state): the decoder sees the source only through ``c``, which is its initial state
(``s_0`` above) **and** an input at every step, as in Cho et al. 2014 (their §2.2 conditions both the state update
``h_t = f(h_{t-1}, y_{t-1}, c)`` and the output ``P(y_t | ...) = g(h_t, y_{t-1}, c)`` on ``c``)::

    s_i = f(s_{i-1}, [E y_{i-1} ; c])                       GRU/LSTM cell
    t~_i = U_o s_i + V_o E y_{i-1} + C_o c                  (B, 2H)  deep output
    t_i = maxout(t~_i) = max(t~_{i,2k-1}, t~_{i,2k})        (B, H)
    p(y_i | y_<i, x) = softmax(W_o t_i)                     (B, V)

``"bahdanau"`` (Bahdanau et al. 2015, §3.1 eq. 4-6, appendix A.1.2 and A.2.2): the same decoder, with ``c``
replaced by a context ``c_i`` recomputed at each step from the **previous** state
(:class:`attnlab.nn.AdditiveAttention`)::

    e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)                eq. (6) with A.1.2's alignment model
    a_ij = exp(e_ij) / sum_k exp(e_ik)                      eq. (6)
    c_i = sum_j a_ij h_j                                    eq. (5)
    s_i = f(s_{i-1}, [E y_{i-1} ; c_i])                     §3.1: s_i = f(s_{i-1}, y_{i-1}, c_i)
    t~_i = U_o s_i + V_o E y_{i-1} + C_o c_i                A.2.2, deep output
    t_i = maxout(t~_i), p(y_i | y_<i, x) = softmax(W_o t_i) eq. (4): p(y_i | ...) = g(y_{i-1}, s_i, c_i)

The appendix writes ``U_o s_{i-1}`` in ``t~_i``; we follow eq. (4), ``p(y_i) = g(y_{i-1}, s_i, c_i)``, and use
``s_i`` (as the authors' own GroundHog/dl4mt code does). The three matrices ``U_o, V_o, C_o`` (with one bias) are
one linear layer on ``[s_i ; E y_{i-1} ; c_i]``. With ``"none"`` and ``"bahdanau"`` sharing everything but
``c`` vs ``c_i``, comparing them measures the attention alone.

``"luong-dot" | "luong-general" | "luong-concat"`` (Luong et al. 2015, global attention, eq. 5-8, with input
feeding §3.3): the context is computed from the **current** state, and the attentional state ``h~_t`` is fed to
the next step::

    h_t = f(h_{t-1}, [E y_{t-1} ; h~_{t-1}])                input feeding (§3.3), h~_0 = 0
    a_t(s) = softmax_s(score(h_t, hbar_s))                  eq. (7); score dot/general/concat eq. (8)
    c_t = sum_s a_t(s) hbar_s
    h~_t = tanh(W_c [c_t ; h_t])                            eq. (5)
    p(y_t | y_<t, x) = softmax(W_s h~_t)                    eq. (6)

The keys and values ``hbar_s`` are the memory ``(B, S, 2H)``. Luong's encoder is unidirectional with states of the
decoder's size; ours is bidirectional (2H), so the dot score, which needs equal sizes, scores against keys
summed over the two directions, ``score(h_t, hbar_s) = h_t^T (h_s^fwd + h_s^bwd)`` (as PyTorch's chatbot tutorial
does; the values stay the 2H-wide ``hbar_s``). A learned ``(H, 2H)`` projection of the keys would instead make
"dot" the general score in disguise (``h_t^T W_k hbar_s``); the sum keeps it parameter-free. "general" and
"concat" score the 2H-wide memory directly.

With the LSTM cell the state is ``(h, c)``; the attention's query and the output layer read ``h``.
Dropout (``cfg.dropout``) acts on the embeddings, between encoder layers, and on ``t_i`` / ``h~_t`` before the
output projection.

Decoding
--------
:meth:`Seq2Seq.greedy` and :meth:`Seq2Seq.beam_search` run batched, never emit PAD or BOS (their candidates are
excluded; the log-probabilities reported are those of the model's full softmax, the same as :meth:`Seq2Seq.score`),
and stop a sequence at EOS or after ``max_len`` tokens (default ``2 S + 10``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import check_lengths, check_ndim, check_positive_int, check_tensor, shape_str
from attnlab.data.seq2seq import Vocab
from attnlab.nn import GRU, LSTM, AdditiveAttention, GRUCell, LSTMCell, LuongAttention

CELLS = ("gru", "lstm")
ATTENTIONS = ("none", "bahdanau", "luong-dot", "luong-general", "luong-concat")
PAD, BOS, EOS = Vocab.PAD, Vocab.BOS, Vocab.EOS

# --- config and outputs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seq2SeqConfig:
    """``src_vocab``/``tgt_vocab``: vocabulary sizes (>= 4, the special tokens); ``emb``: E; ``hidden``: H (per
    encoder direction and in the decoder); ``cell``: "gru" or "lstm"; ``attention``: one of :data:`ATTENTIONS`;
    ``enc_layers``: L; ``dropout``: probability in [0, 1)."""

    src_vocab: int
    tgt_vocab: int
    emb: int = 64
    hidden: int = 128
    cell: str = "gru"
    attention: str = "none"
    enc_layers: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name, minimum in (("src_vocab", 4), ("tgt_vocab", 4), ("emb", 1), ("hidden", 1), ("enc_layers", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
        if self.cell not in CELLS:
            raise ValueError(f"cell: expected one of {CELLS}, got {self.cell!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention: expected one of {ATTENTIONS}, got {self.attention!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")

    def to_json(self) -> dict:
        return asdict(self)


class EncoderState(NamedTuple):
    """``memory`` ``(B, S, 2H)`` the encoder's outputs (zeros at padding); ``key_mask`` ``(B, S)`` bool, True at
    real positions; ``init`` the decoder's initial state: ``(B, H)`` (GRU) or a tuple ``(h, c)`` of ``(B, H)``."""

    memory: Tensor
    key_mask: Tensor
    init: Tensor | tuple[Tensor, Tensor]


class Seq2SeqOutput(NamedTuple):
    """``logits`` ``(B, T, V)``; ``loss`` mean cross-entropy over the non-PAD targets, or None without targets;
    ``weights`` ``(B, T, S)`` attention weights, or None for ``attention="none"``."""

    logits: Tensor
    loss: Tensor | None
    weights: Tensor | None


class Decoded(NamedTuple):
    """``tokens``: one list of ids per sequence, without BOS, stopped before EOS; ``log_prob`` ``(B,)``: the model's
    log-probability of each returned sequence, including its final EOS when one was produced (a sequence cut at
    ``max_len`` has none); ``weights``: per sequence ``(len(tokens), src_length)`` attention weights (the rows of the
    steps that produced the returned tokens), or None for ``attention="none"``."""

    tokens: list[list[int]]
    log_prob: Tensor
    weights: list[Tensor] | None


class _Context(NamedTuple):
    """What every decoder step reads, per row (batch or batch x beam): memory ``(B, S, 2H)`` (the values); keys
    ``(B, S, Dk)`` (the memory, its two directions summed for luong-dot, or ``U h_j`` ``(B, S, A)`` for bahdanau,
    projected once for all steps); key_mask ``(B, S)``; the fixed vector
    ``(B, 2H)``."""

    memory: Tensor
    keys: Tensor
    key_mask: Tensor
    fixed: Tensor


class _DecState(NamedTuple):
    """The decoder's recurrent state: ``h`` ``(B, H)`` or ``(h, c)``; ``feed`` Luong's ``h~_{t-1}`` ``(B, H)`` or
    None."""

    h: Tensor | tuple[Tensor, Tensor]
    feed: Tensor | None


class _Hyp(NamedTuple):
    """A beam-search hypothesis: its rank (length-penalised score), model log-prob, tokens and weight rows."""

    rank: float
    log_prob: float
    tokens: list[int]
    weights: Tensor | None


def _select(x, index: Tensor):
    """Rows ``index`` of a tensor, or of every tensor in a (nested) tuple; None stays None."""
    if x is None:
        return None
    if isinstance(x, Tensor):
        return x.index_select(0, index)
    return type(x)(*(_select(v, index) for v in x)) if hasattr(x, "_fields") else tuple(_select(v, index) for v in x)


# --- the model -------------------------------------------------------------------------------------------------


class Seq2Seq(nn.Module):
    """The encoder-decoder of the module docstring. See :class:`Seq2SeqConfig` for the sizes."""

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        if not isinstance(cfg, Seq2SeqConfig):
            raise TypeError(f"cfg: expected a Seq2SeqConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        E, H, V = cfg.emb, cfg.hidden, cfg.tgt_vocab
        self.lstm = cfg.cell == "lstm"
        self.luong = cfg.attention.startswith("luong")
        self.src_embed = nn.Embedding(cfg.src_vocab, E, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(V, E, padding_idx=PAD)
        self.drop = nn.Dropout(cfg.dropout)
        rnn = LSTM if self.lstm else GRU
        enc_dropout = cfg.dropout if cfg.enc_layers > 1 else 0.0
        self.encoder = rnn(E, H, num_layers=cfg.enc_layers, batch_first=True, bidirectional=True, dropout=enc_dropout)
        self.bridge_h = nn.Linear(2 * H, H)  # s_0 = tanh(W_init [h_fwd ; h_bwd] + b)
        self.bridge_c = nn.Linear(2 * H, H) if self.lstm else None  # c_0 = W_initc [c_fwd ; c_bwd] + b
        cell = LSTMCell if self.lstm else GRUCell
        if self.luong:
            score = cfg.attention.split("-", 1)[1]
            self.attention = LuongAttention(H, H if score == "dot" else 2 * H, score=score)
            self.cell = cell(E + H, H)  # input [E y_{t-1} ; h~_{t-1}]
            self.combine = nn.Linear(2 * H + H, H, bias=False)  # W_c of eq. (5), on [c_t ; h_t]
            self.deep_out = None
        else:
            self.attention = AdditiveAttention(H, 2 * H, H) if cfg.attention == "bahdanau" else None
            self.cell = cell(E + 2 * H, H)  # input [E y_{i-1} ; c_i]
            self.combine = None
            self.deep_out = nn.Linear(H + E + 2 * H, 2 * H)  # [U_o | V_o | C_o] on [s_i ; E y_{i-1} ; c_i]
        self.proj = nn.Linear(H, V)  # W_o (Bahdanau) / W_s (Luong eq. 6)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- encoder -----------------------------------------------------------------------------------------------

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderState:
        """``src`` ``(B, S)`` long token ids, ``src_lengths`` ``(B,)`` in [1, S]: see :class:`EncoderState`."""
        lengths = self._check_src(src, src_lengths)
        S = src.shape[1]
        x = self.drop(self.src_embed(src))  # (B, S, E)
        memory, final = self.encoder(x, lengths=lengths)  # (B, S, 2H); h_n (2L, B, H) [, c_n (2L, B, H)]
        lens = torch.as_tensor(lengths, device=src.device)
        key_mask = torch.arange(S, device=src.device) < lens.unsqueeze(1)  # (1, S) < (B, 1) -> (B, S)
        h_n = final[0] if self.lstm else final
        fixed = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # top layer [h_fwd ; h_bwd]: (B, 2H)
        init_h = torch.tanh(self.bridge_h(fixed))  # s_0: (B, 2H) -> (B, H)
        if self.lstm:
            c_n = final[1]
            init = (init_h, self.bridge_c(torch.cat([c_n[-2], c_n[-1]], dim=-1)))  # c_0 (B, H)
        else:
            init = init_h
        return EncoderState(memory, key_mask, init)

    # --- decoder -----------------------------------------------------------------------------------------------

    def _context(self, enc: EncoderState) -> _Context:
        # contiguous: beam search selects rows (a copy, contiguous), and the same layout gives the same numbers
        memory, key_mask = enc.memory.contiguous(), enc.key_mask
        H = self.cfg.hidden
        # luong-dot: hbar_s = h_s^fwd + h_s^bwd, (B, S, H), no parameters; the others: the memory (B, S, 2H)
        keys = memory[..., :H] + memory[..., H:] if self.cfg.attention == "luong-dot" else memory
        if self.cfg.attention == "bahdanau":  # U h_j once per source, not at every decoder step: (B, S, A)
            keys = self.attention.project_keys(memory)
        # The fixed vector from the memory: forward half at the last real position, backward half at position 0
        # (equal to the top layer's final states, since the layer runs with lengths=).
        last = key_mask.sum(1) - 1  # (B,)
        rows = torch.arange(memory.shape[0], device=memory.device)
        fixed = torch.cat([memory[rows, last, :H], memory[:, 0, H:]], dim=-1)  # (B, H) ; (B, H) -> (B, 2H)
        return _Context(memory, keys, key_mask, fixed)

    def _initial(self, enc: EncoderState) -> _DecState:
        h0 = enc.init[0] if self.lstm else enc.init
        feed = h0.new_zeros(h0.shape) if self.luong else None  # h~_0 = 0: (B, H)
        return _DecState(enc.init, feed)

    def _step(self, ctx: _Context, y_emb: Tensor, state: _DecState) -> tuple[Tensor, _DecState, Tensor | None]:
        """One decoder step: ``y_emb`` ``(B, E)`` = E y_{i-1} -> logits ``(B, V)``, new state, weights ``(B, S)``."""
        if self.luong:
            x = torch.cat([y_emb, state.feed], dim=-1)  # input feeding §3.3: [E y_{t-1} ; h~_{t-1}] (B, E + H)
            h = self.cell(x, state.h)  # h_t = f(h_{t-1}, x_t)
            h_top = h[0] if self.lstm else h  # (B, H)
            c, weights = self.attention(h_top, ctx.keys, ctx.memory, key_mask=ctx.key_mask)  # eq. (7)-(8): (B, 2H)
            h_tilde = torch.tanh(self.combine(torch.cat([c, h_top], dim=-1)))  # eq. (5): (B, 3H) -> (B, H)
            logits = self.proj(self.drop(h_tilde))  # eq. (6): W_s h~_t, (B, H) -> (B, V)
            return logits, _DecState(h, h_tilde), weights
        s_prev = state.h[0] if self.lstm else state.h  # (B, H)
        if self.attention is not None:
            # eq. (5)-(6) Bahdanau 2015: e_ij = v^T tanh(W s_{i-1} + U h_j), c_i = sum_j a_ij h_j: (B, 2H)
            c, weights = self.attention(s_prev, ctx.memory, key_mask=ctx.key_mask, projected_keys=ctx.keys)
        else:
            c, weights = ctx.fixed, None  # Cho et al. 2014: the same fixed vector c at every step
        h = self.cell(torch.cat([y_emb, c], dim=-1), state.h)  # §3.1 Bahdanau 2015: s_i = f(s_{i-1}, y_{i-1}, c_i)
        s = h[0] if self.lstm else h  # (B, H)
        t_tilde = self.deep_out(torch.cat([s, y_emb, c], dim=-1))  # U_o s_i + V_o E y_{i-1} + C_o c_i: (B, 2H)
        t = t_tilde.unflatten(-1, (-1, 2)).amax(-1)  # maxout over pairs: (B, H, 2) -> (B, H)
        logits = self.proj(self.drop(t))  # eq. (4): g(y_{i-1}, s_i, c_i) = softmax(W_o t_i); (B, H) -> (B, V)
        return logits, _DecState(h, None), weights

    def decode(self, enc: EncoderState, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: ``tgt_in`` ``(B, T)`` = ``[BOS y_1 .. y_m]`` -> logits ``(B, T, V)`` and the attention
        weights ``(B, T, S)`` (None for ``attention="none"``)."""
        B = enc.memory.shape[0]
        tgt_in = check_tensor("tgt_in", tgt_in)
        check_ndim("tgt_in", tgt_in, (2,), "(B, T) target token ids")
        self._check_ids("tgt_in", tgt_in, self.cfg.tgt_vocab)
        if tgt_in.shape[0] != B or tgt_in.shape[1] < 1:
            raise ValueError(
                f"tgt_in: expected shape ({B}, T) with T >= 1 (B from the source), got {shape_str(tgt_in)}"
            )
        ctx, state = self._context(enc), self._initial(enc)
        emb = self.drop(self.tgt_embed(tgt_in))  # (B, T, E)
        logits, weights = [], []
        for y_emb in emb.unbind(1):  # each (B, E)
            step_logits, state, w = self._step(ctx, y_emb, state)
            logits.append(step_logits)
            weights.append(w)
        out_w = None if self.attention is None else torch.stack(weights, dim=1)  # T x (B, S) -> (B, T, S)
        return torch.stack(logits, dim=1), out_w  # T x (B, V) -> (B, T, V)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, tgt_out: Tensor | None = None) -> Seq2SeqOutput:
        """Encode, decode with teacher forcing, and (with ``tgt_out`` ``(B, T)``) the mean cross-entropy over the
        non-PAD targets."""
        logits, weights = self.decode(self.encode(src, src_lengths), tgt_in)
        loss = None
        if tgt_out is not None:
            tgt_out = check_tensor("tgt_out", tgt_out)
            if tgt_out.shape != tgt_in.shape:
                raise ValueError(f"tgt_out: expected the shape of tgt_in {shape_str(tgt_in)}, got {shape_str(tgt_out)}")
            loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD)  # (B*T, V), (B*T,)
        return Seq2SeqOutput(logits, loss, weights)

    def score(self, src: Tensor, src_lengths: Tensor, tgt_out: Tensor) -> Tensor:
        """``log p(y | x) = sum_i log p(y_i | y_<i, x)`` ``(B,)`` of the targets ``tgt_out`` ``(B, T)`` =
        ``[y_1 .. y_m EOS PAD ..]`` (PAD positions ignored; without an EOS, the log-prob of the prefix)."""
        tgt_out = check_tensor("tgt_out", tgt_out)
        check_ndim("tgt_out", tgt_out, (2,), "(B, T) target token ids")
        bos = tgt_out.new_full((tgt_out.shape[0], 1), BOS)
        tgt_in = torch.cat([bos, tgt_out[:, :-1]], dim=1)  # [BOS y_1 .. y_m]: (B, T)
        logits, _ = self.decode(self.encode(src, src_lengths), tgt_in)
        logp = F.log_softmax(logits, dim=-1).gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1)  # (B, T)
        return logp.masked_fill(tgt_out == PAD, 0.0).sum(1)  # (B,)

    # --- generation --------------------------------------------------------------------------------------------

    @staticmethod
    def _candidates(logp: Tensor) -> Tensor:
        """Log-probs with PAD and BOS ruled out as outputs (they are never targets)."""
        return logp.index_fill(-1, torch.tensor([PAD, BOS], device=logp.device), -math.inf)

    @torch.no_grad()
    def greedy(self, src: Tensor, src_lengths: Tensor, max_len: int | None = None) -> Decoded:
        """The most probable token at every step, for the whole batch at once; see :class:`Decoded`.
        ``max_len``: most tokens per sequence, EOS included (default ``2 S + 10``)."""
        enc = self.encode(src, src_lengths)
        return self._greedy(enc, self._max_len(max_len, src))

    def _greedy(self, enc: EncoderState, max_len: int) -> Decoded:
        B = enc.memory.shape[0]
        ctx, state = self._context(enc), self._initial(enc)
        y = enc.key_mask.new_full((B,), BOS, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool, device=y.device)
        log_prob = enc.memory.new_zeros(B)
        tokens, weights = [], []
        for _ in range(max_len):
            logits, state, w = self._step(ctx, self.drop(self.tgt_embed(y)), state)
            logp = F.log_softmax(logits, dim=-1)  # (B, V)
            y = self._candidates(logp).argmax(-1)  # (B,)
            log_prob = log_prob + torch.where(done, 0.0, logp.gather(1, y.unsqueeze(1)).squeeze(1))
            tokens.append(y)
            weights.append(w)
            done = done | (y == EOS)
            if bool(done.all()):
                break
        ids = torch.stack(tokens, dim=1).tolist()  # (B, steps)
        out = [row[: row.index(EOS)] if EOS in row else row for row in ids]
        w_all = None if self.attention is None else torch.stack(weights, dim=1)  # (B, steps, S)
        return Decoded(out, log_prob, self._weight_rows(w_all, out, enc.key_mask))

    @staticmethod
    def _weight_rows(w_all: Tensor | None, tokens: list[list[int]], key_mask: Tensor) -> list[Tensor] | None:
        if w_all is None:
            return None
        lengths = key_mask.sum(1).tolist()
        return [w_all[b, : len(t), : lengths[b]] for b, t in enumerate(tokens)]  # (L_b, S_b)

    @torch.no_grad()
    def beam_search(
        self,
        src: Tensor,
        src_lengths: Tensor,
        beam_size: int = 4,
        max_len: int | None = None,
        length_penalty: float = 0.0,
    ) -> Decoded:
        r"""Beam search, batched over ``B x beam_size`` rows; see :class:`Decoded`.

        Each step extends every live hypothesis by every token (PAD and BOS excluded), keeps the ``beam_size``
        best non-EOS extensions alive, and moves the EOS extensions that rank among the ``beam_size`` best to the
        finished list. Hypotheses are ranked
        by ``log p / lp(n)`` with GNMT's ``lp(n) = ((5 + n) / 6) ** length_penalty`` (Wu et al. 2016; n tokens,
        EOS included); ``length_penalty = 0`` ranks by the log-prob itself. A sequence stops when the best
        finished hypothesis ranks at least as high as any live one could ever reach (live log-probs only fall;
        ``lp`` is at most ``lp(max_len)``), or after ``max_len`` steps; then unfinished live hypotheses compete
        too, scored without an EOS, as :meth:`greedy` scores a sequence it cuts at ``max_len``.

        Beam search does not by itself dominate greedy decoding: greedy's prefix can drop out of the beam, and the
        prefixes that pushed it out can end worse. With ``beam_size > 1`` greedy's hypothesis is therefore also a
        candidate, so the result never ranks below greedy's (for ``length_penalty = 0``: never a lower model
        log-prob). ``beam_size = 1`` is greedy decoding itself (same tokens, same log-probs).
        """
        check_positive_int("beam_size", beam_size)
        if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) or length_penalty < 0:
            raise ValueError(f"length_penalty: expected a number >= 0, got {length_penalty!r}")
        enc = self.encode(src, src_lengths)
        max_len = self._max_len(max_len, src)
        found = self._beam(enc, beam_size, max_len, float(length_penalty))
        if beam_size > 1:
            greedy = self._greedy(enc, max_len)
            for b, hyp in enumerate(found):
                g_tokens = greedy.tokens[b]
                g_len = len(g_tokens) + (len(g_tokens) < max_len)  # + EOS unless cut at max_len
                g_logp = float(greedy.log_prob[b])
                g_rank = g_logp / _lp(g_len, float(length_penalty))
                if g_rank > hyp.rank:
                    w = None if greedy.weights is None else greedy.weights[b]
                    found[b] = _Hyp(g_rank, g_logp, g_tokens, w)
        log_prob = torch.tensor([h.log_prob for h in found], dtype=enc.memory.dtype, device=enc.memory.device)
        weights = None if self.attention is None else [h.weights for h in found]
        return Decoded([h.tokens for h in found], log_prob, weights)

    def _beam(self, enc: EncoderState, k: int, max_len: int, alpha: float) -> list[_Hyp]:
        B, S = enc.key_mask.shape
        dev = enc.memory.device
        rows = torch.arange(B, device=dev).repeat_interleave(k)  # (B*k,): row b*k + j is beam j of sequence b
        ctx = _select(self._context(enc), rows)
        state = _select(self._initial(enc), rows)
        scores = enc.memory.new_full((B, k), -math.inf)
        scores[:, 0] = 0.0  # one live hypothesis (BOS) at the start
        y = torch.full((B * k,), BOS, dtype=torch.long, device=dev)
        hist = torch.zeros(B, k, 0, dtype=torch.long, device=dev)  # (B, k, t) tokens so far
        hist_w = enc.memory.new_zeros(B, k, 0, S) if self.attention is not None else None  # (B, k, t, S)
        finished: list[list[_Hyp]] = [[] for _ in range(B)]
        done = [False] * B
        lengths = enc.key_mask.sum(1).tolist()
        lp_max = _lp(max_len, alpha)
        for t in range(max_len):
            logits, state, w = self._step(ctx, self.drop(self.tgt_embed(y)), state)
            V = logits.shape[-1]
            logp = F.log_softmax(logits, dim=-1).view(B, k, V)  # (B*k, V) -> (B, k, V)
            cand = self._candidates(scores.unsqueeze(-1) + logp)  # log p(prefix) + log p(y | prefix): (B, k, V)
            top_scores, top_idx = cand.view(B, k * V).topk(min(2 * k, k * V), dim=1)  # (B, 2k), best first
            step_w = None if w is None else w.view(B, k, S)
            # the next live beams, as Python lists (filled in below): score, parent beam, token; -inf = unused slot
            new_scores = [[-math.inf] * k for _ in range(B)]
            new_beam = [[0] * k for _ in range(B)]
            new_tok = [[EOS] * k for _ in range(B)]
            top_scores_l, top_idx_l = top_scores.tolist(), top_idx.tolist()
            for b in range(B):
                alive = 0
                for rank, (s, idx) in enumerate(zip(top_scores_l[b], top_idx_l[b], strict=True)):
                    if s == -math.inf:
                        break
                    beam, tok = divmod(idx, V)
                    if tok == EOS:
                        # only among the k best extensions, as the live ones are (so k = 1 is greedy decoding)
                        if rank < k and not done[b]:  # t tokens + EOS; the weight rows of the t tokens
                            weights = None if hist_w is None else _trim(hist_w[b, beam], t, lengths[b])
                            finished[b].append(_Hyp(s / _lp(t + 1, alpha), s, hist[b, beam].tolist(), weights))
                    elif alive < k:
                        new_scores[b][alive], new_beam[b][alive], new_tok[b][alive] = s, beam, tok
                        alive += 1
            new_beam = torch.tensor(new_beam, dtype=torch.long, device=dev)  # (B, k)
            new_tok = torch.tensor(new_tok, dtype=torch.long, device=dev)  # (B, k)
            # keep the chosen beams' histories and states, then append the new tokens and weights
            hist = torch.cat([hist.gather(1, new_beam.unsqueeze(-1).expand_as(hist)), new_tok.unsqueeze(-1)], dim=2)
            if hist_w is not None:
                idx = new_beam[:, :, None, None].expand(B, k, t, S)
                picked_w = step_w.gather(1, new_beam[:, :, None].expand(B, k, S))  # (B, k, S)
                hist_w = torch.cat([hist_w.gather(1, idx), picked_w.unsqueeze(2)], dim=2)  # (B, k, t + 1, S)
            flat = (torch.arange(B, device=dev).unsqueeze(1) * k + new_beam).flatten()  # (B*k,) parent rows
            state = _select(state, flat)
            scores, y = torch.tensor(new_scores, dtype=scores.dtype, device=dev), new_tok.flatten()
            best_alive = scores.max(1).values.tolist()  # (B,)
            for b in range(B):
                if done[b]:
                    continue
                best_done = max((h.rank for h in finished[b]), default=-math.inf)
                # a live hypothesis can at best keep its log-prob and reach the largest lp: lp(max_len)
                if best_alive[b] == -math.inf or (finished[b] and best_done >= best_alive[b] / lp_max):
                    done[b] = True
            if all(done):
                break
        out = []
        for b in range(B):
            pool = list(finished[b])
            if not done[b]:  # cut at max_len: the live hypotheses compete, scored without an EOS
                for j in range(k):
                    s = float(scores[b, j])
                    if s > -math.inf:
                        weights = None if hist_w is None else _trim(hist_w[b, j], hist.shape[2], lengths[b])
                        pool.append(_Hyp(s / _lp(hist.shape[2], alpha), s, hist[b, j].tolist(), weights))
            out.append(max(pool, key=lambda h: h.rank))  # first of equals: the earliest found
        return out

    # --- checks ------------------------------------------------------------------------------------------------

    def _max_len(self, max_len: int | None, src: Tensor) -> int:
        if max_len is None:
            return 2 * src.shape[1] + 10
        return check_positive_int("max_len", max_len)

    def _check_src(self, src: Tensor, src_lengths: Tensor) -> list[int]:
        src = check_tensor("src", src)
        check_ndim("src", src, (2,), "(B, S) source token ids")
        self._check_ids("src", src, self.cfg.src_vocab)
        if src.shape[1] < 1:
            raise ValueError(f"src: expected a source length S >= 1, got shape {shape_str(src)}")
        return check_lengths(src_lengths, src.shape[0], src.shape[1])

    @staticmethod
    def _check_ids(name: str, ids: Tensor, vocab: int) -> None:
        if ids.dtype != torch.long:
            raise TypeError(f"{name}: expected a torch.long tensor of token ids, got dtype {ids.dtype}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise ValueError(f"{name}: expected ids in [0, {vocab}), got min {int(ids.min())}, max {int(ids.max())}")


def _lp(n: int, alpha: float) -> float:
    """GNMT's length penalty ``((5 + n) / 6) ** alpha`` (1 for alpha = 0)."""
    return ((5 + n) / 6) ** alpha


def _trim(weights: Tensor | None, n_tokens: int, src_len: int) -> Tensor | None:
    """The weight rows of the ``n_tokens`` returned tokens, over the ``src_len`` real source positions."""
    return None if weights is None else weights[:n_tokens, :src_len]
