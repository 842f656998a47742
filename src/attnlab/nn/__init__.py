"""Modules: recurrent cells and layers (later: attention, multi-head attention, transformer blocks)."""

from attnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from attnlab.nn.loop import run_direction
from attnlab.nn.recurrent import GRU, LSTM, RNN

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell", "run_direction"]
