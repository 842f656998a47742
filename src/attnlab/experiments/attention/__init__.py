"""Section 3.2, the attention mechanism.

The chapter: instead of one fixed vector, the decoder looks back at every encoder state with weights
``alpha_ij = softmax_j(score(s_i, h_j))`` (Bahdanau's additive score, Luong's dot, general and concat), a
soft alignment it is never shown; backpropagation flows through the weights straight to every source
position; attention is a differentiable dictionary lookup.

Library: :mod:`attnlab.functional.scores` (additive and multiplicative scores), :mod:`attnlab.nn.classic_attention`
(``AdditiveAttention``, ``LuongAttention``, with a hand-derived backward), :mod:`attnlab.models.seq2seq`
(decoders with each attention; greedy and beam search), :mod:`attnlab.models.lookup` (the learned dictionary).

Experiments: ``alignment`` (the learned weights against the gold alignment of dates), ``gradient-paths`` (the
gradient reaching each source token with and without attention), ``dictionary-lookup`` (temperature: soft,
hard, and what can be learned through each).

Exercises (:mod:`attnlab.exercises`): ``additive_score``, ``luong_scores``, ``attention_context``,
``softmax_backward``, ``greedy_decode``, ``beam_search_step``.
"""
