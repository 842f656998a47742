"""What comes after attention: the chapter's closing look at what is fixed and what is still moving.

Empty for now. The experiments of this section go here, one package each, as the other sections' do (see "How
to add an experiment" in :mod:`attnlab.experiments`): ``kv-cache`` (GQA/MQA and MLA caches), ``variants`` (the
modern block against GPT-2's), ``receptive-field`` (sliding windows through layers), ``decode-cost`` (linear
attention and state-space models against a cached attention), ``recall`` (a fixed-size state against attention,
Arora et al. 2023) and ``experts`` (mixture of experts at equal compute).
"""
