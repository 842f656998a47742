r"""Experiment ``alignment`` (claim C3; seed 001 §3.2): attention learns a soft alignment between source and target.

Bahdanau et al. 2015 call their attention model one that learns "to align and translate": the weight ``a_ij`` of
target word i on source word j, never supervised, comes out as a soft alignment (their Figure 3). Here the gold
alignment is known exactly: date normalisation (:func:`attnlab.data.seq2seq.date_pairs`), e.g.
``"the 3rd of March 2021" -> "2021-03-03"`` character by character in six source formats, where each target digit
comes from one field of the source (year, month word or number, day with its ordinal suffix).

An attention model (:class:`attnlab.models.seq2seq.Seq2Seq`, ``attention`` Bahdanau by default) is trained on
fresh dates every batch. Then, on held-out dates of every format, with the gold target fed in (teacher forcing:
the weights the model gives each gold target character; the greedy output's exact-match accuracy is reported
beside), for every target digit t (the two ``-`` have no source):

- **argmax agreement**: the fraction of target digits whose most-attended source character lies inside the gold
  field;
- **mass on the gold field**: ``sum_{j in field(t)} a_tj``, averaged over the target digits;
- **chance**: what uniform attention (``a_tj = 1/S``) scores on both, ``|field(t)| / S`` averaged the same way: a
  random source position lands inside the field with that probability, and uniform weights put that mass on it.

Both are also given per field (year, month, day) and per source format. ``held`` when, over all held-out dates,
the argmax agreement is at least ``argmax_ratio`` times chance and the mass on the gold field at least
``mass_ratio`` times chance.

Heatmaps (target rows x source columns, the gold field outlined) for one date of each format and, in the full
profile, for German -> English sentences from a small attention model trained on ``trans-de-en`` (no gold
alignment there: a picture of what the model learned, with its test BLEU); every map also goes to the report's
interactive viewer (``data["viewer"]``, kind ``"cross"``: query tokens the target, key tokens the source).

Measured in development (seed 0): the former quick profile (Bahdanau, hidden 48, 300 steps at batch 32) normalised every
one of 600 held-out dates; argmax agreement 0.978 and mass 0.888 against chance 0.249 (by field, argmax / mass:
year 1.00 / 0.97, month 1.00 / 0.86, day 0.91 / 0.75; every format >= 0.97 argmax). Luong-general after the same
training: argmax 0.956, mass 0.950. The tiny profile (120 steps) normalises no date yet, but its attention already
finds the year (argmax 1.00) and scores 0.65 / 0.56 overall.
"""

from attnlab.experiments.attention.alignment.config import Config
from attnlab.experiments.attention.alignment.measure import run
from attnlab.experiments.base import assemble

SPEC = assemble("alignment", __name__)

__all__ = ["SPEC", "Config", "run"]
