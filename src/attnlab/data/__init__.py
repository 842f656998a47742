"""Data: synthetic tasks generated from a seed, corpora and their loaders (seq2seq pairs, text)."""

from attnlab.data.seq2seq import (
    Batch,
    CorpusNotFoundError,
    DatePair,
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
from attnlab.data.synthetic import RecallBatch, RecallVocab, recall_batch, recall_vocab

__all__ = [
    "Batch",
    "CorpusNotFoundError",
    "DatePair",
    "Pair",
    "RecallBatch",
    "RecallVocab",
    "Vocab",
    "copy_pairs",
    "date_pairs",
    "detokenize",
    "load_de_en",
    "load_pairs_tsv",
    "make_batch",
    "recall_batch",
    "recall_vocab",
    "reverse_pairs",
    "split_pairs",
    "tokenize",
]
