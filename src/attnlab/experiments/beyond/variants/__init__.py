r"""Experiment ``variants`` (claims C11, C14): today's attention and today's block against GPT-2's, at equal
parameters and equal training budget.

The claims. Grouped-query attention keeps quality close to multi-head attention at a fraction of its cache (Ainslie
et al. 2023, who found GQA close to MHA and MQA a little below it; Shazeer 2019 for MQA). The modern block of LLaMA,
Mistral and Qwen (RMSNorm, SwiGLU, rotary positions, no biases) trains at least as well as GPT-2's; SwiGLU and
RMSNorm do not hurt and usually help (Shazeer 2020: GLU variants of the FFN, at the same parameters and compute,
gave lower perplexity; Zhang & Sennrich 2019: RMSNorm matches LayerNorm, for less work).

The design. Small GPTs on char-level Shakespeare (the built-in corpus, 90/10 split), nanoGPT's CPU recipe: 4 layers,
4 heads, context 64, batch 12, 2000 iterations of AdamW (warm-up 100, cosine 1e-3 -> 1e-4, weight decay 0.1, clip 1),
no dropout. Variants, each named after what it changes in GPT-2's block (nanoGPT's defaults: multi-head attention,
learned positions, LayerNorm, GELU FFN of 4C, biases):

- ``gqa``: 2 kv heads for the 4 query heads; ``mqa``: 1 (Ainslie et al. 2023; Shazeer 2019);
- ``mla``: multi-head latent attention with d_c = 64 and d_h^R = 16 (DeepSeek-V2; its decoupled rotary key brings
  rotary positions with it, so this variant also drops the position table);
- ``window``: a sliding window of 16 (Mistral 7B): each layer sees 16 positions back, 4 layers reach 64, the whole
  context, only through the stack (``receptive-field``);
- ``modern``: RMSNorm, SwiGLU (width 8C/3), rotary positions, no biases; ``swiglu`` and ``rmsnorm``: that one change
  alone, so that the two parts of the claim are measured on their own.

Equal parameters: GPT-2's block at width 128 sets the count (all parameters; the head is tied); every other variant
takes the width whose count is closest to it, among multiples of n_head (2 n_head with rotary positions); held needs
every count within 4% (measured in development: gqa 132 (-2.4%), mqa 136 (-1.1%), mla 128 (-2.0%), modern 128
(-1.8%), the others within 0.2%). Equal budget: the same iterations, batch and context, so the same tokens (1.5M).
Seeds: 3, and seed s gives every variant the same training batches and the same evaluation batches (paired runs);
the initial weights differ in their shapes, not in the seed.

Measured: the validation loss (mean over 200 batches, as nanoGPT reports it) at the end; the KV cache of one layer
after a prefill of the full context, read from the cache's tensors; decoding tokens/s (greedy, cached, batch 1, 63
tokens after a one-token prompt, one thread, the median of interleaved rounds of ``torch.utils.benchmark`` medians).

Held, fixed before running: (1) every parameter count within 4% of GPT-2's; (2) GQA's measured cache is
``n_kv d_h' / (n_h d_h)`` of MHA's, below 1 (exact); (3) "close": GQA's mean validation loss exceeds GPT-2's (MHA) by
at most the noise, the larger of the two seed ranges (max - min over the seeds): the variant moves the loss no more
than changing the seed does; (4) "do not hurt": the same rule for modern, swiglu and rmsnorm against GPT-2. Not held:
any of them fails. "Usually help" is reported, not judged: the seeds (of 3) where the variant's loss is below
GPT-2's with the same batches, and the mean difference; three seeds cannot say "usually". MQA, MLA and the window are
reported with the same rule, outside the verdict (the claim is about GQA). With fewer than 3 seeds there is no spread
to judge by: (3) and (4) are None, and so is ``held``. Decoding speed has no claim here: a model this small spends a
decoding step in Python and small kernels, not in reading its cache, so the cache's size cannot show in tokens/s on
a CPU; it is reported as measured, as is every loss, including where a variant loses.

Profiles: full as above; quick one seed of a 2-layer model of width 32 for 120 iterations (the report's time): the
claim is not judged there (None, with the reason), the parameter match is looser (12%: at width 32 one step of 4
changes the count by ~25%) and the cache fraction is exact; tiny for the tests.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.beyond.variants.config import Config
from attnlab.experiments.beyond.variants.measure import run

SPEC = assemble("variants", __name__)

__all__ = ["SPEC", "Config", "run"]
