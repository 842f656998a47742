"""Section 3.3, scaled dot-product and multi-head attention (and the lesson's "why attention won").

The chapter: ``Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V`` (Vaswani et al. 2017, eq. 1), scaled so that
the softmax does not saturate as ``d_k`` grows; heads that attend to different things at once; causal masks;
O(n^2) cost that bounds the context window; O(1) sequential steps and O(1) path length against the RNN's O(n).

Library: :mod:`attnlab.functional.sdpa` (the one ``scaled_dot_product_attention``: naive, chunked
online-softmax, manual backward, torch, triton), :mod:`attnlab.nn.multihead` (``MultiHeadAttention``, masks, KV cache),
:mod:`attnlab.nn.positional`, :mod:`attnlab.models.blocks` (the blocks the lab compares).

Experiments: ``scaling`` (variance of q.k, saturation with and without 1/sqrt(d_k)), ``heads`` (a task one head
cannot solve and several can), ``complexity`` (time and memory against n), ``parallelism`` (sequential steps
and wall clock, LSTM against attention), ``paths`` (Vaswani et al.'s Table 1, measured).

Exercises (:mod:`attnlab.exercises`): ``scaled_dot_product_attention``, ``causal_mask``,
``multi_head_attention``, ``kv_cache_step``, ``online_softmax_update``.
"""
