r"""Experiment ``decode-cost`` (claim C15; Katharopoulos et al. 2020, "Transformers are RNNs"; Gu & Dao 2023,
Mamba's recurrent mode): what one generated token costs as the context grows.

The claim. To generate token n + 1, softmax attention reads the keys and values of all n earlier tokens (its KV
cache, ``2 C`` numbers per position and layer): O(n) work, memory and time per token. Causal linear attention
carries its whole past as the state ``S = sum_j phi(k_j) v_j^T``, ``z = sum_j phi(k_j)`` (``nh (hs^2 + hs)`` numbers
per layer) and Mamba as its scan and convolution state (``D_in (N + K - 1)``): O(1) per token, whatever n.

What is measured. One :class:`~attnlab.models.GPT` per mixer, everything else equal (depth, heads, vocabulary,
position table for the longest context; widths matched for parameters, :mod:`attnlab.experiments.beyond.mixers`).
For every context length n a batch of B random prompts is prefilled by the model's own forward into its
per-layer caches (``block.new_cache``: a KV cache for attention, the recurrent state for the others); then every
(mixer, length) takes one warm-up and one timed decoding step per round, all of them once per round in a fresh
random order, so that whatever else the machine does falls on every length alike. Per length:

- time per generated token: the step's time over B, the lower quartile of the rounds. Other processes on a shared
  machine only ever add time, so a low quantile tracks the step's own cost (the median and the wall time are kept
  beside it). On the CPU the clock is the decoding thread's CPU time, on one intra-op thread; on a GPU the wall time
  between synchronisations. A step is taken at context n + 1 .. n + 2 rounds: the fits use the middle, n + 1 + rounds.
- FLOPs per token, counted by ``torch.utils.flop_counter`` on the first step after the prefill (matrix products
  and attention; torch's CPU flash-attention kernel, which the counter has no formula for, gets the CUDA kernels'
  ``4 S hs`` per query and head). Attention's count must grow by exactly ``4 L C`` per position; the recurrent
  mixers' element-wise state updates are not counted, so their count is the projections' and exactly constant.
- decoding memory per sequence: the caches' bytes after the steps (sized to hold exactly the context): attention's
  must grow by exactly ``2 L C x 4`` bytes per position (float32), the states' must not grow; and the longest
  context whose decoding memory fits ``memory_budget_mib`` (none for a fixed state).

B > 1 because a step's fixed work (the weights, the per-operation overhead) is shared by the batch while each
sequence reads its own cache: the batch brings the length where the cache dominates down to contexts a CPU
prefills in seconds (the prefill of attention is itself O(n^2): its time is recorded too).

The fit range, and why it is fixed before measuring. For attention the time per token is about
``t(n) = t_0 + b n``: ``t_0`` the fixed work, ``b`` the cache reads per position. Its log-log slope at n is
``b n / (t_0 + b n)``: 0.5 exactly where the cache's time equals the fixed part (the crossover ``n* = t_0 / b``), 1
far beyond. Fitted over lengths that start before n*, a cache that does grow linearly would show a slope below 0.5,
so the slopes are fitted only over ``n >= fit_from``, set in the config before the profile runs, at about twice the
crossover measured in development on the 2-core CPU (an affine fit of attention's times over all lengths put n* at
about 350-600 for the quick model, B = 16 and one layer, and at 800-1000 with B = 8, as the full profile decodes):
quick fits n >= 512 (four lengths to 2048), full n >= 2048 (to 32768). Every run reports its own crossover (the
affine fit's ``t_0 / b``) and the counted-FLOPs crossover (fixed FLOPs over ``4 L C``), so a reader can see where
the fit starts against where the cache dominated on the machine at hand. A GPU takes other sizes
(``GPU_PROFILES``: wider, larger batch, longer contexts, since an eager decoding step there is bound by kernel
launches); they are estimates, not yet measured.

Held when, over the fit range: attention's time slope is above ``growing_min`` (0.5), linear attention's and
Mamba's are within ``flat_max`` (0.1) of zero; and, in the counts, attention's FLOPs and memory grow per position
while the recurrent mixers' are exactly constant. Not held otherwise, and the failed parts are named.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.beyond.decode_cost.config import Config
from attnlab.experiments.beyond.decode_cost.measure import run

SPEC = assemble("decode-cost", __name__)

__all__ = ["SPEC", "Config", "run"]
