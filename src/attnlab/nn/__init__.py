"""Modules: recurrent cells and layers, multi-head attention (later: additive/Luong attention, transformer blocks)."""

from attnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from attnlab.nn.loop import run_direction
from attnlab.nn.multihead import KVCache, MultiHeadAttention
from attnlab.nn.recurrent import GRU, LSTM, RNN

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "KVCache",
    "LSTMCell",
    "MultiHeadAttention",
    "RNNCell",
    "run_direction",
]
