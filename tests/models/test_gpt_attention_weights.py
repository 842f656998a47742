"""GPT.attention_weights: each block's causal softmax(q k^T / sqrt(hs)), recomputed by hand from the block's own
projections, from the same forward pass as the logits.

Shapes: B batch, T time, C n_embd, nh heads, hs head size.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attnlab.models import GPT, GPTConfig

TINY = {"vocab_size": 11, "block_size": 12, "n_layer": 3, "n_head": 2, "n_embd": 16}

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_gpt(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **overrides})).eval()


def reference_weights(model: GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    """softmax(q k^T / sqrt(hs) + causal mask) per block, from each block's in_proj on LN1 of its input."""
    B, T = idx.shape
    nh = model.config.n_head
    hs = model.config.n_embd // nh
    x = model.wpe(model.wte(idx), 0)  # (B, T, C)
    out = []
    for block in model.blocks:
        attn = block.self_attn
        qkv = F.linear(block.norm1(x), attn.in_proj_weight, attn.in_proj_bias)  # (B, T, 3C)
        q, k, _ = qkv.split(model.config.n_embd, dim=2)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T)
        allowed = torch.ones(T, T, dtype=torch.bool).tril()
        out.append(scores.masked_fill(~allowed, float("-inf")).softmax(-1))
        x, _ = block(x, is_causal=True)  # (B, T, C)
    return out


@pytest.mark.parametrize("bias", [True, False])
def test_weights_equal_the_hand_computed_causal_softmax(bias):
    model = tiny_gpt(bias=bias)
    idx = torch.randint(11, (2, 7), generator=torch.Generator().manual_seed(1))

    with torch.no_grad():
        weights = model.attention_weights(idx)
        expected = reference_weights(model, idx)

    assert len(weights) == TINY["n_layer"]
    for w, ref in zip(weights, expected, strict=True):
        assert w.shape == (2, TINY["n_head"], 7, 7)
        torch.testing.assert_close(w, ref)


def test_weights_are_causal_rows_summing_to_one():
    model = tiny_gpt(seed=3)
    idx = torch.randint(11, (1, 12), generator=torch.Generator().manual_seed(2))

    with torch.no_grad():
        weights = torch.stack(model.attention_weights(idx))  # (L, B, nh, T, T)

    T = idx.shape[1]
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    assert weights[..., future].abs().max().item() == 0.0
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_asking_for_weights_leaves_the_logits_unchanged():
    model = tiny_gpt(seed=5)
    idx = torch.randint(11, (2, 9), generator=torch.Generator().manual_seed(4))

    with torch.no_grad():
        plain = model.logits(idx)
        collected: list[torch.Tensor] = []
        hidden = model._hidden(idx, None, collected)

    torch.testing.assert_close(hidden @ model.wte.weight.t(), plain)
    assert len(collected) == TINY["n_layer"]


def test_weights_validate_idx_like_forward():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="exceed block_size=12"):
        model.attention_weights(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(TypeError, match="integer tensor"):
        model.attention_weights(torch.zeros(1, 3))
