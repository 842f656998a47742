r"""Experiment ``receptive-field`` (claim C13): with a sliding window w, information reaches w (L - 1) + w = w L
positions back through L layers, though each layer attends only w back.

Mistral 7B's argument (section 2; Longformer's before it): the hidden state at position i of layer k attends to
positions i - W .. i of layer k - 1, which themselves attended W further back, so after k layers information can
have moved up to k W positions; with W = 4096 and 32 layers, about 131k tokens (Mistral's figure), while the rolling
cache holds only W positions per layer (``kv-cache``).

Measured as ``paths`` measures path lengths: by gradients, whose exact zeros say where no path exists. A GPT of
Mistral's block in miniature (grouped-query attention, rotary positions, RMSNorm, SwiGLU, no biases; width 32,
float64, random initialisation) with window w (:class:`~attnlab.functional.AttentionMask` ``window``: position p
attends p - w .. p) and L layers reads a random sequence of n = max(w) (max(L) + 2) tokens; the gradient of ``u .
logits`` at the last position (u random) with respect to the input embedding of each position, d positions back, is
nonzero exactly where a path joins them. Measured for windows w in {4, 8, 16} and depths L = 1..8 (one backward
each), and, as the control, full causal attention with one layer. Why this tests the claim: the window mask is the
only thing that limits the paths, and a gradient through masked weights is exactly zero (they are zero after the
softmax), so the farthest nonzero gradient is the receptive field itself, not an estimate; the magnitudes, how much of
the far input actually arrives, are shown beside it.

Held: for every (w, L), the gradient is nonzero at every distance 0..w L and exactly zero beyond (reach = w L), and
full attention reaches every position (n - 1) in one layer. Not held: any other reach, or a zero inside the reach
(which random weights make improbable, barring an exact cancellation). The result is exact, so one seed is enough;
the tests sweep seeds and threads. Mistral's 4096 x 32 = 131,072 is the same formula at its sizes (not measured).

Profiles: full windows {4, 8, 16}, depths 1..8; quick windows {4, 8}, depths 1..6; tiny for the tests.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.beyond.receptive_field.config import Config
from attnlab.experiments.beyond.receptive_field.measure import run

SPEC = assemble("receptive-field", __name__)

__all__ = ["SPEC", "Config", "run"]
