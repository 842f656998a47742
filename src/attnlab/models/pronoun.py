r"""The pronoun model of the lab's ``pronoun`` experiment: a small bidirectional transformer that names the word
a position stands for.

One objective for two kinds of sentence (:mod:`attnlab.data.pronoun`): the hidden word at ``[MASK]`` in a lexicon
sentence ("the donkey was [MASK]"), and the referent noun at "it" in a pronoun sentence ("the animal didn't cross
the street because it was too tired" -> animal): cross-entropy over the whole vocabulary at the target positions.
Word embedding + learned positions -> ``num_layers`` pre-norm :class:`attnlab.nn.TransformerEncoderLayer` blocks
(bidirectional self-attention, padding masked out) -> LayerNorm -> logits through the embedding's transpose
(tied). With ``need_weights`` it returns every layer's attention weights, which the experiment reads from "it".
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.nn import LearnedPositionalEmbedding, TransformerEncoderLayer


class PronounOutput(NamedTuple):
    """logits ``(B, T, V)``; loss (mean cross-entropy at the target positions) or None; weights: one
    ``(B, nh, T, T)`` tensor per layer when asked for, else None."""

    logits: Tensor
    loss: Tensor | None
    weights: list[Tensor] | None


class PronounModel(nn.Module):
    """Embedding + learned positions -> bidirectional pre-norm transformer blocks -> LayerNorm -> tied logits."""

    def __init__(self, vocab_size: int, max_len: int, d_model: int, nhead: int, num_layers: int, pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, d_model)  # also the output layer (tied)
        self.pos = LearnedPositionalEmbedding(max_len, d_model)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, nhead, 4 * d_model, 0.0, "gelu", norm_first=True)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        nn.init.normal_(self.embed.weight, std=0.02)  # GPT-2's scale: N(0, 1) rows would give logits of std ~sqrt(C)

    def forward(self, tokens: Tensor, targets: Tensor | None = None, *, need_weights: bool = False) -> PronounOutput:
        """tokens ``(B, T)`` (``pad_id`` marks padding); targets ``(B, T)`` word ids, -1 where there is none."""
        key_mask = tokens != self.pad_id  # (B, S): True at real words
        x = self.pos(self.embed(tokens))  # (B, T, C)
        weights = []
        for layer in self.layers:
            x, w = layer(x, key_mask=key_mask, need_weights=need_weights)  # (B, T, C), (B, nh, T, S)
            weights.append(w)
        logits = self.norm(x) @ self.embed.weight.t()  # (B, T, C) @ (C, V) -> (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return PronounOutput(logits, loss, weights if need_weights else None)


__all__ = ["PronounModel", "PronounOutput"]
