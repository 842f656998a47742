"""The words of ``paths``: claim, setup, the table beside the paper's, summary and headline, filled from the
result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments import words
from attnlab.experiments.base import Words
from attnlab.experiments.self_attention.paths.config import PAPER
from attnlab.experiments.words import failed, fill

TITLE = "Path lengths, sequential operations and cost per layer (Vaswani et al. Table 1)"
CLAIM = (
    "Attention is distance-agnostic: token 1 and token 100 are one attention step apart, 99 steps for an RNN. "
    "Per layer, self-attention costs O(n^2 d) with O(1) sequential operations and O(1) maximum path length; "
    "a recurrent layer O(n d^2), O(n), O(n); a convolution O(k n d^2), O(1), O(log_k n)."
)
SOURCE = "Seed 002, section 4.2; Vaswani et al. 2017, Table 1"
MAIN_FIGURE = "path_length"


def _path_text(p: dict[str, list], unit: str) -> str:
    """``unit (n:measured, ...)``, and what was expected where it differs."""
    if not p["n"]:
        return "not measured"
    pairs = ", ".join(f"{n}:{v}" for n, v in zip(p["n"], p["measured"], strict=True))
    text = f"{unit} (n:L) {pairs}"
    if p["measured"] != p["expected"]:
        text += " (expected " + ", ".join(f"{n}:{v}" for n, v in zip(p["n"], p["expected"], strict=True)) + ")"
    return text


def table(cfg: Any, r: dict[str, Any]) -> list[dict[str, Any]]:
    """Vaswani et al.'s Table 1 beside the measured values, row by row (``layer``, ``paper``, ``measured``)."""
    m, seq, paths = r["metrics"], r["data"]["sequential"], r["data"]["paths"]
    e = {
        k: {v: m[f"flops_exponent/{k}/{v}"] for v in ("n", "d", "k") if f"flops_exponent/{k}/{v}" in m}
        for k in ("attention", "recurrent", "convolution")
    }

    def seq_text(kind: str) -> str:
        s = seq[kind]
        if s["min"] == s["max"]:
            return f"{s['min']} dependent matmul{'s' if s['min'] != 1 else ''} at every n"
        return f"{s['min']}..{s['max']} dependent matmuls (~{s['slope']:.2f} n + {s['intercept']:.1f})"

    a_n, a_d = m["flops_exponent/attention_with_projections/n"], m["flops_exponent/attention_with_projections/d"]
    return [
        {
            "layer": "self-attention",
            "paper": PAPER["attention"],
            "measured": {
                "complexity": f"n^{e['attention']['n']:.2f} d^{e['attention']['d']:.2f} (Q K^T and P V; with the "
                f"Q, K, V, O projections n^{a_n:.2f} d^{a_d:.2f})",
                "sequential": seq_text("attention"),
                "path": _path_text(paths["attention"], "layers"),
            },
        },
        {
            "layer": "recurrent",
            "paper": PAPER["recurrent"],
            "measured": {
                "complexity": f"n^{e['recurrent']['n']:.2f} d^{e['recurrent']['d']:.2f}",
                "sequential": seq_text("recurrent"),
                "path": _path_text(paths["recurrent"], "recurrent steps in one layer"),
            },
        },
        {
            "layer": "convolutional",
            "paper": PAPER["convolution"],
            "measured": {
                "complexity": f"k^{e['convolution']['k']:.2f} n^{e['convolution']['n']:.2f} "
                f"d^{e['convolution']['d']:.2f}",
                "sequential": seq_text("convolution"),
                "path": _path_text(paths["dilated"], f"dilated (k={cfg.kernel_size}) layers")
                + "; "
                + _path_text(paths["convolution"], "contiguous layers"),
            },
        },
        {
            "layer": "self-attention (restricted)",
            "paper": PAPER["restricted"],
            "measured": {
                "complexity": "not measured (a band mask on the dense kernel still computes all n^2 scores)",
                "sequential": seq_text("restricted"),
                "path": _path_text(paths["restricted"], f"layers (r={cfg.window})"),
            },
        },
    ]


SETUP = """
Layers (batch 1): attnlab.nn.MultiHeadAttention ({cfg.heads} heads, naive SDPA so that every product is a counted
kernel), attnlab.nn.RNN (tanh, input and hidden width d), a causal torch.nn.Conv1d(d, d, k={cfg.kernel_size}) and
restricted attention (the same MHA with a band mask: the last {cfg.window} keys). (a) Forward FLOPs
(torch.utils.flop_counter) at d={cfg.flop_width} for n in {cfg.flop_lengths}, at n={cfg.flop_length} for d in
{cfg.flop_widths}, and for k in {cfg.kernel_sizes}; exponents by log-log least squares over each sweep. (b) Longest
chain of dependent matrix products in one forward (a TorchDispatchMode tracking which tensors each op reads and
writes), over the n sweep. (c) Path length, width d={cfg.path_width}, float64, for n in {cfg.path_lengths}
(restricted attention up to n={cfg.restricted_max_length}): the smallest stack depth L (or, for the RNN, the fewest
state-to-state transitions the gradient may flow through, by detaching the state before them) at which the gradient
of u . y_n with respect to x_1 is nonzero; found by doubling and bisection, with the gradient exactly zero one below
it. Stacks: PyTorch's initialisation, the backward taken layer by layer with the gradient at each position rescaled
to unit norm after each (positive factors: the same wiring, no zero changes) so that it cannot underflow. RNN:
orthogonal W_ih and W_hh, zero biases, inputs scaled by 0.01 (no vanishing: the question is whether a path exists,
not how much survives it). Expected values: attention 1; restricted ceil((n-1)/(r-1)); contiguous convolution
ceil((n-1)/(k-1)); dilated convolution (dilation k^l in layer l) ceil(log_k n); recurrent n-1. On the CPU whatever
the device: counts and exact zeros do not depend on where they are computed.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    return fill(SETUP, cfg, r)


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, verdict, held = r["metrics"], r["data"]["verdict"], r["held"]
    parts = ["Vaswani et al. 2017 Table 1 (paper | measured here)."]
    for row in table(cfg, r):
        cols = ("complexity", "sequential", "path")
        cells = "; ".join(f"{col}: {row['paper'][col]} | {row['measured'][col]}" for col in cols)
        parts.append(f"{row['layer']}: {cells}.")
    if 100 in cfg.path_lengths:
        parts.append(
            f"Token 1 and token 100: {m['path/attention/n=100']} attention layer apart; "
            f"{m['path/recurrent/n=100']} recurrent steps apart in an RNN (the claim says 1 and 99)."
        )
    d0 = cfg.flop_width
    cross = m[f"crossover_n/attention_core_vs_recurrent/d={d0}"]
    if cross is not None:
        parts.append(
            f"At d={d0} attention's Q K^T and P V cost more FLOPs than the whole recurrent layer from n = "
            f"{cross:.0f} on (the paper: self-attention is cheaper when n < d); with its projections the attention "
            f"layer's exponent in n is {m['flops_exponent/attention_with_projections/n']}, not 2, over this range."
        )
    if held:
        parts.append(
            f"Every entry held: FLOP exponents within {cfg.tolerance:g} of Table 1's, sequential matrix products "
            "constant in n except the recurrent layer's (one per position), and every path length exactly the "
            "one its wiring implies."
        )
    else:
        parts.append("Not every entry held: " + ", ".join(failed(verdict)) + ".")
    return " ".join(parts)


HEADLINE = """
token 1 to token 100: attention layers / RNN steps | {m[path/attention/n=100]} / {m[path/recurrent/n=100]}
path length at n = <n>: attention / recurrent / dilated conv | {m[path/attention/n=<n>]} / {m[path/recurrent/n=<n>]} /
    {m[path/dilated/n=<n>]}
FLOP exponents in n: attention core / recurrent / convolution | {m[flops_exponent/attention/n]:.2f} /
    {m[flops_exponent/recurrent/n]:.2f} / {m[flops_exponent/convolution/n]:.2f}
sequential matrix products per position: attention / recurrent | {m[seq_matmuls_per_position/attention]:g} /
    {m[seq_matmuls_per_position/recurrent]:g}
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    return words.table(HEADLINE, cfg, r, n=cfg.path_lengths[-1])


WORDS = Words(setup, summary, headline)
