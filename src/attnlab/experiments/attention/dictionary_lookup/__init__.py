r"""Experiment ``dictionary-lookup`` (seed 001 §3.2): attention is a differentiable dictionary lookup.

A dictionary stores N items, keys ``k_i (d,)`` and values ``v_i (dv,)``. A hard lookup returns the value whose key
best matches the query, ``v_{argmax_i q . k_i}``: exact when the match is right, but a step function of the query,
with no gradient. Attention returns a blend, ``r = sum_i p_i v_i`` with ``p = softmax(q . K^T / tau)``, which is
differentiable in the query, the keys and the values. As the temperature tau falls the weights tend to the
one-hot of the argmax and the blend to the hard lookup; the price is the gradient, which vanishes with the
softmax's saturation. As tau grows the weights flatten toward 1/N and the blend toward the mean of all values.

Part 1, a fixed dictionary (float64): N random unit-norm keys and values; each query is a stored key plus Gaussian
noise, ``q = k_i + sigma n`` with ``n ~ N(0, I_d)``. For each tau, through the project's
:func:`attnlab.functional.scaled_dot_product_attention` (``impl="naive"``, ``scale = 1/tau``, weights returned):

- retrieval accuracy two ways: the argmax of the weights equals i (this is the hard lookup's accuracy at every
  tau: a softmax never reorders its scores, so it is measured only to show it is flat), and the blend decoded to
  its nearest stored value equals ``v_i`` (this one does depend on tau);
- the squared error ``|r - v_i|^2`` of the retrieved value against the exact one, and the distance
  ``|r - v_{argmax}|`` to the hard lookup's result;
- the Frobenius norm of the Jacobian ``d r / d q`` per query (autograd, one backward pass per value component):
  its median, and the fraction of "dead" queries whose norm is below ``dead_threshold``.

With unit-norm keys and a uniform prior over the items, the posterior of the item given the query is
``p(i | q) ~ exp(-|q - k_i|^2 / (2 sigma^2)) ~ exp(q . k_i / sigma^2)``: the softmax at ``tau = sigma^2`` *is* the
Bayes posterior, and its blend the posterior mean, the estimate of ``v_i`` with the least expected squared error.
So with noisy queries the error is smallest at an intermediate temperature, near ``sigma^2``, not at tau -> 0.

Part 2, a learned lookup: the queries arrive as cues ``x = M k_i + sigma_x n`` in another space (``M`` a fixed
random ``(dx, d)`` map); the learned dictionary of :class:`attnlab.models.lookup.SoftLookup`
(:class:`attnlab.nn.LuongAttention` with the general score ``x^T W_a k_j`` (a learned
query projection, the only parameter)) retrieves ``r = sum_j p_j v_j``, trained by Adam on ``|r - v_i|^2``. At
``train_taus`` the cue is divided by tau before the lookup (the same initialisation, a sharper or flatter start).
Reported: accuracy (argmax of the weights) before and after, its curve, the gradient at initialisation and the
fraction of training examples whose own gradient is alive; and the hard lookup ``v_{argmax_j x^T W_a k_j}``, whose
loss has no gradient at all with respect to ``W_a``: argmax is piecewise constant, so autograd has no path to
follow, and no optimiser could train it.
"""

from attnlab.experiments.attention.dictionary_lookup.config import Config
from attnlab.experiments.attention.dictionary_lookup.measure import run
from attnlab.experiments.base import assemble

SPEC = assemble("dictionary-lookup", __name__)

__all__ = ["SPEC", "Config", "run"]
