r"""Experiment ``long-range`` (claim C7, seed 002 §4.2; seed 001 objectives 1-2): recall a token seen d steps ago.

**The claim.** In a recurrent model, information from token 1 reaches a late output only through every state in
between ("token 1 and token 100 are ... 99 steps for an RNN"): a plain RNN's long-range signal degrades with
distance; LSTM and GRU gating mitigate it (their cell state or update gate carries it); attention puts token 1
one step from the query at any distance.

**The design, and why.** The memory task (:mod:`attnlab.experiments.recall`): a symbol out of K, d distractors, a
query; name the symbol (chance 1/K). It needs nothing but memory, and its difficulty is the distance alone, as in
Hochreiter & Schmidhuber's (1997) experiments with growing time lags and Bengio et al.'s (1994) latching. Each
model is **trained and evaluated per distance**: a fresh model of each kind is trained at each listed d until
it solves it (held-out accuracy >= ``task.solve``) or the budget (``train.max_iters``, the same for every model
and distance) runs out. A model that solves the short distances has shown that it learns the task; where it then
fails, what fails is the reach of its memory, not the training (a design trained on mixed distances cannot tell
the two apart: there a model that never learned the task at all also "falls"). The models have (nearly) the same
number of parameters (each one's hidden size solved for ``param_budget``) and the same batches, optimiser and
budget: :class:`attnlab.models.recall.RecallRNN` (``Embedding -> RNN | LSTM | GRU -> Linear``) and
:class:`attnlab.models.recall.RecallAttention` (one pre-norm transformer block read at the query). The LSTM is the
one the literature's long-lag results are about: its forget gate starts open, with bias 1 (Gers et al. 2000;
Jozefowicz et al. 2015; Hochreiter & Schmidhuber's 1997 LSTM had no forget gate at all, a gate fixed at 1);
``vanishing-gradients`` sets it beside PyTorch's initialisation. The other models keep PyTorch's.

What "solves within the budget" measures: the steps a model needs grow with the distance (Hochreiter &
Schmidhuber report the number of training sequences until success); the reach is the distance the budget lets a
model learn. The quick profile's budget is small (300 steps of 32 examples), the full profile's ten times larger,
with longer distances and three seeds.

**Held** when all of these hold, in a majority of seeds (fixed before running):

- ``every_model_solves_the_shortest``: each model solves the shortest distance (else the fall is not memory);
- ``rnn_fails_far``: the RNN does not solve the longest distance;
- ``gated_reach_further``: each gated cell's *reach* (the largest d up to which it solves every listed distance)
  is beyond the RNN's;
- ``attention_solves_every_distance``: the attention model solves every listed distance.

**Not held** when any fails; the summary says which, with the accuracies, steps and reaches measured.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.recurrence.long_range.config import Config
from attnlab.experiments.recurrence.long_range.measure import run

SPEC = assemble("long-range", __name__)

__all__ = ["SPEC", "Config", "run"]
