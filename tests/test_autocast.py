"""Every model trains one step under ``torch.autocast`` (bfloat16 on the CPU reproduces what a GPU's bf16 autocast
does to dtypes): the forward runs, the loss and every gradient are finite, and every parameter gets a gradient.

On a GPU the trainer runs under bf16 autocast; the seq2seq modules once refused the mixed dtypes it produces
(``hx: expected dtype torch.float32 (that of input), got torch.bfloat16``). Torch's own modules accept them, and
so must ours: autocast casts the products, a float32 state may meet a bfloat16 one.
"""

from __future__ import annotations

import pytest
import torch

from attnlab.models import GPT, GPTConfig
from attnlab.models.encoder import Encoder, EncoderConfig
from attnlab.models.seq2seq import ATTENTIONS, CELLS, Seq2Seq, Seq2SeqConfig
from attnlab.nn import GRU, LSTM, RNN, MultiHeadAttention, TransformerEncoderLayer

pytestmark = pytest.mark.usefixtures("one_thread")


def one_step(model: torch.nn.Module, loss_fn) -> None:
    """Forward under bf16 autocast, backward outside (as a training loop does); every gradient finite."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn()
    assert loss.isfinite().all(), loss
    loss.float().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient"
        assert p.grad.isfinite().all(), f"{name}: non-finite gradient"


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("cell", CELLS)
def test_seq2seq_trains_under_autocast(cell, attention):
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab=12, tgt_vocab=12, emb=8, hidden=16, cell=cell, attention=attention))
    src, lengths = torch.randint(4, 12, (3, 7)), torch.tensor([7, 5, 2])
    tgt_in, tgt_out = torch.randint(4, 12, (3, 6)), torch.randint(4, 12, (3, 6))
    one_step(model, lambda: model(src, lengths, tgt_in, tgt_out).loss)


@pytest.mark.parametrize("bias", [True, False])
def test_gpt_trains_under_autocast(bias):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16, bias=bias))
    idx = torch.randint(0, 20, (2, 16))
    one_step(model, lambda: model(idx, idx).loss)


@pytest.mark.parametrize("impl", ["naive", "manual", "chunked", "torch"])
def test_multihead_and_block_train_under_autocast(impl):
    torch.manual_seed(0)
    block = TransformerEncoderLayer(16, 2, 32, dropout=0.0, norm_first=True, impl=impl)
    x = torch.randn(2, 9, 16)
    one_step(block, lambda: block(x, is_causal=True)[0])
    mha = MultiHeadAttention(16, 4, kdim=6, vdim=5, impl=impl)
    q, k, v = torch.randn(2, 4, 16), torch.randn(2, 7, 6), torch.randn(2, 7, 5)
    key_mask = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])
    one_step(mha, lambda: mha(q, k, v, key_mask=key_mask).output)


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_recurrent_layers_train_under_autocast_with_a_float32_state(cls):
    torch.manual_seed(0)
    layer = cls(6, 8, num_layers=2, bidirectional=True, batch_first=True)
    x, h0 = torch.randn(3, 5, 6), torch.randn(4, 3, 8)  # a float32 initial state meets bf16 products
    state = (h0, torch.randn(4, 3, 8)) if cls is LSTM else h0
    one_step(layer, lambda: layer(x, state, lengths=torch.tensor([5, 2, 4]))[0])


def test_encoder_trains_under_autocast():
    torch.manual_seed(0)
    cfg = EncoderConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    enc = Encoder(cfg)
    ids = torch.randint(0, 30, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    types = torch.tensor([[0] * 3 + [1] * 3] * 2)  # both token-type rows are used, so every parameter gets a gradient
    one_step(enc, lambda: enc(ids, mask, types).last_hidden_state)
