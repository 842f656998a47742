r"""Experiment ``experts`` (claim C17; Shazeer et al. 2017; Switch Transformer, Fedus et al. 2021; Mixtral, Jiang
et al. 2024): a mixture of experts adds parameters without adding compute per token, and the parameters lower the
loss.

The claim. A dense feed-forward network spends all its parameters on every token. A mixture of E experts routes
each token to k of them: the parameters grow with E, the work per token only with k. Mixtral 8x7B holds 47B
parameters and uses 13B per token, and matches or beats a dense 70B model (the paper's abstract and Table 1).

What is measured. attnlab GPTs at nanoGPT's CPU recipe for char-level Shakespeare (4 layers, C = 128, 4 heads,
context 64, batch 12, 2000 iterations, AdamW 1e-3 -> 1e-4 with 100 warm-up, weight decay 0.1, clipping 1), whose
feed-forward networks differ only: the dense GELU FFN of width 4C (E = 1) against mixtures of E in {2, 4, 8} GELU
experts of width 4C/k with top-k = 2 routing (:class:`~attnlab.nn.MoE`: Mixtral's softmax over the top k, the
Switch load-balancing loss at weight 0.01 per layer in training, no capacity limit, so no token is dropped). Each
token then passes through k experts of width 4C/k: the dense FFN's width, its FLOPs and, but for the router (C E)
and one output bias per extra expert, its parameters.

- parameters: total, and active per token (all but the E - k experts a layer leaves out), counted from the modules;
- FLOPs per token of a forward, counted by ``torch.utils.flop_counter``: equal across E up to the router's ``2 C E``
  per layer (checked: within 1%);
- validation loss after the same budget (cross-entropy in eval mode: the balancing loss enters training only), for
  each of ``seeds`` seeds (the same batches and initialisation stream for every E within a seed), and its mean;
- the router's load after training on validation batches: the share of the router's choices per expert (the
  Switch loss pushes it to 1/E), summarised as ``E max_i f_i`` (1: even; E/k: every choice on k experts);
- Mixtral's totals from its published configuration (Table 1: dim 4096, 32 layers, 32 heads of 128 and 8 kv heads,
  SwiGLU experts of 14336, vocabulary 32000 with an untied head, 8 experts, top-2), counted as our models are:
  46.7B total and 12.9B active, the paper's "47B" and "13B".

E = 2 with k = 2 sends every token through both experts: the dense FFN split in two and recombined by learned
gates, with the dense model's parameters. It is the control, reported and not judged; E = 4 and 8 add two and
four times the FFN's parameters at the same compute.

Held when, in the full profile (3 seeds): the compute is equal (FLOPs per token within 1%), the mean validation loss
of every mixture with more parameters than the dense model (E > k) is below the dense model's, and it falls as E
grows among them. Not held otherwise, and the failed part is named: at this small scale each expert sees only k/E
of the tokens, so more parameters need not pay within 2000 iterations; the losses and their spread over seeds are
reported either way. The quick profile counts the full profile's models (parameters, FLOPs per token) without
training them: losses that separate from the seeds' spread take minutes of training on a CPU, so its verdict is
null and its words say so.
"""

from attnlab.experiments.base import assemble
from attnlab.experiments.beyond.experts.config import Config
from attnlab.experiments.beyond.experts.measure import run

SPEC = assemble("experts", __name__)

__all__ = ["SPEC", "Config", "run"]
