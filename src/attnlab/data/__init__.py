"""Data: synthetic tasks generated from a seed (later: corpora loaders and tokenizers)."""

from attnlab.data.synthetic import RecallBatch, RecallVocab, recall_batch, recall_vocab

__all__ = ["RecallBatch", "RecallVocab", "recall_batch", "recall_vocab"]
