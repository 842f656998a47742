"""The words of ``gradient-paths``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.words import failed, fill, table

TITLE = "Gradient paths: why attention helps an encoder-decoder learn"
CLAIM = (
    "Backpropagation flows through attention straight to every source position: without attention the "
    "gradient reaching a source token decays with its recurrent distance from the fixed vector, with attention "
    "it does not (each token is one attention step from every decoder step)."
)
SOURCE = "Seed 001 §3.2 (backpropagation through attention) and objective 3; claim C7 (seed 002 §4.2)"
MAIN_FIGURE = "distance"
NONE = "none"


SETUP = """
attnlab Seq2Seq, bidirectional {cell} encoder, embeddings {cfg.emb}, hidden {cfg.hidden} for every model: {sizes};
measured at initialisation (seed {cfg.seed}) {trained}. Probe: {cfg.probe_examples} held-out {cfg.task} strings of
length {cfg.src_len}, teacher forcing, eval mode; ||dL/dx_j|| of the summed cross-entropy with respect to the source
embedding at each position j (mean over the strings), against d_j = min(j, S-1-j), the recurrent steps between x_j
and the fixed vector; log10-linear least-squares slope; per-target-step gradients ||dL_t/dx_j|| for the heatmaps;
encoder outputs reached directly (nonzero dL/d memory_j). Measured on {r[device_name]}.
"""
TRAINED = """
and after {cfg.train.max_iters} steps of {cfg.task} (lengths {cfg.min_len}-{cfg.src_len}, batch {cfg.batch_size},
AdamW lr {cfg.train.lr:g}, the same batches for every model)
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    sizes = ", ".join(f"{n} ({p:,} parameters)" for n, p in r["data"]["params"].items())
    trained = fill(TRAINED, cfg, r) if cfg.after_training else "(no training: after_training is false)"
    return fill(SETUP, cfg, r, cell=cfg.cell.upper(), sizes=sizes, trained=trained)


def summary(cfg: Any, r: dict[str, Any]) -> str:
    data = r["data"]
    results, states = data["results"], data["states"]
    d_max = max(data["distances"])
    parts = []
    for state in states:
        cells = "; ".join(
            f"{n} far/near {x['far_near']:.2g} (x{10 ** x['slope']:.2f} per step), memory reached at "
            f"{x['memory_reached']:.0f} of {cfg.src_len} positions"
            for n, x in results[state].items()
        )
        when = "At initialisation" if state == "init" else f"After {data['train_steps']} steps"
        parts.append(f"{when}: {cells}.")
    text = "Gradient reaching the source token d recurrent steps from the fixed vector, relative to d = 0, at d = "
    text += f"{d_max}: "
    text += " ".join(parts) + " "
    if r["held"] is None:
        return text + "Not measurable: it needs the model without attention and one with attention."
    if r["held"]:
        text += (
            f"The claim held: at initialisation the gradient without attention falls to at most "
            f"{cfg.decay_ratio:g} of its value at the ends, while with attention it stays within {cfg.flat_ratio:g}"
            " of it: every source position is one attention step from every decoder step."
        )
    else:
        text += f"The claim, as tested at initialisation, did not hold: {', '.join(failed(data['verdict']))}."
    if "trained" in states and NONE in results["trained"]:
        others = ", ".join(f"{x['far_near']:.2g} for {n}" for n, x in results["trained"].items() if n != NONE)
        text += (
            f" After training (reported, not judged) far/near is {results['trained'][NONE]['far_near']:.2g} "
            f"without attention and {others}."
        )
    return text


HEADLINE = """
far/near at initialisation, <models> | <far_near>
gradient factor per recurrent step at initialisation, <models> | <factors>
encoder outputs the loss reaches directly (of {cfg.src_len}), <models> | <reached>
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    m = r["metrics"]
    per = {key: [m[f"{key}/{n}/init"] for n in cfg.models] for key in ("far_near", "slope", "memory_reached")}
    far_near = " / ".join(f"{v:.2g}" for v in per["far_near"])
    factors = " / ".join(f"x{10**v:.2f}" for v in per["slope"])
    reached = " / ".join(f"{v:.0f}" for v in per["memory_reached"])
    return table(HEADLINE, cfg, r, models=" / ".join(cfg.models), far_near=far_near, factors=factors, reached=reached)


WORDS = Words(setup, summary, headline)
