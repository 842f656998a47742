"""Attention math as functions: scaled dot-product attention (naive, chunked, manual, torch), its masks, the
softmax and its backward, Bahdanau/Luong scores."""

from attnlab.functional.attention_backward import (
    additive_attention_manual,
    concat_attention_manual,
    dot_attention_manual,
    general_attention_manual,
)
from attnlab.functional.masks import AttentionMask
from attnlab.functional.scores import (
    additive_attention,
    additive_scores,
    attend,
    concat_attention,
    concat_scores,
    dot_attention,
    dot_scores,
    general_attention,
    general_scores,
)
from attnlab.functional.sdpa import AttentionOutput, scaled_dot_product_attention
from attnlab.functional.softmax import masked_softmax, softmax_backward

__all__ = [
    "AttentionMask",
    "AttentionOutput",
    "additive_attention",
    "additive_attention_manual",
    "additive_scores",
    "attend",
    "concat_attention",
    "concat_attention_manual",
    "concat_scores",
    "dot_attention",
    "dot_attention_manual",
    "dot_scores",
    "general_attention",
    "general_attention_manual",
    "general_scores",
    "masked_softmax",
    "scaled_dot_product_attention",
    "softmax_backward",
]
