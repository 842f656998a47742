r"""Experiment ``recall`` (claim C16; Arora et al. 2023, "Zoology", multi-query associative recall): the chapter's
bottleneck, returned. (The package is ``associative_recall``: :mod:`attnlab.experiments.recall` is section 3.1's
memory task.)

The claim. An RNN squeezes the past into one fixed vector; attention keeps every position. Linear attention and
state-space models go back to a fixed-size state, which is what lets them decode in O(1) per token
(``decode-cost``), and they pay for it in what the state can hold: at the same model size, softmax attention
recalls every key-value pair it was shown, while a fixed state recalls fewer and fewer as the pairs outgrow it.
Zoology traces most of the perplexity gap between attention and attention-free language models to this recall, and
measures it with MQAR: key-value pairs in context, then queries for the keys.

What is measured. MQAR with D in ``pairs`` key-value pairs per example and every key queried once
(:mod:`attnlab.data.mqar`, with one token per pair: the deviation from Zoology's two tokens, and why, is stated
there). One :class:`~attnlab.models.GPT` per mixer, everything else equal (2 layers, 4 heads, learned positions,
GELU FFN, tied head), softmax and linear attention at C = 64 and Mamba at the width whose model has the closest
parameter count (60: 251,160 parameters against 242,432, 3.6% more, the closest a multiple of the 4 heads allows
beside the 2,192-token tied embedding; :mod:`attnlab.experiments.beyond.mixers`). What each carries from token to
token per layer: attention's KV cache, 2C numbers per position (4,096 after the 32 tokens of D = 16); linear
attention's S and z, 1,088; Mamba's scan and convolution state, 2,280.

The keys must outnumber what a state can keep apart. A linear read-out of a state recalls without interference as
many keys as its key features have dimensions: with ``n_keys`` no larger than that, a fixed state can give every key
its own direction and recall perfectly. Linear attention's keys have C = 64 dimensions over its heads, Mamba's
N = 16 (B is shared by its channels); so there are 128 keys (Zoology uses a vocabulary of 8,192), and 16 values.
Softmax attention needs no such room: it picks the best-matching key, however many there are.

Training, equal for every model: 4000 iterations of Adam at a constant 3e-3 (no weight decay, no clipping:
:func:`~attnlab.experiments.training.adam`), batches of 64 fresh examples with D drawn per batch from ``pairs`` (one
model serves every D, as Zoology trains on a mixture), seeds 0, 1, 2 (within a seed the same batches and
initialisation stream for every mixer). Accuracy on 512 held-out examples per D (the same for every mixer) every
500 iterations and at the end: the curves show whether a model was still learning when the budget ran out, and
the summary reports the gain at the largest D over the last quarter of training.

Chosen in development (seed 0), before the full profile ran, and why: with the Trainer's nanoGPT recipe (weight
decay 0.1 on matrices) Mamba never left chance: the decay pulls its A_log, a matrix, towards zero (the authors
exempt it); without decay it learned. With 16 keys, no more than its key dimensions, linear attention recalled every
D up to 16 perfectly: the state was never outgrown, so the keys were raised to 128. The two-token format of Zoology
was tried first: attention stayed at 1/D accuracy (choosing among the context's values) for 6,000 iterations without
forming the induction circuit it needs, a budget a CPU affords.

Held when, over the seeds' means: attention recalls at least ``recall_min`` (0.9) at every D, and each fixed-state
model at the largest D is at least ``gap`` (0.2) below attention and ``drop`` (0.1) below its own accuracy at the
smallest D (it learned the task, then lost it as the pairs grew). Not held otherwise, and the failed parts are
named. The quick profile builds the models and measures their sizes and states only (training to recall takes
minutes on a CPU): its verdict is null and its words say so.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.beyond.associative_recall.config import Config
from attnlab.experiments.beyond.associative_recall.measure import run

SPEC = assemble("recall", __name__)

__all__ = ["SPEC", "Config", "run"]
