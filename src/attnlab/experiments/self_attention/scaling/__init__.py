r"""Experiment ``scaling`` (claim C4, seed 001 §3.3): scaling by ``1/sqrt(d_k)`` keeps the softmax out of saturation.

Vaswani et al. 2017, footnote 4: if the components of q and k are independent with mean 0 and variance 1, then
``q . k = sum_i q_i k_i`` has mean 0 and variance ``d_k``. Unscaled scores therefore spread as ``sqrt(d_k)``:
the largest of S scores pulls away from the rest, the softmax puts (almost) all its weight on it, and its
gradient vanishes ("pushing the softmax function into regions where it has extremely small gradients").
Dividing by ``sqrt(d_k)`` (eq. 1) gives unit-variance scores for every head size.

Measured, for each ``d_k`` in ``cfg.d_ks``, on queries ``q (d_k,)`` and S keys ``k (S, d_k)`` with i.i.d. N(0, 1)
components (float64, several seeds, pooled):

- the empirical variance of ``q . k`` against ``d_k`` and the slope of ``log var`` on ``log d_k`` (expected 1);
- the softmax weights of the project's :func:`attnlab.functional.scaled_dot_product_attention` (``impl="naive"``,
  ``return_weights=True``) with ``scale=1`` (unscaled) and the default ``1/sqrt(d_k)`` (scaled): their entropy
  (maximum ``log S``, the uniform softmax), their largest weight, the fraction of rows with a weight above 0.99,
  and the Frobenius norm of the softmax Jacobian ``d weights / d scores`` (:func:`softmax_jacobian_norm`), the
  factor through which every gradient reaching the scores passes;
- a temperature sweep at one ``d_k``: ``weights = softmax(q . k / (tau sqrt(d_k)))`` (``scale = 1/(tau sqrt(d_k))``)
  from sharp (small tau) to flat (large tau). Unscaled scores at head size ``d_k`` are the point
  ``tau = 1/sqrt(d_k)`` of this sweep: scaled scores have the same distribution whatever ``d_k``.

Scaling fixes the variance of the scores on average over queries; at small ``d_k`` the squared norm of one
query, ``|q|^2 / d_k``, still fluctuates (chi-square with d_k degrees of freedom over d_k), so some rows are
sharper than others and the scaled softmax at ``d_k = 4`` differs from the large-``d_k`` one by a few percent
(hence a ``flat_tolerance`` of 15%, not 1%).

The Jacobian norm is summarised by its median over rows (the typical row) and by its mean, which a minority of
rows whose two largest scores happen to be close keeps up even when most rows are saturated.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.self_attention.scaling.config import Config
from attnlab.experiments.self_attention.scaling.measure import run

SPEC = assemble("scaling", __name__)

__all__ = ["SPEC", "Config", "run"]
