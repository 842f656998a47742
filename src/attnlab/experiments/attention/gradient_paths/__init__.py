r"""Experiment ``gradient-paths`` (seed 001 §3.2, objective 3: how backpropagation flows through attention; claim C7's
"token 1 and token 100 are one attention step apart"): why attention helps an encoder-decoder learn.

Without attention the decoder reads the source only through the fixed vector ``c = [h_fwd_S ; h_bwd_1]``, the
forward state at the last position and the backward state at the first (:class:`attnlab.models.seq2seq.Seq2Seq`,
``"none"``). The loss reaches a source token x_j only back through the encoder's recurrence, ``S - 1 - j`` steps of
the forward direction or ``j`` steps of the backward one: at least ``d_j = min(j, S - 1 - j)`` recurrent steps, each
multiplying the gradient by a Jacobian (for a GRU ``dh_t/dh_{t-1}``, whose norm is below 1 unless the update gate
holds the state). With attention, the context ``c_i = sum_j a_ij h_j`` puts every annotation ``h_j`` one step from
every decoder step, and ``h_j`` is one recurrent step from x_j: the path has the same length for every j.

Measured, for each model at initialisation and after ``train_steps`` steps on reverse (lengths in
``[min_len, src_len]``), on ``probe_examples`` held-out strings of length ``S = src_len``, in eval mode:

- ``g_j = ||dL / dx_j||``, the norm of the gradient of the whole target sequence's cross-entropy (summed over the
  steps) with respect to the source embedding at position j, averaged over the strings (``model.encode`` then
  ``model.decode`` with the gold target, a forward hook keeping the embedding output's gradient);
- its mean over the positions with the same distance ``d_j`` (the positions j and S - 1 - j), and the least-squares
  slope of ``log10`` of it against d: decades per recurrent step, the per-step factor ``10^slope``; and
  ``far/near = g(d_max) / g(0)``;
- ``G[t, j] = ||dL_t / dx_j||``, the gradient of the loss of target step t alone (one backward pass: the strings
  are repeated T times, copy t keeping the loss of step t only; the copies share nothing), for the heatmaps;
- how many encoder outputs ``memory_j`` the loss reaches directly (a nonzero ``dL / d memory_j``, via
  ``retain_grad`` on ``EncoderState.memory``): all S with attention, the two ends (the fixed vector) without.

``held``: at initialisation, the gradient without attention decays with the distance (``far/near`` at most
``decay_ratio``) while with every attention model it does not (``far/near`` at least ``flat_ratio``). After
training the numbers are reported, not judged: a trained model's gradient is large where its errors are (the
model without attention errs most in the middle of long strings) and its gates may have learned to hold the state,
so the picture mixes path length with what was learned; the heatmaps show the rest (with attention the gradient of
step t goes straight to the source token it copies).

Measured in development (seed 0, the former quick profile: hidden 32, S = 20, d_max = 9, 100 steps): at
initialisation far/near is 0.012
without attention (x0.61 per recurrent step), 1.2 with Bahdanau's and with Luong's (x1.02, x1.01); the loss reaches
the memory at 2 of 20 positions without attention, at all 20 with it. After 100 steps: 0.22 (x0.85 per step) without
attention, 0.94 and 0.88 with; after 150 steps 0.44, 0.60 and 1.2: after training the ratio moves with the
training itself, which is why it is reported and not judged.
"""

from attnlab.experiments.attention.gradient_paths.config import Config
from attnlab.experiments.attention.gradient_paths.measure import run
from attnlab.experiments.base import assemble

SPEC = assemble("gradient-paths", __name__)

__all__ = ["SPEC", "Config", "run"]
