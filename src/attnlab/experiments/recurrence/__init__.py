"""Section 3.1, recurrent neural networks and their limitations.

The chapter: an RNN reads a sequence one step at a time, ``h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)``; LSTM and
GRU gates decide what the state keeps; bidirectional layers read both ways; an encoder-decoder compresses the
source into one fixed vector. Its claims: gradients vanish (or explode) over long spans and gating mitigates
it; information from far back degrades; the fixed vector is a bottleneck.

Library (what a learner reads): :mod:`attnlab.nn.cells` (``RNNCell``, ``LSTMCell``, ``GRUCell``: one step each,
the equations in their docstrings), :mod:`attnlab.nn.recurrent` (``RNN``, ``LSTM``, ``GRU``: layers,
bidirectional, ``lengths=``), :mod:`attnlab.nn.lstm_bptt` (the LSTM's hand-derived backward through time),
:mod:`attnlab.models.seq2seq` (encoder-decoder, the fixed vector of the ``"none"`` decoder),
:mod:`attnlab.models.recall` (the memory task's classifiers).

Experiments: ``vanishing-gradients`` (the gradient per step through h and through the LSTM's cell state,
exploding radii, clipping, and whether each cell learns a long lag), ``long-range`` (recall at each distance,
every model trained per distance), ``bottleneck`` (quality against source length with and without attention).

Exercises (:mod:`attnlab.exercises`): ``rnn_cell``, ``lstm_cell``, ``gru_cell``, ``rnn_layer``,
``bptt``, ``clip_grad_norm``.
"""
