"""Experiment ``complexity`` (claim C5; seed 001 objective 6, seed 003): self-attention's O(n^2) cost.

Every query scores every key: ``Q K^T`` is an ``(n, n)`` matrix per head, so time grows as ``n^2 d`` whatever
the implementation. Memory depends on the implementation: the naive one materializes the matrix (O(n^2));
the chunked (FlashAttention-style) one and torch's fused kernel keep one tile (O(n)). The memory a device has
therefore bounds the context window of naive attention, and the time bounds every implementation's.

Measured for ``impl`` in naive / chunked / torch, B=1, 8 heads, hs=64, float32, over sequence lengths n:
median time (``torch.utils.benchmark``) and peak extra memory (:func:`attnlab.measure.peak_memory_bytes`) of
the forward and of a training step (forward + backward), FLOPs of the forward (``torch.utils.flop_counter``),
log-log slopes fitted over the upper half of n, and the largest n that fits each memory budget.


Sizes per device: on the CPU (2 cores) the quick lengths n = 256-2048 are past the fixed costs already (time
slopes near 2 in development); on a GPU those sizes measure kernel-launch overhead (one H200 measured time slopes
of 1.29-1.42 at n <= 2048), so ``GPU_PROFILES`` take n up to 16384 (quick) and 32768 (full), where the n^2 term
dominates, and allow up to 96 GiB of device memory per run.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.self_attention.complexity.config import Config
from attnlab.experiments.self_attention.complexity.measure import run

SPEC = assemble("complexity", __name__)

__all__ = ["SPEC", "Config", "run"]
