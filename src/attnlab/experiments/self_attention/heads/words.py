"""The words of ``heads``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.self_attention.heads.measure import specialization
from attnlab.experiments.words import fill

TITLE = "Multiple heads attend to different things at once"
CLAIM = (
    "Multiple attention heads attend to different things at once: each head can look at a different position "
    "(or representation subspace), which one head, averaging, cannot."
)
SOURCE = "Seed 001 (chapter 3), section 3.3; Vaswani et al. 2017, section 3.2.2"
MAIN_FIGURE = "attention"


SETUP = """
Two-marker task: T={cfg.seq_len} positions, contents u in R^{cfg.value_dim} with i.i.d. N(0,1) components at the first
T-1, two of them marked (marker 1 holds a, marker 2 holds b), the last is the query; target argmax_j (a_j - b_j)
({cfg.value_dim} classes). Model: W_in u + kind embedding -> attnlab.nn.MultiHeadAttention(E={cfg.embed_dim}, h)
queried from the last position -> MLP ({cfg.mlp_hidden} hidden, ReLU) -> logits; h in {cfg.head_counts} (head size
E/h; the same parameter count for every h). Training: {cfg.train.max_iters} Adam steps (lr {cfg.train.lr:g}), batch
{cfg.batch_size}, the same batches and initialisation stream for every h, {cfg.seeds} seed(s). Evaluation: accuracy
on {cfg.eval_examples} held-out examples; each head's mean attention mass on marker 1 and marker 2
(need_weights=True); specialization = max over distinct heads i, j of (mass1_i + mass2_j) / 2. Measured on
{r[device_name]}.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    return fill(SETUP, cfg, r)


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, verdict, held = r["metrics"], r["data"]["verdict"], r["held"]
    data = r["data"]
    runs = {
        h: [
            {"accuracy": a, "mass1": ms["marker1"], "mass2": ms["marker2"]}
            for a, ms in zip(data["accuracy"][str(h)], data["mass"][str(h)], strict=True)
        ]
        for h in cfg.head_counts
    }
    n = cfg.seeds
    accs = ", ".join(f"h={h}: {m[f'accuracy/h={h}']:.3f}" for h in cfg.head_counts)
    specs = ", ".join(f"h={h}: {m[f'specialization/h={h}']:.3f}" for h in cfg.head_counts[1:])
    counts = ", ".join(
        f"h={h}: {m[f'seeds_beating_single_head/h={h}']}/{n} and {m[f'seeds_specialized/h={h}']}/{n}"
        for h in cfg.head_counts[1:]
    )
    parts = [
        f"Accuracy (mean over {n} seed(s)) at the same width E={cfg.embed_dim}: {accs} (chance "
        f"{m['chance']:.3f}; the best guess from one marker alone scores {m['one_marker_bayes']:.3f}).",
        f"The single head reads one marker: on average {100 * m['single_head/larger_share']:.0f}% of its marker "
        f"mass goes to one of the two (its mean mass on marker 1 / marker 2 over seeds: "
        f"{m['single_head/mass_marker1']:.2f} / {m['single_head/mass_marker2']:.2f}).",
        f"With h >= 2 the best pair of distinct heads puts on average {specs} of its mass on one marker each.",
        f"Seeds in which the multi-head model beat the single head by >= {cfg.margin:g} and in which its heads "
        f"split the markers (specialization >= {cfg.specialization:g}): {counts}.",
    ]
    for h in cfg.head_counts[1:]:
        for s, run in enumerate(runs[h]):
            sp = specialization(run["mass1"], run["mass2"])
            if sp < cfg.specialization:
                parts.append(
                    f"With h={h}, seed {cfg.seed + s}, the heads did not split the markers (specialization "
                    f"{sp:.2f}; mass per head on marker 1: {', '.join(f'{x:.2f}' for x in run['mass1'])}, on marker 2: "
                    f"{', '.join(f'{x:.2f}' for x in run['mass2'])}) and reached {run['accuracy']:.3f}."
                )
    if held:
        parts.append(
            "The claim held: for every h >= 2, in a majority of seeds the heads split the two markers between them "
            "and beat the single head, which can read only one combination of the two."
        )
    else:
        failed = [k for k, v in verdict.items() if not v]
        parts.append(
            "The claim did not hold here: "
            + ", ".join(failed)
            + " (each needs a majority of seeds). Reported as measured."
        )
    return " ".join(parts)


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    m = r["metrics"]
    rows = [(f"accuracy, {h} head(s) (mean over seeds)", f"{m[f'accuracy/h={h}']:.3f}") for h in cfg.head_counts]
    rows.append(("chance / best from one marker alone", f"{m['chance']:.3f} / {m['one_marker_bayes']:.3f}"))
    rows += [(f"specialization, {h} heads", f"{m[f'specialization/h={h}']:.3f}") for h in cfg.head_counts[1:]]
    return rows


WORDS = Words(setup, summary, headline)
