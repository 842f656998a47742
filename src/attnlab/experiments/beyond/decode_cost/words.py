"""The words of ``decode-cost``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.words import closing, fill, table

TITLE = "Decoding one token: attention's cost grows with the context, a fixed state's does not"
CLAIM = (
    "Linear attention and selective state-space models decode in O(1) per token, softmax attention with a KV cache "
    "in O(n): its per-token time, work and memory grow with the context, theirs stay flat."
)
SOURCE = "Katharopoulos et al. 2020 (section 3.4, Figure 1); Gu & Dao 2023 (section 3.3, Table 4)"
MAIN_FIGURE = "time"

NAMES = {"attention": "softmax attention", "linear": "linear attention", "ssm": "Mamba"}

SETUP = """
attnlab GPT, {cfg.n_layer} layer(s), {cfg.n_head} heads, vocabulary {cfg.vocab_size}, one model per mixer at matched
parameters (<widths>), each decoding a batch of {cfg.batch_size} random prompts. For every context length n in
{cfg.lengths} the prompt is prefilled through the model's own forward into per-layer caches (a KV cache for
attention, the recurrent state for the others); then {cfg.rounds} rounds each take one warm-up and one timed
decoding step of every (model, length), in a random order per round, so drift on the machine hits all alike.
Time per generated token: a step over the batch, the lower quartile of the rounds (<clock>); log-log slopes against
the context at the middle of the timed steps, fitted over n >= {cfg.fit_from} (fixed before measuring, past
attention's crossover: see the design). FLOPs per token
counted by torch.utils.flop_counter on the first step after the prefill (matrix products and attention; the
recurrent mixers' element-wise state updates are not counted), decoding memory read from the caches' bytes.
Measured on {r[device_name]}.
"""


def _clock(r: dict[str, Any]) -> str:
    if str(r["device"]).startswith("cuda"):
        return "wall time between synchronisations"
    return (
        "CPU time of the decoding thread, one intra-op thread: the work done, without the time other processes "
        "hold the core"
    )


def setup(cfg: Any, r: dict[str, Any]) -> str:
    series = r["data"]["series"]
    widths = ", ".join(f"{NAMES[k]} C={s['width']} ({s['params']:,} parameters)" for k, s in series.items())
    return fill(SETUP, cfg, r, widths=widths, clock=_clock(r))


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, series = r["metrics"], r["data"]["series"]
    ns = r["data"]["lengths"]
    parts = []
    for mixer, s in series.items():
        t = s["seconds_per_token"]
        parts.append(
            f"{NAMES[mixer]}: {t[0] * 1e6:.0f} us per token at n={ns[0]}, {t[-1] * 1e6:.0f} us at n={ns[-1]}, slope "
            f"{s['time_slope']:.2f} over n >= {cfg.fit_from} (medians: {s['median_slope']:.2f}; all lengths: "
            f"{s['time_slope_all']:.2f}); "
            f"{s['flops_per_position']:g} counted FLOPs per token per position of context and "
            f"{s['bytes_per_position']:g} bytes of decoding memory per position"
            + (f" (the longest context within {cfg.memory_budget_mib} MiB: {s['longest_context']:,} tokens)." if
               s["longest_context"] else f" (a fixed {s['bytes_fixed'] / 1024:.1f} KiB per sequence, at any length).")
        )  # fmt: skip
    if m.get("crossover_time") is not None and m.get("crossover_flops") is not None:
        parts.append(
            f"Attention's time per token reaches twice its fixed part (the affine fit's intercept) at about "
            f"n = {m['crossover_time']:,}; in counted FLOPs its cache work equals the rest at n = "
            f"{m['crossover_flops']:,} (on this machine the fixed part of a step is mostly per-operation overhead, "
            f"not arithmetic)."
        )
    held_text = (
        f"The claim held: past the crossover attention's per-token time grows (slope above {cfg.growing_min}) "
        f"while linear attention's and Mamba's stay flat (|slope| at most {cfg.flat_max}), and the counts agree."
    )
    return " ".join(parts) + " " + closing(r["held"], r["data"]["verdict"], held_text)


HEADLINE = """
time slope over n >= {cfg.fit_from}: attention / linear / SSM | <slopes>
us per token at n = <last>: attention / linear / SSM | <last_us>
attention's crossover (time; counted FLOPs) | <crossover>
decoding memory per position: attention / linear / SSM (bytes) | <bytes>
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    series, ns = r["data"]["series"], r["data"]["lengths"]
    join = " / ".join
    return table(
        HEADLINE,
        cfg,
        r,
        slopes=join(f"{s['time_slope']:.2f}" for s in series.values()),
        last=ns[-1],
        last_us=join(f"{s['seconds_per_token'][-1] * 1e6:.0f}" for s in series.values()),
        bytes=join(f"{s['bytes_per_position']:g}" for s in series.values()),
        crossover=join(_n(r["metrics"].get(k)) for k in ("crossover_time", "crossover_flops")),
    )


def _n(n: int | None) -> str:
    return "none measured" if n is None else f"n ~ {n:,}"


WORDS = Words(setup, summary, headline)
