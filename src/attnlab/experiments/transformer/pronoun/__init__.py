r"""Experiment ``pronoun`` (claim C9, seed 003, practice): attention links "it" to its referent.

"The animal didn't cross the street because it was too tired": "it" is the animal; "... too wide": the street.
The seed's pen-and-paper exercise says that attention is what makes that link: the representation of "it" is
built by attending to the noun it stands for.

Task (:mod:`attnlab.data.pronoun`): minimal pairs from nine frames, 20 animate and 20 inanimate nouns and 16 + 16
adjectives that fit only one of them; in three frames either noun may come first, so that only the meaning of
the words says which noun "it" is. Training pairs use training words; the test pairs use held-out words only
(4 nouns and 4 adjectives of each kind), which the model met in the lexicon alone (masked-word sentences such as
"the donkey was [MASK]", mixed into every batch), never in a pronoun pair.

Model (:class:`attnlab.models.pronoun.PronounModel`): word embedding + learned positions -> ``num_layers`` pre-norm
:class:`attnlab.nn.TransformerEncoderLayer` blocks with bidirectional self-attention (padding masked out) ->
LayerNorm -> logits over the vocabulary through the embedding's transpose (tied). One objective for both kinds
of sentence: name the word a position stands for, the hidden word at ``[MASK]`` in the lexicon and the referent
noun at "it" in a pronoun sentence (cross-entropy over the whole vocabulary). The resolution is read as the
comparison of the two candidates' logits at "it" (chance 0.5).

Why name the noun rather than choose between two positions: with a two-way choice, an "animate vs inanimate"
direction at "it", read off the adjective, scores the pair without any look at either noun; naming the noun
asks for its identity at "it", which must come from the noun's position by some route of attention. Which route
is the question measured: from "it" straight to the referent, or through another position (for instance the
adjective attending to the noun that fits it and "it" attending to the adjective).

Attention measured (``need_weights=True``), on held-out sentences, from the row of "it" in every layer and head:

- the strongest link (:func:`.attention.strongest_link`, the primary measure, with no choice made on any data): the head
  with the most weight on either noun, over all layers and heads, puts it on the referent; "it" resolved by
  where it attends most, as one reads the figure of an attention map. Chance 0.5.
- a fixed head, and a fixed layer with its heads averaged, chosen on validation sentences of training words
  and scored on held-out ones: the share of sentences in which the row points to the referent (more weight on
  it than on the other noun, and at least ``min_weight``); and the same per kind of referent (animate,
  inanimate), which shows whether one head serves both kinds or each kind has its own.
- the same for the adjective's row: the other route by which the referent can reach "it".

Measured in development (two-layer models only; no other size was tried):

- full profile (3000 steps, seeds 0-4): held-out accuracy 1.00, 1.00, 0.93, 1.00, 1.00; the strongest link from
  "it" on the referent in 1.00, 0.56, 0.50, 1.00, 0.50 of held-out sentences: both in two seeds of five, so
  ``held`` False. In the three seeds without the link the adjective's row pointed to the referent (>= 0.99),
  the other route by which the referent can reach "it" (in seed 2 of the quick profile, which had no link
  either, "it" put a mean weight of 0.51 on the adjective in one head of layer 2).
- 1200 steps, seeds 0-5: the link in four seeds of six, held-out accuracy >= 0.7 in five: the route depends on
  the seed, and can change with training (seed 1 had the link at 1200 steps, not at 3000). The sixth (seed 3)
  scored 0.37 on held-out words, below chance, although its strongest link from "it" fell on the referent in
  every held-out sentence: attending to the right new noun is not yet naming it (the quick profile's seed 0,
  at 600 steps, shows the same).
- At no budget and in no seed did a single head point to the referent in both kinds of sentence. In seed 0
  (looked at closely) one head of the first layer goes from "it" to the animate noun unless an inanimate
  adjective draws its weight away, another to the inanimate noun unless an animate adjective does: the query
  of "it" and the nouns' keys are the same in both sentences of a pair, and the adjective's key wins the
  softmax of the head that would pick the wrong noun.

The quick profile trains two seeds for 400 steps (the report's time), so that it shows the spread between seeds;
the pretrained all-MiniLM-L6-v2 reads 100 generated minimal pairs and the 24 hand-written ones (:mod:`.pretrained`).
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.transformer.pronoun.config import Config
from attnlab.experiments.transformer.pronoun.measure import run

SPEC = assemble("pronoun", __name__)

__all__ = ["SPEC", "Config", "run"]
