"""The practice page's flashcards: one deck per section of the chapter, drawn from its learning objectives.

A card is a question and its answer. A card whose answer rests on a claim that ``attnlab report`` measures names
that experiment and the metrics to cite (:class:`Measured`: ``fnmatch`` patterns over the keys of the experiment's
``metrics`` in ``results.json``); :mod:`attnlab.report.practice` fills them in from a report's results at build time,
or says how to produce them. The numbers are never written here.

The objectives (the chapter's, and the companion lesson's outcomes) are kept in :data:`OBJECTIVES`; each card
names the one it drills by key.
"""

from __future__ import annotations

from typing import NamedTuple

OBJECTIVES = {
    "rnn": "Explain how RNNs process sequences and why vanishing gradients limit their effectiveness on long sequences",
    "gates": "Describe the gating mechanisms of LSTM and GRU cells and explain how they mitigate the vanishing "
    "gradient problem",
    "attention": "Derive Bahdanau additive attention and Luong dot-product attention, and explain how backpropagation "
    "flows through the attention layer",
    "qkv": "Define the query, key, value abstraction and compute scaled dot-product attention from first principles",
    "mha": "Implement multi-head self-attention in PyTorch, including causal masking for autoregressive generation",
    "complexity": "Analyze the O(n\u00b2) complexity of self-attention and explain why it limits context length",
    "costs": "Explain the two costs of recurrence (no parallelism, fading long-range links) that attention removes",
    "transformer": "Define a transformer as a network built from attention with no recurrence, and why it scaled "
    "into modern language models",
    "beyond": "Know what is fixed and what is still moving after attention (SSMs, MoE, MLA)",
}


class Measured(NamedTuple):
    """The experiment of ``attnlab report`` whose numbers a card cites, and which: ``(pattern, what it is)`` pairs,
    each pattern an ``fnmatch`` pattern over the keys of the experiment's metrics."""

    experiment: str
    metrics: tuple[tuple[str, str], ...]


class Card(NamedTuple):
    """One flashcard: ``id`` (unique on the page), question, answer, the objective it drills (a key of
    :data:`OBJECTIVES`) and, if its answer cites a measured number, where that number comes from."""

    id: str
    question: str
    answer: str
    objective: str
    measured: Measured | None = None


class Deck(NamedTuple):
    """The cards of one section of the chapter."""

    id: str
    title: str
    cards: tuple[Card, ...]


RECURRENCE = Deck(
    "recurrence",
    "3.1 Recurrent neural networks and their limitations",
    (
        Card(
            "rnn-step",
            "How does a plain RNN process a sequence?",
            "One step per token with the same weights: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh). The "
            "hidden state h_t is its only memory of everything before t, and step t cannot start before step t-1 "
            "has finished.",
            "rnn",
        ),
        Card(
            "vanishing",
            "Why do an RNN's gradients vanish (or explode) over long spans?",
            "Backpropagation through time multiplies one Jacobian per step: dh_T/dh_1 = \u220f_t diag(1 - h_t\u00b2) "
            "W_hh. When the factors' norms stay below 1 the product shrinks geometrically with the distance "
            "(vanishing); above 1 it grows (exploding). The gradient of a late loss barely reaches early tokens.",
            "rnn",
            Measured(
                "vanishing-gradients",
                (
                    ("log10_drop/*/init", "decades the gradient norm falls over the sequence, untrained cells"),
                    ("factor/rnn_rho=*", "per-step gradient factor of a tanh RNN whose W_hh has spectral radius rho"),
                ),
            ),
        ),
        Card(
            "lstm-gates",
            "How do the LSTM's gates mitigate the vanishing gradient?",
            "The cell state is updated additively: c_t = f_t \u2299 c_{t-1} + i_t \u2299 g_t, h_t = o_t \u2299 "
            "tanh(c_t), with sigmoid gates i, f, o and a tanh candidate g (torch packs the weights W_ii|W_if|W_ig|"
            "W_io). Along c the step Jacobian is diag(f_t): with the forget gate near 1 the gradient crosses many "
            "steps without being squashed by W_hh and tanh'.",
            "gates",
            Measured(
                "long-range",
                (
                    ("reach/*", "the largest recall distance each model solves"),
                    ("chance", "accuracy of a guess"),
                ),
            ),
        ),
        Card(
            "gru-gates",
            "What do the GRU's gates do, and where does PyTorch apply the reset gate?",
            "r_t = \u03c3(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr), z_t likewise; n_t = tanh(W_in x_t + b_in + r_t "
            "\u2299 (W_hn h_{t-1} + b_hn)); h_t = (1 - z_t) \u2299 n_t + z_t \u2299 h_{t-1}. The update gate z "
            "interpolates between the old and the new state (an additive path, as the LSTM's cell). torch and "
            "cuDNN apply r after the product W_hn h; Cho et al. (2014) apply it before.",
            "gates",
        ),
        Card(
            "clipping",
            "What does clipping the gradient norm do, and which problem does it fix?",
            "When the norm of all gradients together exceeds max_norm, every gradient is scaled by max_norm / "
            "||g||: the direction is kept, the step bounded (lr \u00b7 max_norm), so one exploding step cannot "
            "throw the weights far. It does nothing for vanishing gradients.",
            "rnn",
            Measured(
                "vanishing-gradients",
                (("clip/*", "largest gradient norm and SGD update, unclipped and clipped, and the bound"),),
            ),
        ),
        Card(
            "bidirectional",
            "What does a bidirectional RNN add, and when can you not use one?",
            "A second RNN reads the sequence right to left; the output at t concatenates both directions, so each "
            "position sees its whole context. It needs the whole input first: fine for an encoder, not for "
            "generating text left to right.",
            "rnn",
        ),
        Card(
            "bottleneck",
            "What is the information bottleneck of an encoder-decoder without attention?",
            "The encoder compresses the whole source into one fixed-size vector (its final state), and the decoder "
            "sees nothing else: quality falls as sources grow longer (Sutskever et al. 2014; Bahdanau et al. 2015, "
            "figure 2). Attention gives the decoder every encoder state at every step instead.",
            "costs",
            Measured(
                "bottleneck",
                (
                    ("breakdown_length", "first source length where the model without attention breaks down"),
                    ("acc/*/len=*", "exact-match accuracy by model (none: no attention) and source length"),
                ),
            ),
        ),
        Card(
            "rnn-parallel",
            "Why does an RNN train slowly on long sequences, even on a GPU?",
            "Step t needs h_{t-1}: T dependent steps, O(n) sequential operations that cannot overlap. Only the batch "
            "and the hidden units run in parallel; self-attention needs O(1) sequential steps per layer.",
            "costs",
            Measured(
                "parallelism",
                (
                    ("seq_matmuls_per_position/*", "dependent matrix products added per extra position"),
                    ("ratio_at_longest", "LSTM training-step time over attention's, at the longest length"),
                ),
            ),
        ),
    ),
)

ATTENTION = Deck(
    "attention",
    "3.2 The attention mechanism",
    (
        Card(
            "where-to-look",
            "What is the \u201cwhere to look\u201d idea of attention in an encoder-decoder?",
            "At every decoder step i, score every encoder state h_j against the decoder's state, turn the scores "
            "into weights \u03b1_ij = softmax_j(e_ij), and read the context c_i = \u03a3_j \u03b1_ij h_j. The "
            "decoder gets a fresh, weighted view of the whole source at each step instead of one fixed vector.",
            "attention",
        ),
        Card(
            "bahdanau",
            "Write Bahdanau's additive attention score.",
            "e_ij = v_a\u1d40 tanh(W_a s_{i-1} + U_a h_j) (Bahdanau et al. 2015): a one-hidden-layer network of the "
            "previous decoder state s_{i-1} and each encoder state h_j; \u03b1_ij = softmax over j; the context "
            "c_i = \u03a3_j \u03b1_ij h_j enters the next decoder state s_i.",
            "attention",
        ),
        Card(
            "luong",
            "Name Luong's three score functions.",
            "dot: h_t\u1d40 h\u0304_s; general: h_t\u1d40 W_a h\u0304_s; concat: v_a\u1d40 tanh(W_a [h_t; "
            "h\u0304_s]) (Luong et al. 2015). They score the current decoder state h_t (Bahdanau: the previous "
            "one), and combine the context with it: h\u0303_t = tanh(W_c [c_t; h_t]).",
            "attention",
        ),
        Card(
            "alignment",
            "In what sense is attention a soft alignment?",
            "For each output, the weights form a distribution over the source positions. Trained only to produce "
            "the output, the model learns to put its weight on the source tokens each output comes from: an "
            "alignment nobody labelled.",
            "attention",
            Measured(
                "alignment",
                (
                    ("argmax_agreement", "share of outputs whose most-weighted source position is the gold one"),
                    ("chance", "the same share for a uniform guess"),
                    ("argmax_over_chance", "how many times chance"),
                ),
            ),
        ),
        Card(
            "softmax-backward",
            "How does the gradient flow back through attention's softmax?",
            "With \u03b1 = softmax(e) and g = dL/d\u03b1: dL/de = \u03b1 \u2299 (g - \u27e8\u03b1, g\u27e9), the "
            "Jacobian diag(\u03b1) - \u03b1\u03b1\u1d40 applied to g. Through c = \u03a3_j \u03b1_j h_j, every h_j "
            "receives \u03b1_j dL/dc directly: each source position is one step from the loss, whatever its "
            "distance.",
            "attention",
            Measured(
                "gradient-paths",
                (("far_near/*/init", "gradient reaching the farthest source token over the nearest, untrained"),),
            ),
        ),
        Card(
            "dictionary",
            "Why is attention called a differentiable dictionary lookup?",
            "A query q is compared with stored keys k_j, and the weights softmax(q\u00b7k_j / \u03c4) blend the "
            "values v_j. As \u03c4 \u2192 0 it becomes the hard argmax lookup: exact, but its gradient vanishes; a "
            "higher \u03c4 blurs the values but keeps a smooth gradient, through which the lookup can be learned.",
            "attention",
            Measured(
                "dictionary-lookup",
                (
                    ("hard/accuracy", "accuracy of the hard argmax lookup"),
                    ("train/accuracy_after/tau=*", "accuracy after learning the lookup, by temperature"),
                    ("train/hard_grad_norm", "gradient norm through the hard lookup"),
                ),
            ),
        ),
    ),
)

SCALED = Deck(
    "scaled",
    "3.3 Scaled dot-product and multi-head attention",
    (
        Card(
            "qkv",
            "What are queries, keys and values?",
            "Three linear projections of the inputs: Q = X W^Q (what a position is looking for), K = X W^K (what it "
            "is matched by), V = X W^V (what it delivers). Each query's output is the values blended by how well "
            "the query matches each key.",
            "qkv",
        ),
        Card(
            "sdpa",
            "Write scaled dot-product attention, with its shapes.",
            "Attention(Q, K, V) = softmax(Q K\u1d40 / \u221ad_k) V (Vaswani et al. 2017, eq. 1): Q (T, d_k), "
            "K (S, d_k), V (S, d_v) give (T, d_v); the softmax runs over the S keys, so each row of weights sums "
            "to 1.",
            "qkv",
        ),
        Card(
            "sqrt-dk",
            "Why divide the scores by \u221ad_k?",
            "For q and k with independent unit-variance components, q\u00b7k = \u03a3_i q_i k_i has variance d_k. "
            "Unscaled scores grow with d_k and push the softmax into saturation (one weight near 1), where its "
            "gradients are tiny; dividing by \u221ad_k keeps the variance at 1 for every d_k.",
            "qkv",
            Measured(
                "scaling",
                (
                    ("variance_slope", "log-log slope of the score variance against d_k (1: proportional)"),
                    ("*/entropy_ratio_first_to_last", "softmax entropy at the smallest d_k over the largest"),
                ),
            ),
        ),
        Card(
            "temperature",
            "What does a softmax temperature do?",
            "softmax(s / \u03c4): \u03c4 < 1 sharpens the weights toward the argmax (lower entropy), \u03c4 > 1 "
            "flattens them toward uniform. The 1/\u221ad_k of attention is a temperature fixed by the dimension.",
            "qkv",
            Measured("scaling", (("sweep/max_weight/tau=*", "mean largest weight, by temperature"),)),
        ),
        Card(
            "multi-head",
            "What is multi-head attention, and why several heads?",
            "h heads, each with its own W_i^Q, W_i^K, W_i^V projecting to d_k = d_model / h, attend separately; "
            "their outputs are concatenated and projected: MultiHead = Concat(head_1, ..., head_h) W^O. Each head "
            "can look at a different position or subspace at once, where a single head has to average.",
            "mha",
            Measured(
                "heads",
                (
                    ("accuracy/h=*", "accuracy by number of heads"),
                    ("chance", "accuracy of a guess"),
                    ("specialization/h=*", "how much each head specializes on one marker"),
                ),
            ),
        ),
        Card(
            "self-cross",
            "Self-attention or cross-attention: where do Q, K and V come from?",
            "Self-attention: Q, K and V all come from the same sequence. Cross-attention: the queries come from the "
            "decoder, the keys and values from the encoder's outputs (the transformer's form of Bahdanau's "
            "attention).",
            "mha",
        ),
        Card(
            "causal",
            "How does a causal mask work, and how does it align after a KV cache?",
            "Before the softmax, query i may attend only to keys j \u2264 i: the other scores are set to -\u221e "
            "(or a boolean mask is False there), so their weights are exactly 0 and output i never depends on a "
            "future token. When the queries are the last T of S keys (a cache holds the first S - T), the mask "
            "aligns bottom-right: query i sees keys j \u2264 i + S - T.",
            "mha",
        ),
        Card(
            "quadratic",
            "What does self-attention cost in the sequence length n, and why does that limit the context window?",
            "The score matrix Q K\u1d40 is n \u00d7 n: O(n\u00b2 d) time and, when it is stored, O(n\u00b2) memory "
            "per head and layer. Doubling the context quadruples both; fused kernels avoid storing the matrix but "
            "still do the O(n\u00b2) work.",
            "complexity",
            Measured(
                "complexity",
                (
                    ("time_slope/*/forward", "log-log slope of time against n (2: quadratic)"),
                    ("memory_slope/*/train", "log-log slope of peak memory against n, training step"),
                ),
            ),
        ),
        Card(
            "path-length",
            "How many steps separate token 1 from token 100 in self-attention, and in an RNN?",
            "One attention step: every token attends to every other in one layer (O(1) path, O(1) sequential "
            "operations). An RNN needs 99 recurrent steps (O(n)) (Vaswani et al. 2017, table 1).",
            "costs",
            Measured(
                "paths",
                (
                    ("path/attention/n=*", "layers on the longest path, self-attention"),
                    ("path/recurrent/n=*", "steps on the longest path, recurrent layer"),
                ),
            ),
        ),
    ),
)

TRANSFORMER = Deck(
    "transformer",
    "The transformer",
    (
        Card(
            "what-is",
            "What is a transformer?",
            "A stack of blocks, each a self-attention layer and a position-wise feed-forward network, each sub-layer "
            "wrapped in a residual connection and a layer norm, over token embeddings with positions added. No "
            "recurrence: all positions are computed at once (Vaswani et al. 2017).",
            "transformer",
        ),
        Card(
            "norm-placement",
            "Post-norm or pre-norm: what is the difference?",
            "Post-norm (the 2017 paper, BERT): x = LN(x + Sublayer(x)). Pre-norm (GPT-2 onward): x = x + "
            "Sublayer(LN(x)); the residual path stays an identity from input to output, which trains deep stacks "
            "more stably.",
            "transformer",
        ),
        Card(
            "layernorm",
            "What exactly does LayerNorm compute?",
            "y = (x - mean(x)) / sqrt(var(x) + \u03b5) \u00b7 \u03b3 + \u03b2 over the last dimension, with the "
            "biased variance (divided by d, not d - 1) and \u03b5 inside the square root, as torch.nn.LayerNorm.",
            "transformer",
        ),
        Card(
            "positions",
            "Why does a transformer need position encodings, and what are the sinusoidal ones?",
            "Attention is permutation-equivariant: without positions, shuffling the tokens only shuffles the outputs. "
            "Sinusoidal: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)), added to "
            "the embeddings. RoPE instead rotates each pair of query and key dimensions by an angle proportional "
            "to the position, so q\u00b7k depends on the offset.",
            "transformer",
        ),
        Card(
            "kv-cache",
            "What does a KV cache save when generating text?",
            "Under a causal mask the keys and values of earlier tokens never change, so they are kept; each new "
            "token computes its own q, k, v and attends over the cache: O(n) work per token instead of running "
            "all n positions again.",
            "mha",
        ),
        Card(
            "params-depth",
            "How does a transformer's parameter count grow as you stack blocks?",
            "Linearly in the number of blocks: each adds the same count, about 12 d\u00b2 (4 d\u00b2 for Q, K, V "
            "and the output projection, 8 d\u00b2 for a feed-forward network of width 4d) plus biases and norms, on "
            "top of the fixed embeddings.",
            "transformer",
            Measured(
                "depth",
                (
                    ("params_per_block", "parameters each block adds (fitted)"),
                    ("params_per_block_formula", "the same from the formula"),
                    ("val_loss/L=*", "validation loss by depth"),
                ),
            ),
        ),
        Card(
            "why-won",
            "Why did the transformer replace RNNs?",
            "Parallelism (O(1) sequential steps per layer against O(n)), distance-agnostic paths (every token one "
            "step from every other) and composability (the same block, stacked, scales smoothly).",
            "costs",
            Measured(
                "paths",
                (("seq_matmuls_per_position/*", "dependent matrix products added per extra position, by layer"),),
            ),
        ),
        Card(
            "pronoun",
            "Does attention link \u201cit\u201d to its referent in \u201cThe animal didn't cross the street because "
            "it was too tired\u201d?",
            "That is the claim the exercise below puts to you and to a real model. A small transformer trained on "
            "such pairs can learn it; in the pretrained all-MiniLM-L6-v2, the report chooses one head on half of "
            "the pairs and tests it on the other half. On minimal pairs a head blind to the deciding word is right "
            "in exactly half the sentences.",
            "transformer",
            Measured(
                "pronoun",
                (
                    ("heldout/accuracy", "trained model's accuracy on pairs of held-out words"),
                    ("pretrained/best_head", "all-MiniLM-L6-v2 head chosen on the selection half"),
                    ("pretrained/best_head_heldout_accuracy", "its accuracy on the held-out half"),
                    ("pretrained/best_head_heldout_sign_test_p", "sign-test p-value against chance"),
                ),
            ),
        ),
    ),
)

BEYOND = Deck(
    "beyond",
    "What comes after attention",
    (
        Card(
            "flash",
            "How does FlashAttention compute exact attention without storing the n \u00d7 n matrix?",
            "It streams tiles of K and V and keeps, per query row, a running maximum m and sum \u2113. For a new "
            "tile of scores s: m' = max(m, max s), \u2113' = \u2113 e^(m - m') + \u03a3 e^(s - m'), and the output "
            "is rescaled by e^(m - m') before e^(s - m') V is added; divide by \u2113 at the end. Same numbers, "
            "O(n) extra memory, still O(n\u00b2) work.",
            "complexity",
            Measured(
                "complexity",
                (
                    ("memory_slope/chunked/*", "log-log slope of memory against n, tiled online softmax"),
                    ("peak_mib/*/train/n=*", "peak memory of a training step at the longest n, MiB"),
                ),
            ),
        ),
        Card(
            "context-cost",
            "Why is long context still expensive with a fused attention kernel?",
            "The work still grows as n\u00b2, and the KV cache as n \u00d7 layers \u00d7 key-value heads \u00d7 head "
            "size. Hence sliding windows, sparse patterns, shared key-value heads and recurrent alternatives.",
            "complexity",
            Measured(
                "complexity",
                (
                    ("time_slope/torch/*", "log-log slope of time against n, torch's fused kernel"),
                    ("max_n_within_*MiB/naive/train", "longest n within a memory budget, naive attention"),
                ),
            ),
        ),
        Card(
            "gqa",
            "What are multi-query and grouped-query attention for?",
            "Several query heads share one key-value head (multi-query: all of them; grouped-query: each group). "
            "The KV cache shrinks by that factor, which speeds up memory-bound decoding at a small cost in quality "
            "(Shazeer 2019; Ainslie et al. 2023).",
            "beyond",
        ),
        Card(
            "mla",
            "What does multi-head latent attention (MLA, DeepSeek-V2) change?",
            "Keys and values are reconstructed from a small latent vector per token, and only the latent is cached: "
            "a much smaller KV cache than multi-head attention's (positions enter through a separate rotary part).",
            "beyond",
        ),
        Card(
            "ssm",
            "What is a state-space model such as Mamba, and what does it trade away?",
            "A linear recurrence (discretized) h_t = \u0100 h_{t-1} + B\u0304 x_t, y_t = C h_t: O(n) time and a "
            "fixed-size state per generated token, trained in parallel as a scan (or, for time-invariant S4, a "
            "convolution); Mamba makes B, C and the step size depend on the input. The fixed-size state cannot "
            "recall any earlier token exactly, as attention can.",
            "beyond",
        ),
        Card(
            "moe",
            "What is a mixture-of-experts layer?",
            "The feed-forward network is replaced by E expert networks and a router that sends each token to its "
            "top k experts (k = 1 or 2): the parameters grow with E while the compute per token grows only with k "
            "(Shazeer et al. 2017; Switch Transformer; Mixtral).",
            "beyond",
        ),
    ),
)

DECKS = (RECURRENCE, ATTENTION, SCALED, TRANSFORMER, BEYOND)

__all__ = ["DECKS", "OBJECTIVES", "Card", "Deck", "Measured"]
