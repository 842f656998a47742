"""``attnlab train seq2seq`` / ``resume`` / ``sample``: an RNN encoder-decoder, with or without attention, trained on
a synthetic task (copy, reverse, dates), on German -> English sentences (``trans-de-en``) or on any TSV of pairs.

A run is config -> data -> model -> :class:`~attnlab.train.loop.Trainer` -> test evaluation:

- data: the synthetic tasks draw ``n_train`` training pairs and ``n_test`` validation and ``n_test`` test pairs
  from a generator seeded with ``seed``; a corpus is split 90/5/5 by :func:`attnlab.data.seq2seq.split_pairs`.
  The vocabularies are built from the training split and stored in every checkpoint (JSON, with the run config).
- training: teacher forcing, mean cross-entropy over the non-PAD target positions (``Seq2Seq.forward``); a batch
  is ``batch_size`` pairs drawn with replacement from the split by the Trainer's generator, so resume is exact.
- evaluation, once training is done, on the test split, greedy and with beam search (``beam_size``): exact-match
  accuracy (hypothesis tokens == reference tokens) for every task, and for sentences (de-en, ``--pairs``) corpus
  BLEU (Papineni et al. 2002) and chrF (Popović 2015) computed by sacrebleu on detokenized text with its default
  settings (13a tokenization, exponential smoothing; chrF n=6, beta=2), never a home-made BLEU. The numbers go
  into ``results.json`` under ``"test"``; the sources, references and hypotheses (one per line) into
  ``test.src.txt``, ``test.ref.txt``, ``test.greedy.txt`` and ``test.beam.txt``.

Defaults: a bidirectional-GRU encoder and a GRU decoder with Bahdanau attention (emb 64, hidden 128), reversal of
3..10 symbols from 10, batch 64, 2000 iterations of AdamW at lr 2e-3 (100 warm-up iterations, cosine to 1e-4).
For de-en the sentences are at most 12 tokens long (the filter of :func:`attnlab.data.seq2seq.load_de_en`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import sacrebleu
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from attnlab import configs
from attnlab._checks import check_positive_int
from attnlab.data.seq2seq import (
    DE_EN_MAX_LEN,
    DE_EN_PATH,
    Pair,
    Vocab,
    copy_pairs,
    date_pairs,
    detokenize,
    load_de_en,
    load_pairs_tsv,
    make_batch,
    reverse_pairs,
    split_pairs,
    tokenize,
)
from attnlab.fileio import atomic_write, write_json
from attnlab.models.seq2seq import Decoded, Seq2Seq, Seq2SeqConfig
from attnlab.train.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from attnlab.train.loop import CKPT_NAME, GetBatch, TrainConfig, Trainer

TASKS = ("copy", "reverse", "dates", "de-en")
SYNTHETIC_MAX_LEN = 10
MODEL_FIELDS = ("cell", "attention", "emb", "hidden", "enc_layers", "dropout")
# The optimisation defaults of a seq2seq run (TrainConfig's own are nanoGPT's): a larger peak learning rate, light
# weight decay, and 10 validation batches per evaluation.
TRAIN = TrainConfig(lr=2e-3, weight_decay=0.01, eval_iters=10)


@dataclass(frozen=True)
class Seq2SeqRunConfig:
    """Everything ``attnlab train seq2seq`` takes: data, model, optimisation, evaluation.

    Data: ``task`` (copy | reverse | dates | de-en), or ``pairs``, a TSV file of ``source<TAB>target`` lines that
    overrides the task; ``corpus``: the trans-de-en dictionary file read by ``task="de-en"``. ``min_len``,
    ``max_len``, ``n_symbols``: the lengths and alphabet of copy/reverse; ``max_len`` is also the longest de-en
    sentence kept (tokens); None: the task's default (10 for copy/reverse, 12 for de-en; unused by dates and
    ``pairs``). ``n_train``/``n_test``: the synthetic tasks' training set and validation/test sets (each);
    ``min_freq``: tokens seen fewer times in the training split map to ``<unk>``.
    Model: the fields of :class:`attnlab.models.seq2seq.Seq2SeqConfig`. Optimisation: ``train``, a
    :class:`attnlab.train.loop.TrainConfig` (``--train.lr`` on the command line). ``beam_size``: the beam of the
    final test evaluation (1: greedy only). :meth:`from_json` also reads the flat form of older runs.
    """

    task: str = "reverse"
    pairs: str | None = None
    corpus: str = DE_EN_PATH
    out: str = "runs/seq2seq"
    min_len: int = 3
    max_len: int | None = None
    n_symbols: int = 10
    n_train: int = 10000
    n_test: int = 500
    min_freq: int = 1
    cell: str = "gru"
    attention: str = "bahdanau"
    emb: int = 64
    hidden: int = 128
    enc_layers: int = 1
    dropout: float = 0.0
    batch_size: int = 64
    beam_size: int = 4
    train: TrainConfig = TRAIN

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {self.task!r}")
        if self.pairs is not None and (not isinstance(self.pairs, str) or not self.pairs):
            raise ValueError(f"pairs: expected the path of a TSV file or None, got {self.pairs!r}")
        for name in ("min_len", "n_symbols", "n_train", "n_test", "min_freq", "batch_size", "beam_size"):
            check_positive_int(name, getattr(self, name))
        if self.max_len is None:  # the task's default, stored resolved so config.json says what was used
            default = {"copy": SYNTHETIC_MAX_LEN, "reverse": SYNTHETIC_MAX_LEN, "de-en": DE_EN_MAX_LEN}
            object.__setattr__(self, "max_len", None if self.pairs else default.get(self.task))
        if self.max_len is not None:
            check_positive_int("max_len", self.max_len)
            if self.task in ("copy", "reverse") and not self.pairs and self.max_len < self.min_len:
                raise ValueError(f"max_len: expected >= min_len={self.min_len}, got {self.max_len}")
        if not isinstance(self.train, TrainConfig):
            raise TypeError(f"train: expected a TrainConfig, got {type(self.train).__name__}")
        self.model_config(len(Vocab.SPECIALS) + 1, len(Vocab.SPECIALS) + 1)  # validates the model fields

    @property
    def chars(self) -> bool:
        """Whether the tokens are characters (dates) rather than words and symbols."""
        return self.pairs is None and self.task == "dates"

    @property
    def sentences(self) -> bool:
        """Whether the pairs are natural-language sentences (scored with BLEU and chrF)."""
        return self.pairs is not None or self.task == "de-en"

    def model_config(self, src_vocab: int, tgt_vocab: int) -> Seq2SeqConfig:
        return Seq2SeqConfig(src_vocab=src_vocab, tgt_vocab=tgt_vocab, **{k: getattr(self, k) for k in MODEL_FIELDS})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Seq2SeqRunConfig:
        """The run config saved in a checkpoint or config.json, nested or flat (``lr`` -> ``train.lr``)."""
        return configs.from_json(cls, data)


# --- data ------------------------------------------------------------------------------------------------------


class Seq2SeqData(NamedTuple):
    """The three splits of a run (lists of :class:`~attnlab.data.seq2seq.Pair` or ``DatePair``)."""

    train: list
    valid: list
    test: list


def load_data(run: Seq2SeqRunConfig) -> Seq2SeqData:
    """The run's pairs split into train/valid/test; the same run config always gives the same splits."""
    if run.pairs is not None or run.task == "de-en":
        pairs = load_pairs_tsv(run.pairs) if run.pairs is not None else load_de_en(run.corpus, run.max_len)
        data = Seq2SeqData(*split_pairs(pairs))
        if not data.valid or not data.test:
            source = f"pairs: {run.pairs}" if run.pairs is not None else f"corpus: {run.corpus}"
            raise ValueError(
                f"{source}: expected enough pairs for 5% validation and 5% test splits of at least one pair each, "
                f"got {len(pairs)} pairs"
            )
        return data
    n = run.n_train + 2 * run.n_test
    gen = torch.Generator().manual_seed(run.train.seed)
    if run.task == "dates":
        pairs = date_pairs(n, gen)
    else:
        make = copy_pairs if run.task == "copy" else reverse_pairs
        pairs = make(n, run.min_len, run.max_len, run.n_symbols, gen)
    cut = run.n_train + run.n_test
    return Seq2SeqData(pairs[: run.n_train], pairs[run.n_train : cut], pairs[cut:])


def build_vocabs(train: Sequence, min_freq: int = 1) -> tuple[Vocab, Vocab]:
    """Source and target vocabularies of the training split."""
    return Vocab.build((p.src for p in train), min_freq), Vocab.build((p.tgt for p in train), min_freq)


def batch_sampler(data: Seq2SeqData, src_vocab: Vocab, tgt_vocab: Vocab, batch_size: int) -> GetBatch:
    """The Trainer's ``get_batch(split, generator)``: ``batch_size`` pairs drawn uniformly with replacement from the
    training split (``"train"``) or the validation split (``"val"``), as a padded ``Batch``."""

    def get_batch(split: str, gen: torch.Generator):
        pairs = data.train if split == "train" else data.valid
        idx = torch.randint(len(pairs), (batch_size,), generator=gen).tolist()
        return make_batch([pairs[i] for i in idx], src_vocab, tgt_vocab)

    return get_batch


# --- training --------------------------------------------------------------------------------------------------


class Seq2SeqTrainer(Trainer):
    """The Trainer of one seq2seq run: it knows the run's data and vocabularies, and once training is done its
    :meth:`fit` evaluates the model on the test split (:func:`evaluate_test`) and adds the numbers to results.json."""

    def __init__(
        self,
        run: Seq2SeqRunConfig,
        data: Seq2SeqData,
        src_vocab: Vocab,
        tgt_vocab: Vocab,
        *,
        progress: bool | None = None,
    ) -> None:
        self.run, self.data, self.src_vocab, self.tgt_vocab = run, data, src_vocab, tgt_vocab
        model_cfg = run.model_config(len(src_vocab), len(tgt_vocab))
        torch.manual_seed(run.train.seed)  # the model's initial weights
        model = Seq2Seq(model_cfg)
        state = {
            "kind": "seq2seq",
            "run": configs.to_json(run),
            "model": model_cfg.to_json(),
            "src_vocab": src_vocab.state(),
            "tgt_vocab": tgt_vocab.state(),
        }
        get_batch = batch_sampler(data, src_vocab, tgt_vocab, run.batch_size)
        super().__init__(model, run.train, get_batch, run.out, state=state, progress=progress)

    def fit(self, *, stop_after: int | None = None) -> dict[str, Any]:
        result = super().fit(stop_after=stop_after)
        if result["done"] and self.rank == 0:
            model = self._raw_model()
            result["test"] = evaluate_test(
                model, self.run, self.data.test, self.src_vocab, self.tgt_vocab, self.run_dir, progress=self.progress
            )
            model.train()
            write_json(self.run_dir / "results.json", result)
        return result


def prepare_seq2seq(run: Seq2SeqRunConfig, progress: bool | None = None) -> Seq2SeqTrainer:
    """Validate the run (data, out folder) and build its trainer; nothing is trained yet. A missing trans-de-en
    corpus raises ``CorpusNotFoundError`` (a ``FileNotFoundError``) saying how to install it or to pass --pairs."""
    out = Path(run.out)
    if (out / CKPT_NAME).exists():
        raise ValueError(f"out: {out} already holds a run; continue it with `attnlab resume {out}` or pick --out")
    if run.pairs is not None:  # stored absolute, so the run resumes from any working directory
        run = dataclasses.replace(run, pairs=str(Path(run.pairs).resolve()))
    elif run.task == "de-en":
        run = dataclasses.replace(run, corpus=str(Path(run.corpus).resolve()))
    data = load_data(run)
    trainer = Seq2SeqTrainer(run, data, *build_vocabs(data.train, run.min_freq), progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", configs.to_json(run))
    return trainer


def prepare_seq2seq_resume(run_dir: str | os.PathLike[str], progress: bool | None = None) -> Seq2SeqTrainer:
    """The trainer of a seq2seq run, restored from its last checkpoint (same batches and RNG as if never stopped)."""
    state = _seq2seq_state(Path(run_dir) / CKPT_NAME)
    run = dataclasses.replace(Seq2SeqRunConfig.from_json(state["run"]), out=str(run_dir))
    src_vocab, tgt_vocab = Vocab.from_state(state["src_vocab"]), Vocab.from_state(state["tgt_vocab"])
    trainer = Seq2SeqTrainer(run, load_data(run), src_vocab, tgt_vocab, progress=progress)
    trainer.resume()
    return trainer


def train_seq2seq(run: Seq2SeqRunConfig, progress: bool | None = None, stop_after: int | None = None) -> dict[str, Any]:
    """Train from scratch into ``run.out`` (an existing checkpoint there is an error: use resume); once
    ``max_iters`` are done, evaluate on the test split. Returns results.json's content."""
    return prepare_seq2seq(run, progress=progress).fit(stop_after=stop_after)


def resume_seq2seq(
    run_dir: str | os.PathLike[str], progress: bool | None = None, stop_after: int | None = None
) -> dict[str, Any]:
    """Continue a run from its last checkpoint to its max_iters (then evaluate on the test split)."""
    return prepare_seq2seq_resume(run_dir, progress=progress).fit(stop_after=stop_after)


def fit(
    model: nn.Module,
    get_batch: GetBatch,
    train_cfg: TrainConfig,
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> Trainer:
    """Train ``model`` (e.g. a :class:`~attnlab.models.seq2seq.Seq2Seq`) on ``get_batch(split, generator)`` batches
    (tuples passed as ``model(*batch)``) with the project's Trainer; for experiments that make their own data.

    ``run_dir``: where the checkpoint and results.json go; None: a temporary folder, removed afterwards. Returns
    the Trainer (``.result``: what ``Trainer.fit`` returned; ``.history``; ``.model``), its model in eval mode.
    """
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="attnlab-seq2seq-") as tmp:
            return fit(model, get_batch, train_cfg, tmp, progress)
    trainer = Trainer(model, train_cfg, get_batch, run_dir, progress=progress)
    trainer.fit()
    trainer._raw_model().eval()
    return trainer


# --- checkpoints -----------------------------------------------------------------------------------------------


def _seq2seq_state(path: Path) -> dict[str, Any]:
    meta, _ = read_checkpoint(path)
    state = meta["state"]
    if state.get("kind") != "seq2seq":
        raise CheckpointError(f"checkpoint: {path} is not a seq2seq checkpoint")
    return state


def load_seq2seq(ckpt: str | os.PathLike[str]) -> tuple[Seq2Seq, Vocab, Vocab, Seq2SeqRunConfig]:
    """The model of a seq2seq checkpoint (a file, or a run folder holding ckpt.safetensors), in eval mode, with its
    source and target vocabularies and its run config."""
    path = Path(ckpt)
    if path.is_dir():
        path = path / CKPT_NAME
    state = _seq2seq_state(path)
    run = Seq2SeqRunConfig.from_json(state["run"])
    src_vocab, tgt_vocab = Vocab.from_state(state["src_vocab"]), Vocab.from_state(state["tgt_vocab"])
    model = Seq2Seq(Seq2SeqConfig(**state["model"]))
    load_checkpoint(path, model)
    return model.eval(), src_vocab, tgt_vocab, run


# --- decoding and evaluation -----------------------------------------------------------------------------------


def _decode(model: Seq2Seq, pairs: Sequence, src_vocab: Vocab, tgt_vocab: Vocab, beam_size: int) -> Decoded:
    """Greedy (``beam_size`` 1) or beam search over the sources of ``pairs``, up to the model's default limit of
    ``2 S + 10`` tokens (S: the batch's longest source)."""
    device = next(model.parameters()).device
    batch = make_batch(pairs, src_vocab, tgt_vocab, device=device)
    if beam_size == 1:
        return model.greedy(batch.src, batch.src_lengths)
    return model.beam_search(batch.src, batch.src_lengths, beam_size=beam_size)


def _join(tokens: Sequence[str], chars: bool) -> str:
    return "".join(tokens) if chars else detokenize(tokens)


@torch.no_grad()
def evaluate(
    model: Seq2Seq,
    pairs: Sequence,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    beam_size: int = 1,
    batch_size: int = 64,
    *,
    chars: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Decode the sources of ``pairs`` (greedy for ``beam_size=1``, else beam search) and score the hypotheses.

    Returns ``accuracy`` (fraction of hypotheses whose tokens equal the reference's exactly), ``bleu`` and ``chrf``
    (sacrebleu's corpus BLEU and chrF, 0..100, of the detokenized hypotheses against the detokenized references,
    one reference each), their sacrebleu signatures, ``n`` and the ``hypotheses`` (text, in order). ``chars``: the
    tokens are characters (joined without spaces) rather than words.
    """
    check_positive_int("beam_size", beam_size)
    check_positive_int("batch_size", batch_size)
    if len(pairs) == 0:
        raise ValueError("pairs: expected at least one pair to evaluate, got none")
    was_training = model.training
    model.eval()
    hyp_tokens: list[list[str]] = []
    starts = range(0, len(pairs), batch_size)
    for i in tqdm(starts, desc=f"test (beam {beam_size})", disable=not progress, leave=False):
        decoded = _decode(model, pairs[i : i + batch_size], src_vocab, tgt_vocab, beam_size)
        hyp_tokens.extend(tgt_vocab.decode(ids) for ids in decoded.tokens)
    model.train(was_training)
    hypotheses = [_join(t, chars) for t in hyp_tokens]
    references = [_join(p.tgt, chars) for p in pairs]
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    return {
        "n": len(pairs),
        "accuracy": sum(h == list(p.tgt) for h, p in zip(hyp_tokens, pairs, strict=True)) / len(pairs),
        "bleu": bleu.corpus_score(hypotheses, [references]).score,
        "chrf": chrf.corpus_score(hypotheses, [references]).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "hypotheses": hypotheses,
    }


def evaluate_test(
    model: Seq2Seq,
    run: Seq2SeqRunConfig,
    test: Sequence,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    out: str | os.PathLike[str],
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate on the test split greedily and with ``run.beam_size`` (when > 1); write the sources, references
    and hypotheses into ``out`` (``test.src.txt``, ``test.ref.txt``, ``test.greedy.txt``, ``test.beam.txt``) and
    return ``{"n", "beam_size", "greedy": {...}, "beam": {...}}``: accuracy for every task, BLEU and chrF (with
    their sacrebleu signatures) for sentence pairs."""
    out = Path(out)
    keys = ("accuracy", "bleu", "chrf") if run.sentences else ("accuracy",)
    result: dict[str, Any] = {"n": len(test), "beam_size": run.beam_size}
    _write_lines(out / "test.src.txt", [_join(p.src, run.chars) for p in test])
    _write_lines(out / "test.ref.txt", [_join(p.tgt, run.chars) for p in test])
    searches = [("greedy", 1)] + ([("beam", run.beam_size)] if run.beam_size > 1 else [])
    for name, beam in searches:
        ev = evaluate(model, test, src_vocab, tgt_vocab, beam, run.batch_size, chars=run.chars, progress=progress)
        _write_lines(out / f"test.{name}.txt", ev["hypotheses"])
        result[name] = {k: ev[k] for k in keys}
    if run.sentences:
        result["bleu_signature"], result["chrf_signature"] = ev["bleu_signature"], ev["chrf_signature"]
    return result


def _write_lines(path: Path, lines: list[str]) -> None:
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(line.replace("\n", " ") + "\n" for line in lines)


class Translation(NamedTuple):
    """One translated sentence: its source tokens, the target tokens (without EOS), the target text, the model's
    log-probability of the output (EOS included when produced) and the attention weights ``(T, S)`` (None for the
    model without attention)."""

    source_tokens: list[str]
    target_tokens: list[str]
    text: str
    log_prob: float
    weights: Tensor | None


@torch.no_grad()
def translate(
    model: Seq2Seq,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    sentences: list[str],
    beam_size: int = 1,
    *,
    chars: bool = False,
    tokenizer: Callable[[str], list[str]] | None = None,
) -> list[Translation]:
    """Translate ``sentences`` (greedy for ``beam_size=1``, else beam search). Each sentence is split into tokens
    by ``tokenizer`` (default: its characters when ``chars``, else :func:`attnlab.data.seq2seq.tokenize`); tokens
    outside ``src_vocab`` are read as ``<unk>``."""
    check_positive_int("beam_size", beam_size)
    if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
        raise TypeError(f"sentences: expected a list of str, got {type(sentences).__name__}")
    if not sentences:
        raise ValueError("sentences: expected at least one sentence, got none")
    split = tokenizer or (list if chars else tokenize)
    sources = [split(s) for s in sentences]
    empty = [s for s, toks in zip(sentences, sources, strict=True) if not toks]
    if empty:
        raise ValueError(f"sentences: expected at least one token in every sentence, got {empty[0]!r}")
    was_training = model.training
    model.eval()
    decoded = _decode(model, [Pair(src, []) for src in sources], src_vocab, tgt_vocab, beam_size)
    model.train(was_training)
    out = []
    for i, src in enumerate(sources):
        tokens = tgt_vocab.decode(decoded.tokens[i])
        weights = None if decoded.weights is None else decoded.weights[i].cpu()
        out.append(Translation(src, tokens, _join(tokens, chars), float(decoded.log_prob[i]), weights))
    return out
