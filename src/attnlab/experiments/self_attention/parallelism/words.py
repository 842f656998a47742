"""The words of ``parallelism``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.self_attention.parallelism.measure import CLAIMED_RATIO
from attnlab.experiments.words import fill, table

TITLE = "Parallel training: sequential steps and wall clock, LSTM against attention"
CLAIM = (
    "Parallelism: every position processes simultaneously. RNN training takes O(seq_len) sequential steps, "
    "Transformer training O(1); GPUs saturate, and wall-clock training time on the same data drops 5-10x."
)
SOURCE = "Seed 002, section 4.1"
MAIN_FIGURE = "ratio"


SETUP = """
Two blocks of equal parameter count map (B, T, C) to (B, T, C) with C={cfg.d_model}: an LSTM block
(attnlab.nn.LSTM(C, H={d[lstm_hidden]}) then Linear(H, C); {d[params][lstm]:,} parameters) and a pre-norm causal
transformer layer (attnlab.nn.MultiHeadAttention, {cfg.heads} heads, and a {cfg.mlp_ratio}C MLP;
{d[params][attention]:,} parameters). The same random batch (B={cfg.batch_size}) and MSE targets for both; one
training step = forward + backward + Adam (lr {cfg.train.lr:g}), on {where}, T in {cfg.lengths}. Time: median of
torch.utils.benchmark repeats ({cfg.min_run_time:g} s each), the two blocks interleaved {cfg.rounds} time(s).
Sequential steps: a TorchDispatchMode records every aten op of one step and the tensors it reads and writes; the
longest chain of dependent ops, counted in matrix-product kernels (mm, addmm, bmm, fused attention), is what parallel
hardware cannot overlap. FLOPs: torch.utils.flop_counter (the attention kernel counted with its full n^2 score
matrix). Exponents: log-log fits over the upper half of T.
"""


def _where(r: dict[str, Any]) -> str:
    """Where the steps were timed, in words."""
    device, threads = r["data"]["device"], r["data"]["threads"]
    if device != "cpu":
        return f"{r['device_name']}, bf16 autocast"
    if threads > 1:
        return f"the CPU, each block timed at 1 and at {threads} threads and the faster kept"
    return f"the CPU, {threads} thread(s)"


def setup(cfg: Any, r: dict[str, Any]) -> str:
    return fill(SETUP, cfg, r, where=_where(r))


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, verdict = r["metrics"], r["data"]["verdict"]
    device, threads = r["data"]["device"], r["data"]["threads"]
    lengths = cfg.lengths
    T = lengths[-1]
    where = r["device_name"]
    if device == "cpu":
        where = f"the CPU (best of 1 and {threads} threads)" if threads > 1 else "the CPU (1 thread)"
    ratios = ", ".join(f"{m[f'ratio/T={t}']:.2f}x at T={t}" for t in lengths)
    parts = [
        f"Equal parameters (LSTM block {m['params/lstm']:,}, attention block {m['params/attention']:,}). "
        f"Training-step time ratio LSTM / attention on {where}: {ratios}.",
        f"At the longest T={T}: LSTM {m[f'ms/lstm/T={T}']:.1f} ms, attention {m[f'ms/attention/T={T}']:.1f} ms, "
        f"a ratio of {m['ratio_at_longest']:.2f}x (largest over T: {m['ratio_max']:.2f}x) against the claimed "
        f"{CLAIMED_RATIO[0]:g}-{CLAIMED_RATIO[1]:g}x. Time grows as T^{m['time_exponent/lstm']} (LSTM) and "
        f"T^{m['time_exponent/attention']} (attention) over the upper half of T.",
    ]
    if m["timing_spread_max"] > 1.5:
        parts.append(
            f"The timings were noisy: repeats of one measurement differed by up to {m['timing_spread_max']:.1f}x "
            "(something else was using the machine); the ratios carry that uncertainty."
        )
    lstm_seq = ", ".join(str(m[f"seq_matmuls/lstm/T={t}"]) for t in lengths)
    attn_seq = ", ".join(str(m[f"seq_matmuls/attention/T={t}"]) for t in lengths)
    structural = verdict["lstm_sequential_steps_grow_with_T"] and verdict["attention_sequential_steps_constant"]
    parts.append(
        f"Sequential steps (dependent matrix products in one training step) for T = {list(lengths)}: LSTM "
        f"{lstm_seq} (= {m['seq_matmuls_per_position/lstm']:g} T + {m['seq_matmuls_intercept/lstm']:g}: the "
        f"product with W_hh once per position forward and once backward); attention {attn_seq}. "
        + (
            "The structural part of the claim held: O(T) sequential steps for the LSTM, O(1) for attention."
            if structural
            else "The structural part of the claim did NOT hold as measured: "
            + ", ".join(
                k
                for k in ("lstm_sequential_steps_grow_with_T", "attention_sequential_steps_constant")
                if not verdict[k]
            )
            + "."
        )
    )
    gf_l, gf_a = m[f"gflop_per_s/lstm/T={T}"], m[f"gflop_per_s/attention/T={T}"]
    if verdict["wall_clock_ratio_reaches_5x"]:
        parts.append(f"The wall-clock part held here: {m['ratio_at_longest']:.2f}x at T={T}.")
    else:
        why = (
            f"The wall-clock part did NOT reproduce here: {m['ratio_at_longest']:.2f}x at T={T}, not "
            f"{CLAIMED_RATIO[0]:g}-{CLAIMED_RATIO[1]:g}x. The ratio is the product of two measured factors: "
            f"arithmetic (LSTM / attention FLOPs per step: {m['flop_ratio_at_longest']:.2f}) and throughput "
            f"(attention ran at {gf_a:g} GFLOP/s, the LSTM at {gf_l:g}: {gf_a / gf_l:.2f}x); the LSTM's T "
            "sequential steps show up only in the second."
        )
        if device == "cpu":
            why += (
                f" The likely reason: {threads} CPU core(s) offer little parallel hardware for attention to fill "
                f"that the LSTM's per-step products (B={cfg.batch_size} rows each) do not also use"
            )
            if f"thread_speedup/lstm/T={T}" in m:
                why += (
                    f" (time at 1 thread / time at {threads}: LSTM {m[f'thread_speedup/lstm/T={T}']:.2f}, "
                    f"attention {m[f'thread_speedup/attention/T={T}']:.2f}; below 1, more threads were slower)"
                )
            why += (
                ". The claim is about GPUs, whose thousands of lanes one LSTM step cannot fill, so its T steps are "
                "paid in latency; that was not measured here (run with --device auto on a GPU)."
            )
        parts.append(why)
    return " ".join(parts)


HEADLINE = """
time ratio LSTM / attention at T = <t0> / <t1> ({r[device_name]}) | {m[ratio/T=<t0>]:.2f}x / {m[ratio/T=<t1>]:.2f}x
    (claimed <lo>-<hi>x)
sequential matrix products per position, LSTM / attention | {m[seq_matmuls_per_position/lstm]:g} /
    {m[seq_matmuls_per_position/attention]:g}
sequential matrix products at T = <t1>, LSTM / attention | {m[seq_matmuls/lstm/T=<t1>]} /
    {m[seq_matmuls/attention/T=<t1>]}
FLOP ratio LSTM / attention at the longest T | {m[flop_ratio_at_longest]:.2f}
parameters, LSTM / attention block | {m[params/lstm]:,} / {m[params/attention]:,}
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    lo, hi = (f"{x:g}" for x in CLAIMED_RATIO)
    return table(HEADLINE, cfg, r, t0=cfg.lengths[0], t1=cfg.lengths[-1], lo=lo, hi=hi)


WORDS = Words(setup, summary, headline)
