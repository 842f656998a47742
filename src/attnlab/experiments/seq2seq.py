"""What the seq2seq experiments (``bottleneck`` in 3.1; ``alignment`` and ``gradient-paths`` in 3.2) share: the
models at equal parameters, greedy scoring, and the German -> English data with its config.

Every model is an :class:`attnlab.models.seq2seq.Seq2Seq` (bidirectional encoder; a decoder with no attention,
Bahdanau's or Luong's), trained by :func:`attnlab.experiments.training.train`, so that the models an experiment
compares differ in the decoder alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from attnlab.data.seq2seq import DE_EN_PATH, CorpusNotFoundError, Vocab, load_de_en, make_batch, split_pairs, symbol
from attnlab.experiments import checks
from attnlab.models.seq2seq import CELLS, Seq2Seq, Seq2SeqConfig
from attnlab.train.loop import TrainConfig
from attnlab.train.seq2seq import Seq2SeqData, build_vocabs

MAX_HIDDEN = 4096  # the equal-parameter search gives up beyond this hidden size
# the German -> English models: AdamW, 5% warm-up, cosine to a tenth, no weight decay (dropout regularises)
DE_EN_TRAIN = TrainConfig(
    max_iters=3000, lr=2e-3, min_lr=2e-4, warmup_iters=150, weight_decay=0.0, eval_interval=300, eval_iters=2
)


@dataclass(frozen=True)
class DeEnConfig:
    """The German -> English part of an experiment: the example sentences of the Debian dictionary
    ``trans-de-en`` (read by :func:`attnlab.data.seq2seq.load_de_en`, split 90/5/5 by the experiment's seed), with
    sentences of at most ``max_len`` tokens and vocabularies of the tokens seen ``min_freq`` times in training."""

    enabled: bool = True
    path: str = DE_EN_PATH
    max_len: int = 12
    min_freq: int = 2
    emb: int = 128
    dropout: float = 0.3  # a small corpus (~12.6k training pairs): without dropout the models overfit
    batch_size: int = 64
    train: TrainConfig = DE_EN_TRAIN

    # the flat options the part had before it nested (an experiment's RENAMED adds these to its own)
    RENAMED: ClassVar[dict[str, str]] = {"de_en": "de_en.enabled", "de_en_steps": "de_en.train.max_iters"}

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"de_en.enabled: expected true or false, got {self.enabled!r}")
        checks.ints(self, ("max_len", "min_freq", "emb", "batch_size"))
        p = self.dropout
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"de_en.dropout: expected a probability in [0, 1), got {p!r}")


def de_en_part(part: DeEnConfig, seed: int, measure: Callable[[Seq2SeqData, Vocab, Vocab], dict]) -> dict:
    """An experiment's German -> English part: ``measure(data, src_vocab, tgt_vocab)`` on the pairs split by
    ``seed`` (vocabularies built on the training split), with ``status`` "measured"; or what the experiment reports
    instead: ``{"status": "skipped", ...}`` when the part is off, ``{"status": "missing", ...}`` when the corpus is
    not installed."""
    if not part.enabled:
        return {"status": "skipped", "note": "not run in this profile (--de-en.enabled true, or the full profile)"}
    try:
        pairs = load_de_en(part.path, part.max_len)
    except CorpusNotFoundError as err:
        return {"status": "missing", "note": str(err)}
    data = Seq2SeqData(*split_pairs(pairs, seed=seed))
    return {"status": "measured", "note": "", **measure(data, *build_vocabs(data.train, part.min_freq))}


def check_cell(cfg: Any) -> None:
    """The config's recurrent ``cell``: one of :data:`attnlab.models.seq2seq.CELLS`."""
    checks.choice("cell", cfg.cell, CELLS)


def symbol_vocab(n_symbols: int) -> Vocab:
    """The vocabulary of the copy/reverse tasks: the 4 special tokens and the ``n_symbols`` symbols."""
    return Vocab.build([[symbol(i) for i in range(n_symbols)]])


def build(attention: str, hidden: int, vocab: tuple[int, int], emb: int, cell: str, dropout: float = 0.0) -> Seq2Seq:
    """A :class:`Seq2Seq` with ``attention`` (``"none"`` for the fixed vector) at ``hidden`` units; ``vocab`` is
    (source, target) vocabulary sizes."""
    cfg = Seq2SeqConfig(
        src_vocab=vocab[0], tgt_vocab=vocab[1], emb=emb, hidden=hidden, cell=cell, attention=attention, dropout=dropout
    )
    return Seq2Seq(cfg)


def solve_hidden(attention: str, budget: int, vocab: tuple[int, int], emb: int, cell: str) -> int:
    """The hidden size whose model's parameter count (a real model's own count) is nearest ``budget``: the count
    grows with the hidden size, so the search doubles until it passes the budget, then bisects; the nearer of the
    two sizes around the budget wins (ties: the smaller)."""

    def count(h: int) -> int:
        return build(attention, h, vocab, emb, cell).num_parameters()

    if count(1) >= budget:
        return 1
    lo, hi = 1, 2
    while count(hi) < budget:  # invariant: count(lo) < budget
        lo, hi = hi, hi * 2
        if hi > MAX_HIDDEN:
            raise ValueError(f"param_budget: {budget} needs a hidden size above {MAX_HIDDEN} for {attention!r}")
    while hi - lo > 1:  # count(lo) < budget <= count(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < budget else (lo, mid)
    return lo if budget - count(lo) <= count(hi) - budget else hi


@torch.no_grad()
def greedy_scores(model: Seq2Seq, pairs: Sequence, src_vocab: Vocab, tgt_vocab: Vocab, batch_size: int = 256) -> dict:
    """Greedy decoding of ``pairs`` (at most ``len(target) + 5`` tokens each): exact-match accuracy (the output's
    tokens equal the reference's) and per-token accuracy (positions where output and reference have the same token,
    over the longer of the two: a missing or an extra token counts as wrong), as fractions."""
    device = next(model.parameters()).device
    exact, tokens, total = 0, 0, 0
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i : i + batch_size]
        batch = make_batch(chunk, src_vocab, tgt_vocab, device=device)
        limit = max(len(p.tgt) for p in chunk) + 5
        decoded = model.greedy(batch.src, batch.src_lengths, max_len=limit)
        for ids, pair in zip(decoded.tokens, chunk, strict=True):
            hyp = tgt_vocab.decode(ids)
            exact += hyp == list(pair.tgt)
            tokens += sum(h == r for h, r in zip(hyp, pair.tgt, strict=False))
            total += max(len(pair.tgt), len(hyp))
    return {"accuracy": exact / len(pairs), "token_accuracy": tokens / max(total, 1)}


__all__ = ["DeEnConfig", "build", "check_cell", "de_en_part", "greedy_scores", "solve_hidden", "symbol_vocab"]
