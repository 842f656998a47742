"""What the seq2seq experiments (``bottleneck``, ``alignment``, ``gradient-paths``) share: the equal-parameter
rule, one training recipe over the project's Trainer, greedy scoring, and running on one CPU thread.

Every model is an :class:`attnlab.models.seq2seq.Seq2Seq` (bidirectional encoder; a decoder with no attention,
Bahdanau's or Luong's), trained by :func:`attnlab.train.seq2seq.fit` (the project's
:class:`~attnlab.train.loop.Trainer`: AdamW, linear warm-up then cosine decay to a tenth of the peak learning rate,
gradient-norm clipping), so that the models an experiment compares differ in the decoder alone.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from attnlab.data.seq2seq import CorpusNotFoundError, Vocab, load_de_en, make_batch, split_pairs, symbol
from attnlab.models.seq2seq import ATTENTIONS, CELLS, Seq2Seq, Seq2SeqConfig
from attnlab.train.loop import TrainConfig
from attnlab.train.seq2seq import Seq2SeqData, build_vocabs, fit

MAX_HIDDEN = 4096  # the equal-parameter search gives up beyond this hidden size


def check_attentions(name: str, value: object, *, minimum: int = 1) -> None:
    """A config's tuple of decoder kinds: distinct names from :data:`attnlab.models.seq2seq.ATTENTIONS`."""
    if (
        not isinstance(value, tuple)
        or len(value) < minimum
        or any(a not in ATTENTIONS for a in value)
        or len(set(value)) != len(value)
    ):
        raise ValueError(f"{name}: expected at least {minimum} distinct names from {ATTENTIONS}, got {value!r}")


def check_ints(cfg: object, names: Sequence[str], minimum: int = 1) -> None:
    """Each named config field is an integer >= ``minimum`` (ValueError naming the field)."""
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def check_fractions(cfg: object, names: Sequence[str]) -> None:
    """Each named config field is a number in (0, 1]."""
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ValueError(f"{name}: expected a number in (0, 1], got {value!r}")


def check_positive(cfg: object, names: Sequence[str]) -> None:
    """Each named config field is a positive finite number."""
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"{name}: expected a positive finite number, got {value!r}")


def check_cell(cfg: object) -> None:
    """The config's recurrent ``cell``: one of :data:`attnlab.models.seq2seq.CELLS`."""
    if cfg.cell not in CELLS:
        raise ValueError(f"cell: expected 'gru' or 'lstm', got {cfg.cell!r}")


def check_de_en_switches(cfg: object) -> None:
    """``de_en_dropout`` a probability in [0, 1) and ``de_en`` a bool, for configs with a German -> English part."""
    p = cfg.de_en_dropout
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"de_en_dropout: expected a probability in [0, 1), got {p!r}")
    if not isinstance(cfg.de_en, bool):
        raise ValueError(f"de_en: expected true or false, got {cfg.de_en!r}")


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the body on one intra-op thread (restored after). These models step through time in Python on tensors
    of a few thousand elements: extra threads only add synchronisation (measured on 2 busy cores: a Bahdanau step at
    batch 64, length 20, hidden 64 took 66 ms on one thread and 530 ms on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def symbol_vocab(n_symbols: int) -> Vocab:
    """The vocabulary of the copy/reverse tasks: the 4 special tokens and the ``n_symbols`` symbols."""
    return Vocab.build([[symbol(i) for i in range(n_symbols)]])


def de_en_data(cfg: Any) -> tuple[Seq2SeqData, Vocab, Vocab] | dict:
    """The German -> English part's data for a config with ``de_en``, ``de_en_path``, ``de_en_max_len``,
    ``de_en_min_freq`` and ``seed``: pairs split by ``seed`` with vocabularies built on the training split. Or the
    result an experiment reports instead: ``{"status": "skipped", ...}`` when ``de_en`` is off,
    ``{"status": "missing", ...}`` when the corpus is not installed."""
    if not cfg.de_en:
        return {"status": "skipped", "note": "not run in this profile (--de-en true, or the full profile, runs it)"}
    try:
        pairs = load_de_en(cfg.de_en_path, cfg.de_en_max_len)
    except CorpusNotFoundError as err:
        return {"status": "missing", "note": str(err)}
    data = Seq2SeqData(*split_pairs(pairs, seed=cfg.seed))
    return (data, *build_vocabs(data.train, cfg.de_en_min_freq))


def model_config(
    attention: str, hidden: int, src_vocab: int, tgt_vocab: int, emb: int, cell: str, dropout: float = 0.0
) -> Seq2SeqConfig:
    return Seq2SeqConfig(
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        emb=emb,
        hidden=hidden,
        cell=cell,
        attention=attention,
        dropout=dropout,
    )


def param_count(attention: str, hidden: int, src_vocab: int, tgt_vocab: int, emb: int, cell: str) -> int:
    """The parameter count of a real model of that configuration (built and counted: the count is the model's own).
    (Not on the meta device: its first use costs ~2.5 s of imports, more than all the builds of a search.)"""
    return Seq2Seq(model_config(attention, hidden, src_vocab, tgt_vocab, emb, cell)).num_parameters()


def solve_hidden(attention: str, budget: int, src_vocab: int, tgt_vocab: int, emb: int, cell: str) -> int:
    """The hidden size whose model's parameter count is nearest ``budget`` (the equal-parameter rule).

    The count grows with the hidden size, so the search doubles until it passes the budget, then bisects; the
    nearer of the two sizes around the budget wins (ties: the smaller)."""

    def count(h: int) -> int:
        return param_count(attention, h, src_vocab, tgt_vocab, emb, cell)

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


def train_model(
    model: Seq2Seq,
    get_batch: Callable[[str, torch.Generator], tuple[Tensor, ...]],
    *,
    steps: int,
    lr: float,
    seed: int,
    device: str,
    warmup: int | None = None,
    grad_clip: float = 1.0,
    weight_decay: float = 0.0,
    evals: int = 10,
    eval_iters: int = 2,
) -> dict[str, Any]:
    """Train ``model`` with the project's Trainer (via :func:`attnlab.train.seq2seq.fit`) for ``steps`` iterations.

    AdamW at peak ``lr`` after ``warmup`` linear warm-up steps (default 5% of the steps), cosine decay to ``lr/10``,
    clipping at ``grad_clip``; the data stream is seeded with ``seed``, so two models trained with the same seed
    see the same batches. Loss is evaluated ``evals`` times (``eval_iters`` batches each). Returns the loss history
    ``[{"iter", "train", "val"}]``, the training seconds and the final training loss; the model ends in eval mode.
    """
    warmup = max(1, steps // 20) if warmup is None else warmup
    train_cfg = TrainConfig(
        max_iters=steps,
        lr=lr,
        min_lr=lr / 10,
        warmup_iters=min(warmup, steps - 1),
        weight_decay=weight_decay,
        grad_clip=grad_clip,
        eval_interval=max(1, steps // evals),
        eval_iters=eval_iters,
        ckpt_interval=steps,
        seed=seed,
        device=device,
    )
    trainer = fit(model, get_batch, train_cfg, progress=sys.stderr.isatty())
    history = [{"iter": h["iter"], "train": h["train"], "val": h["val"]} for h in trainer.history]
    return {"history": history, "seconds": round(trainer.elapsed, 3), "final_loss": trainer.last_loss}


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
