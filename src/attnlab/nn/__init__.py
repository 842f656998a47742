"""Modules: recurrent cells and layers, attention (multi-head with grouped kv heads, latent, linear, classic),
caches for decoding (growing, static, rolling window, latent, recurrent state), transformer and decoder blocks,
norms, feed-forward networks and experts, the Mamba block, positional encodings."""

from attnlab.nn.caches import KVCache, StaticKVCache
from attnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from attnlab.nn.classic_attention import AdditiveAttention, LuongAttention
from attnlab.nn.decoder_block import DecoderBlock
from attnlab.nn.linear_mixer import LinearAttention, StateCache
from attnlab.nn.loop import run_direction
from attnlab.nn.mla import LatentCache, MultiHeadLatentAttention
from attnlab.nn.moe import MoE, MoEOutput
from attnlab.nn.multihead import MultiHeadAttention
from attnlab.nn.norms import RMSNorm
from attnlab.nn.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    sinusoidal_positions,
)
from attnlab.nn.recurrent import GRU, LSTM, RNN
from attnlab.nn.rolling_cache import RollingKVCache
from attnlab.nn.ssm import Mamba, MambaOutput, MambaState
from attnlab.nn.transformer import TransformerEncoderLayer

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "AdditiveAttention",
    "DecoderBlock",
    "GRUCell",
    "KVCache",
    "LSTMCell",
    "LatentCache",
    "LearnedPositionalEmbedding",
    "LinearAttention",
    "LuongAttention",
    "Mamba",
    "MambaOutput",
    "MambaState",
    "MoE",
    "MoEOutput",
    "MultiHeadAttention",
    "MultiHeadLatentAttention",
    "RMSNorm",
    "RNNCell",
    "RollingKVCache",
    "SinusoidalPositionalEncoding",
    "StateCache",
    "StaticKVCache",
    "TransformerEncoderLayer",
    "apply_rotary",
    "run_direction",
    "sinusoidal_positions",
]
