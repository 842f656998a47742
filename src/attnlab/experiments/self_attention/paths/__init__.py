"""Experiment ``paths`` (claim C7; seed 002 §4.2, Vaswani et al. 2017 Table 1): how far apart are token 1 and n?

The claim: "token 1 and token 100 are one attention step apart; RNN: 99 steps". Vaswani et al. (2017) put it in
their Table 1 (n length, d width, k kernel, r neighbourhood):

=============================  ====================  ==========  ===================
layer                          complexity per layer  sequential  maximum path length
=============================  ====================  ==========  ===================
self-attention                 O(n^2 d)              O(1)        O(1)
recurrent                      O(n d^2)              O(n)        O(n)
convolutional                  O(k n d^2)            O(1)        O(log_k n)
self-attention (restricted)    O(r n d)              O(1)        O(n / r)
=============================  ====================  ==========  ===================

Each column is measured on the project's layers (``attnlab.nn.MultiHeadAttention``, ``attnlab.nn.RNN``) and a
causal ``torch.nn.Conv1d``, batch 1:

(a) **Complexity**: forward FLOPs (``torch.utils.flop_counter.FlopCounterMode``) against n at fixed d and
    against d at fixed n (and k for the convolution); exponents from log-log least squares. Table 1 counts
    self-attention's mixing, ``softmax(Q K^T / sqrt(d_k)) V`` (the ``bmm`` kernels: ``4 n^2 d``), not its
    ``Q, K, V, O`` projections (``8 n d^2``, position-wise); both are reported, the first is compared.
(b) **Sequential operations**: the longest chain of dependent matrix products in one forward
    (:class:`attnlab.experiments.sequential.SequentialDepth`), against n.
(c) **Maximum path length**, detected through gradients, in float64: is ``d(u . y_n) / d x_1`` nonzero?
    For stacks of L layers, the smallest L for which it is (searched by doubling then bisection; the
    gradient at L - 1 is exactly zero, at L it is not); the backward pass goes one layer at a time and
    rescales the gradient at each position to unit norm after each (:class:`.probes.LayerPathProbe`), so hundreds of
    layers cannot underflow it to zero. For the
    recurrent layer, one layer always connects them, through its steps: the gradient is truncated to the last
    s state-to-state transitions (the state before them is detached) and the smallest s that reaches x_1 is
    the number of recurrent steps on the path. Only whether a path exists is asked, not how much of the signal
    survives it (``vanishing-gradients`` measures that): the RNN gets orthogonal matrices, zero biases and
    small inputs, so that its gradient over thousands of steps stays far from underflow.


The counts and the probes are exact arithmetic on small float64 tensors: they run on the CPU whatever the device
(they do not depend on where they are computed).
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.self_attention.paths.config import Config
from attnlab.experiments.self_attention.paths.measure import run

SPEC = assemble("paths", __name__)

__all__ = ["SPEC", "Config", "run"]
