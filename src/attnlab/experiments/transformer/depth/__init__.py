r"""Experiment ``depth`` (claim C8, seed 002 §4.3): composability. Transformer blocks stack: the parameter count
grows linearly with the number of blocks, and the loss improves with size.

Parameters. A :class:`attnlab.models.GPT` of depth L at width C, vocabulary V and context ``block_size``
holds, with biases (the output head is tied to the token embedding, so it adds nothing):

.. math::
    N(L) = \underbrace{V C + \mathit{block\_size}\, C + 2C}_{\text{embeddings, final LayerNorm}}
           + L \underbrace{(12 C^2 + 13 C)}_{\text{one block}}, \qquad
    12C^2 + 13C = \underbrace{4C^2 + 4C}_{W^{Q,K,V,O}} + \underbrace{8C^2 + 5C}_{\text{FFN } C \to 4C \to C}
                  + \underbrace{4C}_{2\ \text{LayerNorms}}

Measured: the real models' counts for every L, the least-squares line through them (slope = parameters per
block, intercept = what does not depend on depth), checked to pass exactly through every point (integer
arithmetic: :func:`exact_line`) and to equal the formula above.

Loss. Every depth is trained with the same budget (iterations, batch, context, learning-rate schedule, seed) on
char-level Shakespeare (the built-in corpus, or its first ``text_chars`` characters; 90/10 train/validation
split, :class:`attnlab.data.text.CharCorpus`) by the project's :class:`~attnlab.train.loop.Trainer`; the
validation loss at the end, against the non-embedding parameter count ``L (12 C^2 + 13 C)`` (Kaplan et al. 2020
count parameters so), and the fitted slope of log loss on log parameters, the exponent of a power law
``loss ~ N^slope`` (the shape of a scaling curve; a negative slope: bigger is better). Same iterations is not
the same compute: a block costs the same in every layer, so the deeper model spends L times the FLOPs of one
block per token; the seconds of each run are reported with it. A small budget can leave deep models
under-trained: whatever the order of the losses, it is reported as measured.

In development the former quick profile (C=64, depths 1-8, 400 iterations at lr 1e-3) held in seeds 0-2: each
doubling of depth lowered the validation loss by 0.01-0.02 nats (2.52 -> 2.48 from L=1 to L=8 in seed 0), a log-log
slope of about -0.009, a very shallow curve at this budget. On the tiny budget (150 iterations) the deepest model beat
the shallowest in every seed tried (0-4), but the losses fell monotonically in only two of the five. The quick
profile now compares depths 1, 2 and 4 for 300 iterations at a peak learning rate of 2e-3 (a short budget takes a
larger step), to fit the report's time.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.transformer.depth.config import Config
from attnlab.experiments.transformer.depth.measure import run

SPEC = assemble("depth", __name__)

__all__ = ["SPEC", "Config", "run"]
