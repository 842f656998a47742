"""The capstone: transformer blocks that compose, and what attention learns in them.

The chapter's next step (and seed 002 §4.3, seed 003's practice): stack pre-norm blocks (attention, feed-forward,
residuals, layer norm, positions) into a GPT; parameters grow linearly with depth and the loss improves with
size; a trained transformer links "it" to its referent.

Library: :mod:`attnlab.nn.transformer` (``TransformerEncoderLayer``), :mod:`attnlab.nn.positional`,
:mod:`attnlab.models.gpt` (the mini-GPT), :mod:`attnlab.models.encoder` (all-MiniLM-L6-v2),
:mod:`attnlab.models.pronoun` (the pronoun model), :mod:`attnlab.train` (the training loop).

Experiments: ``depth`` (parameters against depth, loss against size), ``pronoun`` (attention from "it", in a
small trained model and in the pretrained encoder).

Exercises (:mod:`attnlab.exercises`): ``sinusoidal_encoding``, ``rotary``, ``layer_norm``, ``transformer_block``.
"""
