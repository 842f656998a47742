"""Modules: recurrent cells and layers, attention (multi-head, classic), transformer blocks, positional encodings."""

from attnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from attnlab.nn.classic_attention import AdditiveAttention, LuongAttention
from attnlab.nn.loop import run_direction
from attnlab.nn.moe import MoE, MoEOutput
from attnlab.nn.multihead import KVCache, MultiHeadAttention, StaticKVCache
from attnlab.nn.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    sinusoidal_positions,
)
from attnlab.nn.recurrent import GRU, LSTM, RNN
from attnlab.nn.ssm import Mamba, MambaOutput, MambaState
from attnlab.nn.transformer import TransformerEncoderLayer

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "AdditiveAttention",
    "GRUCell",
    "KVCache",
    "LSTMCell",
    "LearnedPositionalEmbedding",
    "LuongAttention",
    "Mamba",
    "MambaOutput",
    "MambaState",
    "MoE",
    "MoEOutput",
    "MultiHeadAttention",
    "RNNCell",
    "SinusoidalPositionalEncoding",
    "StaticKVCache",
    "TransformerEncoderLayer",
    "apply_rotary",
    "run_direction",
    "sinusoidal_positions",
]
