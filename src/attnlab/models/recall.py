r"""Recall classifiers: name the symbol seen at the start of a sequence (:func:`attnlab.data.recall_batch`).

The lab's memory task (``vanishing-gradients``, ``long-range``): a symbol out of K, d distractors, a query; the
model must name the symbol. Two readers of the same tokens:

- :class:`RecallRNN`: ``Embedding(V, E) -> attnlab.nn.{RNN, LSTM, GRU}(E, H) -> Linear(H, K)`` on the final
  state at each sequence's last valid step (``lengths=``): the symbol reaches the output only through every
  state in between.
- :class:`RecallAttention`: ``Embedding + learned positions -> one pre-norm TransformerEncoderLayer -> Linear``
  read at the query position: the symbol is one attention step from the query at any distance.

Both return :class:`RecallOutput` ``(logits, loss)``, the loss (cross-entropy) when targets are given, so that
the project's :class:`~attnlab.train.loop.Trainer` trains them as it trains the GPT.

The LSTM's forget-gate bias: PyTorch initialises every bias uniformly in ``(-1/sqrt(H), 1/sqrt(H))``, so each
forget gate starts near ``sigma(0) = 0.5`` and the cell state ``c_t = f_t c_{t-1} + i_t g_t`` halves per step.
Gers et al. (2000) start the forget gates open (positive biases) and Jozefowicz et al. (2015) recommend a bias of
1 (``f ~ sigma(1) = 0.73``); ``forget_bias=1.0`` sets ``b_f`` so (``bias_ih``'s forget block to 1, ``bias_hh``'s to
0: their sum is the bias), ``None`` keeps PyTorch's initialisation.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.nn import GRU, LSTM, RNN, LearnedPositionalEmbedding, TransformerEncoderLayer

CELLS: dict[str, type[nn.Module]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
ATTENTION_HEADS = 2


class RecallOutput(NamedTuple):
    """logits ``(B, K)``; loss: mean cross-entropy against the targets, or None without them."""

    logits: Tensor
    loss: Tensor | None


def _output(logits: Tensor, targets: Tensor | None) -> RecallOutput:
    return RecallOutput(logits, None if targets is None else F.cross_entropy(logits, targets))


class RecallRNN(nn.Module):
    """``Embedding -> recurrent layer -> Linear`` on the final state at each sequence's last valid step."""

    def __init__(
        self,
        cell: str,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        n_classes: int,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell: expected one of {', '.join(CELLS)}, got {cell!r}")
        if forget_bias is not None and cell != "lstm":
            raise ValueError(f"forget_bias: only an LSTM has a forget gate, got cell {cell!r}")
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.rnn = CELLS[cell](embed_size, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, n_classes)
        if forget_bias is not None:
            H = hidden_size
            with torch.no_grad():  # packing i|f|g|o: the forget gate's rows are [H, 2H)
                self.rnn.bias_ih_l0[H : 2 * H].fill_(forget_bias)
                self.rnn.bias_hh_l0[H : 2 * H].zero_()

    def forward(self, tokens: Tensor, lengths: Tensor, targets: Tensor | None = None) -> RecallOutput:
        """tokens ``(B, T)``, lengths ``(B,)`` valid steps, targets ``(B,)`` symbol ids."""
        x = self.embed(tokens)  # (B, T, E)
        _, h_n = self.rnn(x, lengths=lengths)  # h_n (L*D, B, H), taken at step lengths - 1
        if isinstance(h_n, tuple):  # LSTM: (h_n, c_n); the readout sees h, as for the other cells
            h_n = h_n[0]
        return _output(self.readout(h_n[-1]), targets)  # (B, H) -> (B, K) logits


class RecallAttention(nn.Module):
    """``Embedding + learned positions -> one pre-norm transformer block -> Linear`` read at the query position.

    Width C, 2 heads, FFN width 2C; padded positions are masked out as keys."""

    def __init__(self, vocab_size: int, width: int, max_len: int, n_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.pos = LearnedPositionalEmbedding(max_len, width)
        self.block = TransformerEncoderLayer(width, ATTENTION_HEADS, 2 * width, dropout=0.0, norm_first=True)
        self.norm = nn.LayerNorm(width)
        self.readout = nn.Linear(width, n_classes)

    def forward(self, tokens: Tensor, lengths: Tensor, targets: Tensor | None = None) -> RecallOutput:
        T = tokens.shape[1]
        key_mask = torch.arange(T, device=tokens.device) < lengths.unsqueeze(1)  # (B, T): True at real tokens
        x, _ = self.block(self.pos(self.embed(tokens)), key_mask=key_mask)  # (B, T, C)
        query = x[torch.arange(len(tokens), device=tokens.device), lengths - 1]  # (B, C): the query position
        return _output(self.readout(self.norm(query)), targets)  # (B, K) logits


def recall_params(cell: str, vocab_size: int, embed_size: int, hidden: int, n_classes: int) -> int:
    """Parameters of :class:`RecallRNN`: embedding V E, G (E H + H^2 + 2 H) recurrent (G gates), readout H K + K."""
    gates = CELLS[cell].CELL.GATES
    E, H, K = embed_size, hidden, n_classes
    return vocab_size * E + gates * (E * H + H * H + 2 * H) + H * K + K


__all__ = ["ATTENTION_HEADS", "CELLS", "RecallAttention", "RecallOutput", "RecallRNN", "recall_params"]
