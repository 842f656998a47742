"""Attention math as functions: scaled dot-product attention (naive, chunked, manual, torch) and masks."""

from attnlab.functional.sdpa import AttentionOutput, masked_softmax, scaled_dot_product_attention

__all__ = ["AttentionOutput", "masked_softmax", "scaled_dot_product_attention"]
