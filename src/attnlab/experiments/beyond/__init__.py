"""What comes after attention: the chapter's closing look at what is fixed and what is still moving.

The chapter closes on what came after: the same scaled dot-product attention, reshaped to make the KV cache smaller
or the context longer (grouped-query and multi-query attention, multi-head latent attention, sliding windows), the
block today's open models run (RMSNorm, SwiGLU, rotary positions, no biases), and what may replace attention (linear
attention, state-space models) or sit beside it (mixtures of experts).

Library: :mod:`attnlab.functional.gqa` (grouped-query attention on the one SDPA), :mod:`attnlab.nn.rolling_cache`
(the sliding window's rolling cache), :mod:`attnlab.nn.mla` (multi-head latent attention and its latent cache),
:mod:`attnlab.nn.norms` and :mod:`attnlab.nn.feedforward` (RMSNorm, SwiGLU), :mod:`attnlab.nn.decoder_block` and
:mod:`attnlab.models.gpt_config` (the block and GPTConfig's options that build them), :mod:`attnlab.nn.linear_mixer`,
:mod:`attnlab.nn.ssm`, :mod:`attnlab.nn.moe`.

Experiments: ``kv-cache`` (the cache per token of MHA, GQA, MQA, MLA and a sliding window, read from the real caches,
against the papers' formulas and DeepSeek-V2's 93.3%), ``variants`` (those attentions and the modern block against
GPT-2's at equal parameters and training budget: validation loss over seeds, decoding speed), ``receptive-field``
(a window w reaches w L positions back through L layers, read from gradients); and three on the models that trade
attention's growing cache back for a fixed state, or add parameters without adding compute:

- ``decode-cost`` (package ``decode_cost``): time, counted FLOPs and decoding memory per generated token against
  the context for softmax attention with a KV cache, linear attention and Mamba (Katharopoulos et al. 2020; Gu & Dao
  2023): the first grows with the context, the others stay flat;
- ``recall`` (package ``associative_recall``): multi-query associative recall against the number of key-value pairs
  at equal parameters (Arora et al. 2023, "Zoology"): attention keeps recalling, the fixed-size states fall off,
  the chapter's bottleneck returned;
- ``experts`` (package ``experts``): validation loss on Shakespeare against the number of experts at equal compute
  per token, with total and active parameters, the router's load and Mixtral's 47B / 13B (Shazeer et al. 2017;
  Fedus et al. 2021; Jiang et al. 2024).

Also :mod:`attnlab.functional.linear_attention`, :mod:`attnlab.functional.selective_scan`, :mod:`attnlab.data.mqar`
(the recall task) and :mod:`attnlab.experiments.beyond.mixers` (the three mixers at matched parameters, shared by
decode-cost and recall).
"""
