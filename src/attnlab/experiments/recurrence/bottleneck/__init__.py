r"""Experiment ``bottleneck`` (claim C2; seed 001 §3.1-3.2): the encoder-decoder's fixed vector is a bottleneck.

An RNN encoder-decoder without attention (Cho et al. 2014; Sutskever et al. 2014) reads the whole source into one
fixed vector ``c = [h_fwd ; h_bwd]`` and generates the target from it alone: whatever the length of the source,
the decoder sees the same number of numbers. Attention (Bahdanau et al. 2015) gives the decoder, at every step, a
new context ``c_i = sum_j a_ij h_j`` over all the encoder states, so that the information need not pass through one
vector. Bahdanau et al.'s Figure 2 plots BLEU against sentence length: the encoder-decoder (RNNencdec) falls as the
sentences grow, the attention model (RNNsearch-50) holds past 50 words; their Table 1 (WMT'14 En->Fr, all
sentences): RNNencdec-30 13.93, RNNsearch-30 21.50, RNNencdec-50 17.82, RNNsearch-50 26.75 BLEU.

Models (:class:`attnlab.models.seq2seq.Seq2Seq`): the same bidirectional-GRU encoder and the same decoder (GRU,
maxout deep output) for every model except the attention: ``"none"`` (the fixed vector at every step),
``"bahdanau"`` (additive, from the previous state), ``"luong-general"`` (multiplicative, from the current state,
input feeding). **Equal parameter count**: each model's hidden size is solved so that its parameter count is the
nearest to ``param_budget`` (the no-attention model gets a larger hidden size for the same count; both counts are
recorded). **Equal training budget**: the same steps, batch size, learning-rate schedule, clipping and the same
stream of training batches (:func:`attnlab.experiments.training.train`).

Part (a), synthetic: reverse (or copy) strings of ``n_symbols`` symbols, lengths drawn uniformly from
``[min_len, max_len]`` for training (fresh examples every batch), then exact-match accuracy (greedy output equal
to the reference) and per-token accuracy on a held-out set of ``eval_examples`` strings of each length in
``eval_lengths`` (all within the training range: the question is capacity, not generalisation to unseen lengths;
the longest are well past the training average). The **breakdown length** is the first evaluated length at which
the no-attention accuracy is below ``breakdown_fraction`` of its accuracy at the shortest length.

Part (b), German -> English (the example sentences of the Debian dictionary ``trans-de-en``, read by
:func:`attnlab.data.seq2seq.load_de_en`, split 90/5/5): the no-attention and the attention models at equal
parameter count and training budget, greedy decoding of the test split, sacrebleu corpus BLEU (and chrF) overall and
per source-length bucket. The sentences are short (at most ``de_en_max_len`` tokens), so the effect of length can
only be smaller than in Bahdanau et al.'s 50-word sentences. A missing corpus does not fail the experiment: this
part then reports ``held`` None with the reason.

``held``: True when every part that was measured shows the claim (see :class:`Config`), False when one does not;
None when neither part could be measured.

Measured in development (seed 0, 2 busy cores):

- the former quick profile (reverse, lengths 2-20, 400 steps at batch 32; none H=43 with 60,078 parameters,
  bahdanau H=41 with
  60,524, luong-general H=48 with 60,094): exact match at lengths 4/8/12/16/20: none 0.92/0.185/0.005/0/0
  (breakdown at 8), bahdanau 0.995/0.995/0.995/1.0/0.95, luong-general 1.0/0.995/0.96/0.955/0.835. ~38 s of CPU.
- tiny profile (lengths 2-10, 300 steps), seeds 0-2: none 0.95-1.00 at length 3, 0.00-0.01 at 10; bahdanau
  0.88-0.97 at 10.
- German -> English (budget 2M, H ~80, embeddings 128, batch 64): after 400 steps both ~0.5 BLEU; after 1500 steps
  without dropout none 0.71, bahdanau 1.44 (validation loss 3.84 / 3.62, training loss 2.5: overfitting); after
  3000 steps with dropout 0.3 none 0.65, bahdanau 1.50 BLEU (chrF 11.5 / 13.4, validation loss 3.53 / 3.35). The
  outputs are full of ``<unk>``: ~12.6k training pairs with a 5.5k-word target vocabulary are too few for these
  models to translate; attention is ahead in loss, chrF and BLEU, by less than one BLEU point.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.recurrence.bottleneck.config import Config
from attnlab.experiments.recurrence.bottleneck.measure import run

SPEC = assemble("bottleneck", __name__)

__all__ = ["SPEC", "Config", "run"]
