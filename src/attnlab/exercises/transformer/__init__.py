"""Section 3.3 exercises: self-attention, masks, multi-head attention, the KV cache, positions, the block."""
