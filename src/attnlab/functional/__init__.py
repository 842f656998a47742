"""Attention math as functions: scaled dot-product attention (naive, chunked, manual, torch), its masks, the
softmax and its backward, Bahdanau/Luong scores, linear attention and the selective scan."""

from attnlab.functional.attention_backward import (
    additive_attention_manual,
    concat_attention_manual,
    dot_attention_manual,
    general_attention_manual,
)
from attnlab.functional.linear_attention import (
    LinearAttentionOutput,
    LinearAttentionState,
    elu_feature_map,
    linear_attention,
    linear_attention_step,
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
from attnlab.functional.selective_scan import (
    ScanOutput,
    selective_scan,
    selective_scan_ref,
    selective_scan_step,
)
from attnlab.functional.softmax import masked_softmax, softmax_backward

__all__ = [
    "AttentionMask",
    "AttentionOutput",
    "LinearAttentionOutput",
    "LinearAttentionState",
    "ScanOutput",
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
    "elu_feature_map",
    "general_attention",
    "general_attention_manual",
    "general_scores",
    "linear_attention",
    "linear_attention_step",
    "masked_softmax",
    "scaled_dot_product_attention",
    "selective_scan",
    "selective_scan_ref",
    "selective_scan_step",
    "softmax_backward",
]
