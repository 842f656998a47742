"""What comes after attention: the chapter's closing look at what is fixed and what is still moving.

The experiments of this section go here, one package each, as the other sections' do (see "How to add an
experiment" in :mod:`attnlab.experiments`): ``kv-cache`` (GQA/MQA and MLA caches), ``variants`` (the modern block
against GPT-2's), ``receptive-field`` (sliding windows through layers), and three on the models that trade
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

Library: :mod:`attnlab.functional.linear_attention` and :mod:`attnlab.nn.linear_mixer` (linear attention),
:mod:`attnlab.functional.selective_scan` and :mod:`attnlab.nn.ssm` (Mamba), :mod:`attnlab.nn.moe` (the mixture of
experts), :mod:`attnlab.models.gpt_config` (``mixer``, ``n_expert``, ``top_k``, ``d_state``), :mod:`attnlab.data.mqar`
(the recall task). Shared by decode-cost and recall: :mod:`attnlab.experiments.beyond.mixers` (the three mixers at
matched parameters).
"""
