r"""Experiment ``kv-cache`` (claims C11, C12, C13): what today's attention keeps per token while it decodes.

A decoder keeps, for every earlier token and every layer, what later queries need of it. Per token per layer, in
elements (n_h heads of size d_h):

.. math::
    \text{MHA: } 2 n_h d_h \qquad \text{GQA: } 2 n_{kv} d_h \qquad \text{MQA: } 2 d_h \qquad
    \text{MLA: } d_c + d_h^R \qquad \text{window } w\text{: } 2 n_h d_h (w + 1) \text{ in all, at any length}

(Vaswani et al. 2017; Ainslie et al. 2023; Shazeer 2019; DeepSeek-V2 section 2.1, its Table 1; Mistral 7B section 2:
a rolling buffer of W positions, which counts W where our mask, ``p - w <= j <= p``, keeps w + 1.)

Measured: real decoding caches, not formulas. At one width (C = 1024, 16 heads of 64; GQA with 4 kv heads for the 16
query heads; DeepSeek-V2's ratios for MLA, d_c = 4 d_h = 256, d_h^R = d_h / 2 = 32; a window of 256), a GPT of each
kind prefills S random tokens through :meth:`attnlab.models.GPT.forward` with each block's own cache
(:meth:`~attnlab.nn.decoder_block.DecoderBlock.new_cache` with capacity S, so that no slot is spare), and the bytes
its tensors hold (``nbytes()``) are read after the prefill, for every block and several S. Why this tests the claim:
the cache is what the decoding path actually allocates, so a layout that kept more than the paper says (repeated kv
heads, up-projected MLA keys, a window that grows) would show here; the formula is a prediction the bytes must equal.
Held (with the DeepSeek part below): every cache equals its formula x S x element size exactly, in every layer at
every S (the window's: the same constant at every S); not held: any difference, however small. The models are
untrained: the layout does not depend on the weights.

The longest context a memory budget holds (C5's context window, now for the cache) follows from the measured bytes
per token: ``budget // (layers x bytes per token per layer)``; a window's cache fits at any length or not at all, and
its reach is w L (``receptive-field``).

DeepSeek-V2's abstract says its cache is 93.3% smaller than DeepSeek 67B's, without the arithmetic. Checked against
the published configurations (the deepseek-llm-67b-base model card's config: hidden 8192, 64 heads, 8 key-value
heads, 95 layers; DeepSeek-V2's: 60 layers, 128 heads of 128, kv_lora_rank d_c = 512, qk_rope_head_dim d_h^R = 64;
its section 3.2.3: deployed with the cache quantized to 6 bits per element on average): measured here are one layer
with the 67B's cache shape (8 kv heads of 128) and one MLA layer with d_c = 512, d_h^R = 64; per token for the whole
model, 2048 x 95 x 16 bits = 389,120 bytes against 576 x 60 x 6 bits = 25,920 bytes, 1 - 25,920 / 389,120 = 93.3%.
Held when our figure rounds to 93.3%; its parts are reported beside it (at BF16 both: 82.2%; MLA against MHA at V2's
own dimensions, per layer: 98.2%), so that the reader sees the 93.3% is MLA, fewer layers and 6-bit elements together.

Profiles: full C = 1024 with 2 layers and S up to 4096; quick the same width, 1 layer, S = 32 and 128 (the bytes per
token do not depend on S: the check is exact at any); tiny a narrow model for the tests.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.beyond.kv_cache.config import Config
from attnlab.experiments.beyond.kv_cache.measure import run

SPEC = assemble("kv-cache", __name__)

__all__ = ["SPEC", "Config", "run"]
