r"""Experiment ``heads`` (claim C10, seed 001 §3.3): multiple heads attend to different things at once.

Vaswani et al. 2017, section 3.2.2: ``MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O`` with
``head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)``: "multi-head attention allows the model to jointly attend to
information from different representation subspaces at different positions. With a single attention head,
averaging inhibits this."

Task (:func:`two_marker_batch`): T positions; each of the first T - 1 carries a random content vector
``u (d,)`` with i.i.d. N(0, 1) components, two of them (at random places) are marked as marker 1 and marker 2,
the last position is the query. With ``a`` the content at marker 1 and ``b`` at marker 2, the target is the class
``argmax_j (a_j - b_j)`` (d classes, chance 1/d). Model (:class:`attnlab.models.markers.TwoMarkerModel`): the
input at each position is
``W_in u + e_kind`` (a linear map of the content plus an embedding of its kind: plain, marker 1, marker 2,
query; no positional encoding, since the markers are found by content, not by place); one
:class:`attnlab.nn.MultiHeadAttention` layer whose single query is the last position; an MLP readout of its
output. ``num_heads`` varies, the width E, the parameter count and the training budget do not.

Why one head of the same width cannot solve it (the design choice): a head returns one convex combination of
value vectors, ``w_1 V x_a + w_2 V x_b + ...``, and the value map V is the same for every position, so the
contents of the two markers land in the same d-dimensional subspace, added. From ``w_1 a + w_2 b`` the
difference ``a - b`` is lost: for i.i.d. Gaussian contents, ``a + b`` (an even split) is independent of
``a - b``, so a 50/50 head is at chance; a head that reads one marker only can at best guess
``argmax(a - b)`` from ``a`` alone (the reference ``one_marker_bayes`` below, measured by Monte Carlo), plus the
little that the content-dependent weights leak. Two heads of half the width each can carry one marker whole
(``d <= E / h``), and the readout sees both. Simpler targets are no test: a symmetric one such as ``a + b`` is
what an even split gives for free, and with discrete tokens (one-hot-like embeddings) a lopsided split such as
0.7/0.3 keeps both tokens decodable, so one head solves ``(a - b) mod K`` too (in development one head of
width 32 solved ``(a - b) mod 10`` perfectly with a 52/48 split).

Measured per head count and seed: accuracy on a held-out set, and each head's mean attention mass on marker 1
and on marker 2. Specialization (h >= 2): the best assignment of two distinct heads to the two markers,
``max_{i != j} (mass1_i + mass2_j) / 2`` (1 when one head looks only at marker 1 and another only at marker 2).
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.self_attention.heads.config import Config
from attnlab.experiments.self_attention.heads.measure import run

SPEC = assemble("heads", __name__)

__all__ = ["SPEC", "Config", "run"]
